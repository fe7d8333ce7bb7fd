#!/usr/bin/env bash
# mxguard's memory with many idle sessions: SESSIONS connections (default
# 10,000) held open by bench/idleclient, a process of its own, in two
# states: idle after the banner (before EHLO) and idle after EHLO. Each
# state gets a fresh mxguard, so that its peak RSS (VmHWM) is the state's
# own; the script prints VmRSS and VmHWM from /proc/PID/status, the
# goroutines, and the Go heap in use (from metrics.pprof on loopback).
#
#   bench/idle.sh [SESSIONS]
#
# The config is the core proxy (bench/no-checks.yaml: no DNS-using check),
# its DNS pointed at "mxguard zone-serve" on loopback so that nothing asks
# the machine's resolver; rate limits off, and the connection limits above
# SESSIONS. limits.command_timeout stays at its default (5m), longer than
# the measurement. PROFILE_DIR=DIR keeps a heap profile per state there
# (go tool pprof -sample_index=inuse_space). Needs Go; not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

sessions=${1:-10000}

# Each side holds SESSIONS descriptors, each in its own process.
raise_fd_limit "$sessions" 200

bench_work idle
build_mxguard
go build -o "$work/idleclient" ./bench/idleclient
start_zone

mx_port=26021
metrics_port=26022
# Nothing is delivered: the backend's port is never dialled.
backend_port=26023
mkdir -p "$work/spool" "$work/state"
cat >"$work/mxguard.yaml" <<YAML
hostname: mx.example.org
listen:
  - address: 127.0.0.1:$mx_port
backend:
  address: 127.0.0.1:$backend_port
domains: [example.org]
rules: [$PWD/bench/no-checks.yaml]
authentication_results: false
dns:
  servers: [$dns]
spool:
  dir: $work/spool
state:
  dir: $work/state
metrics:
  address: 127.0.0.1:$metrics_port
  pprof: true
limits:
  max_connections: $((sessions + 100))
  max_connections_per_ip: $((sessions + 100))
  rate: {connections_per_minute: 0, messages_per_minute: 0, recipients_per_minute: 0}
log:
  level: warn
YAML

rss_mib() { awk -v k="$2:" '$1 == k {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
# wait_for FILE PATTERN: waits up to five minutes for PATTERN in FILE.
wait_for() {
	for _ in $(seq 3000); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "bench: timed out waiting for \"$2\" in $1" >&2
	cat "$1" >&2
	return 1
}
pprof_get() { curl -sf "http://127.0.0.1:$metrics_port/debug/pprof/$1"; }

echo "machine: $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), $(cpu_busy)% busy just before, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "mxguard $(git describe --always --dirty 2>/dev/null || echo '?'), $(go version | cut -d' ' -f3)"

# measure STATE [-ehlo]
measure() {
	local state=$1
	shift
	"$work/mxguard" serve --config "$work/mxguard.yaml" 2>>"$work/mxguard.log" &
	local mx=$!
	pids+=($mx)
	for _ in $(seq 100); do
		(exec 3<>/dev/tcp/127.0.0.1/$mx_port) 2>/dev/null && break
		sleep 0.05
	done
	sleep 0.5
	local base
	base=$(rss_mib "$mx" VmRSS)
	"$work/idleclient" -addr 127.0.0.1:$mx_port -n "$sessions" -sources 254 -duration 10m "$@" >"$work/client.out" 2>"$work/client.err" &
	local client=$!
	pids+=($client)
	wait_for "$work/client.out" '^holding'
	# The runtime settles: the GC cycle after the last session opened.
	sleep 3
	local rss hwm held goroutines heap
	rss=$(rss_mib "$mx" VmRSS)
	hwm=$(rss_mib "$mx" VmHWM)
	held=$(sed -n 's/^holding \([0-9]*\) sessions.*/\1/p' "$work/client.out")
	goroutines=$(pprof_get 'goroutine?debug=1' | sed -n 's/^goroutine profile: total //p')
	heap=$(pprof_get 'heap?debug=1' | sed -n 's/^# HeapInuse = //p')
	stacks=$(pprof_get 'heap?debug=1' | sed -n 's/^# Stack = \([0-9]*\).*/\1/p')
	if [ -n "${PROFILE_DIR:-}" ]; then
		mkdir -p "$PROFILE_DIR"
		pprof_get 'heap?gc=1' >"$PROFILE_DIR/heap-$state.pb.gz"
		pprof_get 'goroutine?debug=1' >"$PROFILE_DIR/goroutine-$state.txt"
	fi
	kill -TERM "$client"
	wait "$client" || true
	local lost
	lost=$(sed -n 's/.*lost=\([0-9]*\).*/\1/p' "$work/client.out")
	kill -TERM "$mx"
	wait "$mx" 2>/dev/null || true
	printf '%-22s %6d held (%s lost): VmRSS %6s MiB, VmHWM %6s MiB (%s MiB before): %.1f KiB per session; %s goroutines, heap in use %.1f MiB, stacks %.1f MiB\n' \
		"$state" "$held" "${lost:-?}" "$rss" "$hwm" "$base" "$(echo "($rss - $base) * 1024 / $held" | bc -l)" \
		"$goroutines" "$(echo "${heap:-0} / 1048576" | bc -l)" "$(echo "${stacks:-0} / 1048576" | bc -l)"
}

echo "$sessions idle sessions, a fresh mxguard for each state:"
measure after-banner
measure after-ehlo -ehlo
warnings=$(grep -c 'level=WARN\|level=ERROR' "$work/mxguard.log" || true)
echo "warnings logged: $warnings; load average now $(cut -d' ' -f1-3 /proc/loadavg)"
