#!/usr/bin/env bash
# Measures mxguard against the physical limit: the same smtp-source load is
# sent (a) straight to Postfix's smtp-sink and (b) through mxguard in front
# of that sink, in one run on one machine. Everything stays on loopback.
#
#   bench/run.sh [MESSAGES] [SESSIONS] [SIZE]
#
# Needs smtp-source and smtp-sink (Debian package postfix) and Go.
set -euo pipefail
cd "$(dirname "$0")/.."

messages=${1:-20000}
sessions=${2:-20}
size=${3:-4096}
work=$(mktemp -d /tmp/mxguard-bench-XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

for tool in smtp-source smtp-sink; do
	command -v "$tool" >/dev/null || { echo "bench: $tool not found (apt-get install postfix)" >&2; exit 1; }
done

go build -o "$work/mxguard" ./cmd/mxguard

sink_port=26001
mx_port=26002
# smtp-sink: a backlog of 256; -u nobody because it refuses to run as root.
smtp-sink -u nobody 127.0.0.1:$sink_port 256 &
pids+=($!)

cat >"$work/mxguard.yaml" <<YAML
hostname: mx.example.org
listen:
  - address: 127.0.0.1:$mx_port
backend:
  address: 127.0.0.1:$sink_port
domains: [example.org]
rules: [$PWD/bench/no-checks.yaml]
authentication_results: false
# Nothing here needs DNS; a loopback address keeps it that way.
dns:
  servers: [127.0.0.1:53]
spool:
  dir: $work
limits:
  # One load generator on one address: per-client rate limits off.
  rate: {connections_per_minute: 0, messages_per_minute: 0, recipients_per_minute: 0}
log:
  level: warn
YAML
"$work/mxguard" serve --config "$work/mxguard.yaml" 2>"$work/mxguard.log" &
mx_pid=$!
pids+=($mx_pid)

for port in $sink_port $mx_port; do
	for _ in $(seq 100); do
		(exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
		sleep 0.05
	done
done

# run LABEL PORT: prints elapsed seconds for the load against PORT.
run() {
	local start end
	start=$(date +%s.%N)
	smtp-source -s "$sessions" -m "$messages" -l "$size" -d \
		-f sender@sender.test -t user@example.org -M client.test "127.0.0.1:$1"
	end=$(date +%s.%N)
	echo "$end - $start" | bc -l
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$mx_pid/stat"; }

# Warm up both paths once.
smtp-source -s 2 -m 200 -l "$size" -f s@sender.test -t user@example.org 127.0.0.1:$sink_port
smtp-source -s 2 -m 200 -l "$size" -f s@sender.test -t user@example.org 127.0.0.1:$mx_port

direct=$(run $sink_port)
t0=$(cpu_ticks)
through=$(run $mx_port)
t1=$(cpu_ticks)
hz=$(getconf CLK_TCK)
rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$mx_pid/status")
failures=$(grep -c 'level=WARN\|level=ERROR' "$work/mxguard.log" || true)

awk -v m="$messages" -v s="$sessions" -v z="$size" -v d="$direct" -v t="$through" \
	-v cpu=$((t1 - t0)) -v hz="$hz" -v rss="$rss_kb" -v f="$failures" 'BEGIN {
	printf "load: %d messages of %d bytes over %d parallel sessions (smtp-source -d)\n", m, z, s
	printf "%-28s %10s %12s\n", "path", "seconds", "messages/s"
	printf "%-28s %10.2f %12.0f\n", "(a) straight to smtp-sink", d, m / d
	printf "%-28s %10.2f %12.0f\n", "(b) through mxguard", t, m / t
	printf "ratio (b)/(a): %.0f%%\n", 100 * d / t
	printf "mxguard CPU: %.2f s per 1,000 messages; peak RSS %.1f MiB; warnings logged: %d\n", cpu / hz / m * 1000, rss / 1024, f
}'
