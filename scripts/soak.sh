#!/usr/bin/env bash
# Soak test of cvatbench (not part of `make test`): many trials at high concurrency under injected faults,
# watching the cvatbench process for leaks, then checking that a run against a separate emulator leaves no
# object behind.
#
#   scripts/soak.sh [OUT_DIR]          default OUT_DIR: results/soak-<UTC timestamp>
#
# Phase A: `cvatbench run` on the embedded emulator (instant profile, --sim-faults), SOAK_TRIALS trials at
#          SOAK_CONCURRENCY, every strategy. The bench runner and the emulator share the process; its VmRSS,
#          open fds and OS threads are sampled every second from /proc/<pid>.
# Phase B: `cvatbench sim --faults` as its own process and `cvatbench run --url` against it (SOAK_B_TRIALS
#          trials); both processes are sampled; afterwards the emulator must hold no task, project or webhook.
#
# Goroutines are not sampled: cvatbench's metrics registry has no Go collector (bench/prom), so there is no
# go_goroutines to scrape; OS threads are the nearest proxy.
#
# Knobs (env): CVATBENCH_BIN (skip the build), SOAK_TRIALS=2000, SOAK_CONCURRENCY=50, SOAK_FAULTS=flaky,
# SOAK_B_TRIALS=400, SOAK_INTERVAL=1 (seconds between samples).
set -euo pipefail

cd "$(dirname "$0")/.."
OUT=${1:-results/soak-$(date -u +%Y%m%dT%H%M%SZ)}
TRIALS=${SOAK_TRIALS:-2000}
CONC=${SOAK_CONCURRENCY:-50}
FAULTS=${SOAK_FAULTS:-flaky}
B_TRIALS=${SOAK_B_TRIALS:-400}
INTERVAL=${SOAK_INTERVAL:-1}
mkdir -p "$OUT"
CSV=$OUT/samples.csv

if [[ -n ${CVATBENCH_BIN:-} ]]; then
	BIN=$CVATBENCH_BIN
else
	BIN=$OUT/cvatbench
	go build -o "$BIN" ./cmd/cvatbench
fi
for tool in curl python3; do
	command -v "$tool" >/dev/null || { echo "soak: $tool is needed" >&2; exit 1; }
done

# Every strategy, the same number of tasks each; faster knobs than the defaults so trials turn over quickly.
mapfile -t STRATS < <("$BIN" run --help | sed -n 's/.*--strategies value.*default: \(.*\))$/\1/p' | tr -d '"' | tr ',' '\n' | tr -d ' ')
if [[ ${#STRATS[@]} -eq 0 ]]; then
	STRATS=(busyloop poll sdk cli ui backoff webhook adaptive)
fi
STRAT_LIST=$(IFS=,; echo "${STRATS[*]}")
TASKS=$(( (TRIALS + ${#STRATS[@]} - 1) / ${#STRATS[@]} ))
B_TASKS=$(( (B_TRIALS + ${#STRATS[@]} - 1) / ${#STRATS[@]} ))
KNOBS=(--images 1 --image-size 16x16 --poll-interval 20ms --sdk-period 50ms --cli-period 50ms
	--backoff-initial 10ms --backoff-max 200ms --safety-poll 200ms --timeout 60s)

pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

echo "t_s,phase,role,pid,rss_kb,fds,threads" >"$CSV"
T0=$EPOCHREALTIME

# sample PHASE ROLE PID: one CSV row, nothing if the process is gone.
sample() {
	local st rss thr fds now
	st=/proc/$3/status
	[[ -r $st ]] || return 0
	rss=$(awk '/^VmRSS:/ {print $2}' "$st" 2>/dev/null) || return 0
	thr=$(awk '/^Threads:/ {print $2}' "$st" 2>/dev/null) || return 0
	fds=$(ls /proc/"$3"/fd 2>/dev/null | wc -l) || return 0
	[[ -n $rss ]] || return 0
	now=$(awk -v a="$EPOCHREALTIME" -v b="$T0" 'BEGIN { printf "%.1f", a - b }')
	echo "$now,$1,$2,$3,$rss,$fds,$thr" >>"$CSV"
}

# watch PHASE ROLE:PID...: samples until the first process exits.
watch() {
	local phase=$1; shift
	local main=${1#*:}
	while kill -0 "$main" 2>/dev/null; do
		for rp in "$@"; do sample "$phase" "${rp%%:*}" "${rp#*:}"; done
		sleep "$INTERVAL"
	done
}

echo "soak: phase A: $((TASKS * ${#STRATS[@]})) trials (${STRAT_LIST}), concurrency $CONC, --sim-faults $FAULTS" >&2
"$BIN" run --sim-profile instant --sim-faults "$FAULTS" --strategies "$STRAT_LIST" --tasks "$TASKS" \
	--concurrency "$CONC" "${KNOBS[@]}" --out "$OUT/a" >"$OUT/a.stdout" 2>"$OUT/a.stderr" &
A=$!
pids+=("$A")
watch A run:"$A"
set +e
wait "$A"
A_CODE=$?
set -e

echo "soak: phase B: cvatbench sim --faults $FAULTS, run --url with $((B_TASKS * ${#STRATS[@]})) trials" >&2
PW=soak-$RANDOM$RANDOM
"$BIN" sim --addr 127.0.0.1:0 --profile instant --faults "$FAULTS" --password "$PW" 2>"$OUT/sim.stderr" &
S=$!
pids+=("$S")
URL=
for _ in $(seq 100); do
	URL=$(sed -n 's/^cvatsim listening on //p' "$OUT/sim.stderr" | head -1)
	[[ -n $URL ]] && break
	sleep 0.1
done
[[ -n $URL ]] || { echo "soak: sim did not start: $(cat "$OUT/sim.stderr")" >&2; exit 1; }

# The login itself may meet an injected fault (the external emulator faults every call): try it again.
B_CODE=1
for attempt in 1 2 3 4 5; do
	CVAT_PASSWORD=$PW "$BIN" run --url "$URL" --user admin --strategies "$STRAT_LIST" --tasks "$B_TASKS" \
		--concurrency "$CONC" "${KNOBS[@]}" --out "$OUT/b" >"$OUT/b.stdout" 2>"$OUT/b.stderr" &
	B=$!
	pids+=("$B")
	watch B run:"$B" sim:"$S"
	set +e
	wait "$B"
	B_CODE=$?
	set -e
	if grep -q '^results: ' "$OUT/b.stderr"; then break; fi
	echo "soak: run --url attempt $attempt failed before it started: $(tail -1 "$OUT/b.stderr")" >&2
done

# What is left on the emulator: counts of the list endpoints (no faults on this read: retry a few times).
left() {
	local path=$1 n
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		n=$(curl -sf -u "admin:$PW" "$URL$path?page_size=1" |
			python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])' 2>/dev/null) && { echo "$n"; return; }
		sleep 0.2
	done
	echo "?"
}
TASKS_LEFT=$(left /api/tasks)
PROJECTS_LEFT=$(left /api/projects)
HOOKS_LEFT=$(left /api/webhooks)
kill -INT "$S"
wait "$S" || true

python3 - "$CSV" "$OUT" "$A_CODE" "$B_CODE" "$TASKS_LEFT" "$PROJECTS_LEFT" "$HOOKS_LEFT" <<'EOF'
import csv, glob, json, os, sys
path, out, a_code, b_code, tl, pl, hl = sys.argv[1:]
rows = list(csv.DictReader(open(path)))
def meta(d):
    m = glob.glob(os.path.join(out, d, "*", "meta.json"))
    return json.load(open(m[0])) if m else {}
def trials(d):
    t = glob.glob(os.path.join(out, d, "*", "trials.jsonl"))
    if not t:
        return 0, 0, {}
    n = err = 0; classes = {}
    for line in open(t[0]):
        r = json.loads(line); n += 1
        if r["result"] != "ok":
            err += 1; classes[r.get("error_class", "?")] = classes.get(r.get("error_class", "?"), 0) + 1
    return n, err, classes
print(f"soak results in {out}")
for phase, d, code in (("A", "a", a_code), ("B", "b", b_code)):
    m = meta(d); n, err, classes = trials(d)
    print(f"phase {phase}: exit {code}, trials {n}/{m.get('trials_planned', '?')}, errors {err} {classes}, "
          f"cleanup_errors {len(m.get('cleanup_errors') or [])}")
    for role in sorted({r["role"] for r in rows if r["phase"] == phase}):
        s = [r for r in rows if r["phase"] == phase and r["role"] == role]
        if not s:
            continue
        rss = [int(r["rss_kb"]) / 1024 for r in s]; fds = [int(r["fds"]) for r in s]; thr = [int(r["threads"]) for r in s]
        print(f"  {role:4s} samples {len(s):4d}  over {float(s[-1]['t_s']) - float(s[0]['t_s']):.0f}s  "
              f"RSS MiB min {min(rss):.1f} max {max(rss):.1f} last {rss[-1]:.1f}  "
              f"fds first {fds[0]} max {max(fds)} last {fds[-1]}  threads first {thr[0]} max {max(thr)} last {thr[-1]}  "
              f"goroutines n/a (no Go collector)")
print(f"left on the phase B emulator: tasks {tl}, projects {pl}, webhooks {hl}")
ok = tl == "0" and pl == "0" and hl == "0"
print("soak:", "OK" if ok else "FAIL: objects left behind")
sys.exit(0 if ok else 1)
EOF
