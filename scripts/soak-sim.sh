#!/usr/bin/env bash
# Memory soak of a standalone emulator (not part of `make test`): one `cvatbench sim --profile instant` serves
# SOAK_RUNS runs of SOAK_RUN_TRIALS trials each (poll and sdk, concurrency 16, each run cleaning up after
# itself); the emulator's VmRSS is sampled after every run. The issue's bound: RSS after the last run within
# 2x of RSS after the first. Prints the samples as CSV and the ratio.
#
#   scripts/soak-sim.sh [OUT_DIR]     knobs (env): CVATBENCH_BIN, SOAK_RUNS=20, SOAK_RUN_TRIALS=1000, SOAK_PORT
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-results/soak-sim-$(date -u +%Y%m%dT%H%M%SZ)}
RUNS=${SOAK_RUNS:-20}
PER=${SOAK_RUN_TRIALS:-1000}
PORT=${SOAK_PORT:-18996}
BIN=${CVATBENCH_BIN:-bin/cvatbench}
[[ -x $BIN ]] || go build -o "$BIN" ./cmd/cvatbench
mkdir -p "$OUT"
"$BIN" sim --addr "127.0.0.1:$PORT" --profile instant --password soak-pw 2>"$OUT/sim.err" &
SIM=$!
trap 'kill -INT $SIM 2>/dev/null || true' EXIT
for _ in $(seq 50); do grep -q listening "$OUT/sim.err" && break; sleep 0.1; done
echo "run,trials,sim_rss_kb" | tee "$OUT/samples.csv"
for i in $(seq "$RUNS"); do
	CVAT_PASSWORD=soak-pw "$BIN" run --url "http://127.0.0.1:$PORT" --user admin --tasks $((PER / 2)) --strategies poll,sdk \
		--concurrency 16 --images 1 --image-size 16x16 --poll-interval 20ms --sdk-period 20ms --out "$OUT/runs" -q \
		>"$OUT/run$i.out" 2>"$OUT/run$i.err"
	echo "$i,$((i * PER)),$(awk '/VmRSS/{print $2}' "/proc/$SIM/status")" | tee -a "$OUT/samples.csv"
done
awk -F, 'NR==2{first=$3} END{printf "rss after the last run / after the first: %.2f\n", $3/first}' "$OUT/samples.csv"
