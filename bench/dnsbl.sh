#!/usr/bin/env bash
# How mxguard's CPU per message grows with the DNS lists it asks: path (c)
# of bench/run.sh (the default rules, every check on, smtp-sink as the
# backend, DNS from "mxguard zone-serve testdata/zones/bench.zone" on
# loopback) with 0, 1, 3 and 10 dnsbl zones: bl.bench.test (weight 10, as
# in path (c)) and bl1.bench.test up, which list nothing. The client
# (127.0.0.1) is on none of them: each zone answers NXDOMAIN, which the
# resolver caches, so after the warm-up every lookup is a cache hit.
#
# One mxguard per zone count, all started at once; the loads run one after
# the other, ROUNDS (2) times over, so that a busy spell of the machine
# falls on every count rather than on one. Two loads per round:
#
#   kept     SESSIONS (10) sessions sending message after message
#            (smtp-source -d, as bench/run.sh): the lists are asked once
#            per session, at connect.
#   single   one session per message, as most senders and every botnet
#            connect: the lists are asked for every message.
#
#   bench/dnsbl.sh [MESSAGES] [SESSIONS]
#   ZONES="0 1 3 10" ROUNDS=2 bench/dnsbl.sh 5000 10
#
# Needs smtp-source and smtp-sink (Debian package postfix) and Go. Not part
# of CI; nothing asks the machine's resolver.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

messages=${1:-5000}
sessions=${2:-10}
size=4096
zone_counts=${ZONES:-0 1 3 10}
rounds=${ROUNDS:-2}
bench_work dnsbl

for tool in smtp-source smtp-sink; do
	command -v "$tool" >/dev/null || { echo "bench: $tool not found (apt-get install postfix)" >&2; exit 1; }
done
build_mxguard

sink_port=26041
smtp-sink -u nobody 127.0.0.1:$sink_port 1024 &
pids+=($!)
start_zone

# zones N: the dnsbl section with N zones.
zones() {
	if (($1 == 0)); then
		echo "dnsbl: []"
		return
	fi
	echo "dnsbl:"
	printf '  - zone: bl.bench.test\n    weight: 10\n'
	for i in $(seq 1 $(($1 - 1))); do
		printf '  - zone: bl%d.bench.test\n    weight: 1\n' "$i"
	done
}
declare -A port=() pid=()
p=26042
for z in $zone_counts; do
	port[$z]=$p
	p=$((p + 1))
	mkdir -p "$work/spool-$z" "$work/state-$z"
	# Path (c)'s config with its dnsbl section replaced.
	{
		checks_config 127.0.0.1:${port[$z]} 127.0.0.1:$sink_port "$work/spool-$z" "$work/verdicts-$z.jsonl" |
			awk -v zones="$(zones "$z")" '
				/^dnsbl:/ { print zones; skip = 1; next }
				skip && /^  / { next }
				{ skip = 0; print }'
		printf 'state:\n  dir: %s\n' "$work/state-$z"
	} >"$work/mxguard-$z.yaml"
	"$work/mxguard" serve --config "$work/mxguard-$z.yaml" 2>"$work/mxguard-$z.log" &
	pid[$z]=$!
	pids+=(${pid[$z]})
done
for z in $zone_counts; do
	for _ in $(seq 200); do
		(exec 3<>/dev/tcp/127.0.0.1/${port[$z]}) 2>/dev/null && break
		sleep 0.05
	done
done

# source_msgs PORT MESSAGES [-d]
source_msgs() {
	smtp-source -s "$sessions" -m "$2" -l "$size" ${3:-} -f sender@sender.test -t user@example.org -M client.test 127.0.0.1:$1
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

echo "machine: $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), $(cpu_busy)% busy just before, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "mxguard $(git describe --always --dirty 2>/dev/null || echo '?'); $messages messages of $size bytes over $sessions sessions, $rounds rounds"
# Warm-up: every zone's NXDOMAIN, SPF, DKIM, DMARC and the recipient in
# the caches.
for z in $zone_counts; do
	source_msgs ${port[$z]} 200 -d >/dev/null
	source_msgs ${port[$z]} 200 >/dev/null
done

printf "%-6s %-6s %5s %8s %10s %14s\n" round load zones msg/s "CPU us/msg" "connections"
for round in $(seq "$rounds"); do
	for load in kept single; do
		flag=
		[ "$load" = kept ] && flag=-d
		for z in $zone_counts; do
			t0=$(ticks "${pid[$z]}") start=$(date +%s.%N)
			source_msgs ${port[$z]} "$messages" $flag
			end=$(date +%s.%N) t1=$(ticks "${pid[$z]}")
			conns=$sessions
			[ "$load" = single ] && conns=$messages
			awk -v r="$round" -v l="$load" -v z="$z" -v m="$messages" -v s="$(echo "$end - $start" | bc -l)" \
				-v t=$((t1 - t0)) -v hz="$hz" -v c="$conns" \
				'BEGIN { printf "%-6s %-6s %5d %8.0f %10.0f %14d\n", r, l, z, m / s, 1e6 * t / hz / m, c }'
		done
	done
done

# Every message was accepted, and every list answered (no "failed:").
for z in $zone_counts; do
	lines=$(wc -l <"$work/verdicts-$z.jsonl")
	accepted=$(grep -c '"action":"accept"' "$work/verdicts-$z.jsonl" || true)
	failed=$(grep -c 'failed: ' "$work/verdicts-$z.jsonl" || true)
	echo "zones=$z: $lines verdicts, $accepted accepted, $failed with a failed list"
done
echo "load average now $(cut -d' ' -f1-3 /proc/loadavg)"
