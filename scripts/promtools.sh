#!/usr/bin/env bash
# Finds or gets a real Prometheus and Pushgateway for the metrics integration test, and prints two shell lines
# for `eval` that name them:
#
#   export CVATBENCH_PROMETHEUS=/path/to/prometheus
#   export CVATBENCH_PUSHGATEWAY_BIN=/path/to/pushgateway
#
#   scripts/promtools.sh [DIR]   DIR defaults to ~/.cache/cvatbench/bin
#
# In this order: the variables if already set; the programs on PATH (Debian's prometheus and
# prometheus-pushgateway); earlier builds in DIR; Debian's packages when running as root with apt-get; else
# builds of pinned releases from source through the Go module proxy into DIR, which needs no root (about 30 s
# for the Pushgateway and 8 minutes for Prometheus on 2 cores with a cold module cache, once per machine).
# Progress goes to stderr; stdout carries only the two lines.
set -euo pipefail

dir=${1:-$HOME/.cache/cvatbench/bin}
PROMETHEUS_MODULE=github.com/prometheus/prometheus
PROMETHEUS_VERSION=v0.316.0 # Prometheus 3.x; its Go module numbers releases v0.3xx
PUSHGATEWAY_MODULE=github.com/prometheus/pushgateway
PUSHGATEWAY_VERSION=v1.11.1

# build MODULE VERSION PACKAGE OUT: compile PACKAGE of MODULE@VERSION. A throwaway main module requires it, so
# that MVS picks exactly the release's own dependency versions; `go install pkg@version` would also need the
# proxy's version list, which some mirrors refuse.
build() {
	local module=$1 version=$2 pkg=$3 out=$4 src
	src=$(mktemp -d)
	trap 'rm -rf "$src"' RETURN
	printf 'module cvatbench.local/promtools\n\ngo 1.24\n\nrequire %s %s\n' "$module" "$version" >"$src/go.mod"
	echo "promtools: building $pkg@$version into $out (once per machine)" >&2
	(cd "$src" && GOFLAGS=-mod=mod go build -trimpath -o "$out.tmp" "$pkg") >&2
	mv "$out.tmp" "$out"
}

# find VAR NAME...: the first of $VAR, PATH names, or DIR/NAME-version.
find_tool() {
	local var=$1 cached=$2
	shift 2
	if [ -n "${!var:-}" ]; then
		echo "${!var}"
		return
	fi
	local n
	for n in "$@"; do
		if command -v "$n" >/dev/null 2>&1; then
			command -v "$n"
			return
		fi
	done
	if [ -x "$cached" ]; then
		echo "$cached"
	fi
}

prom_cached=$dir/prometheus-$PROMETHEUS_VERSION
pgw_cached=$dir/pushgateway-$PUSHGATEWAY_VERSION
prom=$(find_tool CVATBENCH_PROMETHEUS "$prom_cached" prometheus)
pgw=$(find_tool CVATBENCH_PUSHGATEWAY_BIN "$pgw_cached" prometheus-pushgateway pushgateway)

if { [ -z "$prom" ] || [ -z "$pgw" ]; } && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "promtools: installing Debian's prometheus and prometheus-pushgateway" >&2
	if DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus prometheus-pushgateway >&2 ||
		{ apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus prometheus-pushgateway >&2; }; then
		# The packages may start system services; the test runs its own instances on free ports.
		(command -v service >/dev/null && { service prometheus stop; service prometheus-pushgateway stop; }) >/dev/null 2>&1 || true
		prom=${prom:-$(command -v prometheus || true)}
		pgw=${pgw:-$(command -v prometheus-pushgateway || true)}
	fi
fi

mkdir -p "$dir"
if [ -z "$pgw" ]; then
	build "$PUSHGATEWAY_MODULE" "$PUSHGATEWAY_VERSION" "$PUSHGATEWAY_MODULE" "$pgw_cached"
	pgw=$pgw_cached
fi
if [ -z "$prom" ]; then
	build "$PROMETHEUS_MODULE" "$PROMETHEUS_VERSION" "$PROMETHEUS_MODULE/cmd/prometheus" "$prom_cached"
	prom=$prom_cached
fi
printf 'export CVATBENCH_PROMETHEUS=%q\nexport CVATBENCH_PUSHGATEWAY_BIN=%q\n' "$prom" "$pgw"
