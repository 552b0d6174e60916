#!/usr/bin/env bash
# frontier.sh OUT_DIR [run flags...]: poll at every interval from 25 ms to 1 s and adaptive, one run each,
# against the target the flags name (--sim-profile P, or --url U with credentials), then a table of detection
# p50 against mean requests and whether adaptive lies below poll's curve (poll's detection interpolated at
# adaptive's request count; with fewer requests than every poll point, against the one with the fewest).
# Used for the README's frontier figures; not part of `make test`.
set -euo pipefail
out=$1
shift
bin=${CVATBENCH_BIN:-bin/cvatbench}
tasks=${TASKS:-30}
mkdir -p "$out"
for iv in 25ms 50ms 100ms 250ms 500ms 1s; do
	"$bin" run "$@" --strategies poll --poll-interval "$iv" --tasks "$tasks" --concurrency 1 --out "$out/poll-$iv" >/dev/null 2>"$out/poll-$iv.log"
done
"$bin" run "$@" --strategies adaptive --tasks "$tasks" --concurrency 1 --out "$out/adaptive" >/dev/null 2>"$out/adaptive.log"
for d in "$out"/poll-* "$out"/adaptive; do
	[ -d "$d" ] || continue
	run=$(ls -td "$d"/*/ | head -1)
	"$bin" report --format json "$run" >"$d.json"
done
python3 - "$out" <<'PY'
import json, sys, glob, os
out = sys.argv[1]
def row(path):
    r = json.load(open(path))["rows"][0]
    return r["req_mean"], r["detect_p50_ms"], r["p50_ms"], r["n"]
polls = []
for p in sorted(glob.glob(os.path.join(out, "poll-*.json"))):
    iv = os.path.basename(p)[5:-5]
    polls.append((iv,) + row(p))
ad = row(os.path.join(out, "adaptive.json"))
print("| strategy | n | req_mean | detect_p50_ms | e2e_p50_ms |")
print("|---|---:|---:|---:|---:|")
for iv, req, det, e2e, n in sorted(polls, key=lambda x: x[1]):
    print(f"| poll {iv} | {n} | {req:.2f} | {det:.1f} | {e2e:.1f} |")
print(f"| adaptive | {ad[3]} | {ad[0]:.2f} | {ad[1]:.1f} | {ad[2]:.1f} |")
curve = sorted((req, det) for _, req, det, _, _ in polls)
req = ad[0]
if req <= curve[0][0]:
    ref = curve[0][1]
    how = f"poll with the fewest requests ({curve[0][0]:.2f})"
else:
    ref = None
    for (r0, d0), (r1, d1) in zip(curve, curve[1:]):
        if r0 <= req <= r1:
            ref = d0 + (d1 - d0) * (req - r0) / (r1 - r0) if r1 > r0 else min(d0, d1)
    if ref is None:
        ref = curve[-1][1]
    how = f"poll's curve at {req:.2f} requests"
verdict = "below" if ad[1] < ref else "NOT below"
print(f"\nadaptive detect p50 {ad[1]:.1f} ms vs {ref:.1f} ms on {how}: {verdict} poll's frontier")
PY
