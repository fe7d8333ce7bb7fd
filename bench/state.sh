#!/usr/bin/env bash
# Measures what the state store costs the common path: path (c) of
# bench/run.sh (the default rules, every check on) against (f) the same with
# greylisting on and the rate limits charged to the embedded store, and (g)
# the same with Redis on loopback (the Debian package's redis-server, in a
# temporary folder) as a fleet would share it. The client is known to the
# greylist (the warm-up passes it), so what is measured is the lookup every
# recipient costs, not the delay. Redis counts its own commands (INFO
# commandstats and INFO stats): the commands and round trips per message are read from there.
#
#   bench/state.sh [MESSAGES] [SESSIONS] [SIZE]
#
# ONE_PER_SESSION=1 opens a session per message (see source_msgs);
# RCPTS=N sends N recipients per message (smtp-source numbers them).
# PROFILE=DIR writes a CPU profile of each path's mxguard (its first
# PROFILE_SECONDS, default 3) to DIR/c.pprof, f.pprof, g.pprof.
#
# Needs smtp-source and smtp-sink (Debian package postfix), redis-server
# and redis-cli (Debian package redis-server) and Go. Everything stays on
# loopback; nothing asks the machine's resolver.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

messages=${1:-10000}
sessions=${2:-20}
size=${3:-4096}
bench_work state-bench

for tool in smtp-source smtp-sink redis-server redis-cli; do
	command -v "$tool" >/dev/null || { echo "bench: $tool not found (apt-get install postfix redis-server)" >&2; exit 1; }
done
build_mxguard

sink_port=26101
redis_port=26102
smtp-sink -u nobody 127.0.0.1:$sink_port 256 &
pids+=($!)
start_zone
mkdir -p "$work/redis"
redis-server --port $redis_port --bind 127.0.0.1 --save '' --appendonly no --dir "$work/redis" >"$work/redis.log" 2>&1 &
redis_pid=$!
pids+=($!)
for _ in $(seq 100); do
	redis-cli -p $redis_port ping >/dev/null 2>&1 && break
	sleep 0.05
done

# config PATH PORT: path (c)'s configuration, and for f and g greylisting
# and rate limits far above the load (so every event is charged to the
# store and none refused), loopback not exempt.
config() {
	local lines=""
	if [ "$1" != c ]; then
		lines="  exempt: []"
	fi
	checks_config 127.0.0.1:$2 127.0.0.1:$sink_port "$work/spool-$1" "$work/verdicts-$1.jsonl" "$lines"
	mkdir -p "$work/spool-$1" "$work/state-$1"
	echo "state:"
	echo "  dir: $work/state-$1"
	[ "$1" = g ] && printf '  redis:\n    address: 127.0.0.1:%s\n' $redis_port
	if [ "$1" != c ]; then
		printf 'greylist:\n  enabled: true\n  delay: 1s\n'
	fi
	if [ -n "${PROFILE:-}" ]; then
		printf 'metrics:\n  address: 127.0.0.1:%s\n  pprof: true\n' $(($2 + 10))
	fi
}
declare -A port=([c]=26103 [f]=26104 [g]=26105) pid=()
for p in c f g; do
	config $p ${port[$p]} >"$work/mxguard-$p.yaml"
	if [ "$p" != c ]; then
		sed -i 's/rate: {connections_per_minute: 0, messages_per_minute: 0, recipients_per_minute: 0}/rate: {connections_per_minute: 1000000, messages_per_minute: 1000000, recipients_per_minute: 1000000}/' "$work/mxguard-$p.yaml"
	fi
	"$work/mxguard" serve --config "$work/mxguard-$p.yaml" 2>"$work/mxguard-$p.log" &
	pid[$p]=$!
	pids+=(${pid[$p]})
done
for p in c f g; do
	for _ in $(seq 200); do
		(exec 3<>/dev/tcp/127.0.0.1/${port[$p]}) 2>/dev/null && break
		sleep 0.05
	done
done

# Sessions send message after message (smtp-source -d), as a large
# sender on a kept connection does; ONE_PER_SESSION=1 sends one message
# per session, as most senders and all of a botnet do.
keep=-d
[ -n "${ONE_PER_SESSION:-}" ] && keep=
source_msgs() { # PORT MESSAGES
	smtp-source -s "$sessions" -m "$2" -l "$size" -r "${RCPTS:-1}" $keep -f sender@nospf.test -t user@example.org -M client.test 127.0.0.1:$1
}
busy=$(cpu_busy)
echo "machine: $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), ${busy}% busy just before"
# Warm-up: the caches, and the greylist: the first messages are delayed
# (451), their retries a second later pass, and the client's network is
# known from then on.
for p in c f g; do
	source_msgs ${port[$p]} 40 >/dev/null 2>&1 || true
done
sleep 1.2
for p in c f g; do
	source_msgs ${port[$p]} 400 >/dev/null 2>&1 || true
done

# redis_calls: the scripts Redis ran (EVALSHA, EVAL) and the plain
# commands a client sends on its own (GET and SET of the recipient cache
# are counted here, though a script runs them too: after the warm-up the
# cache is warm). redis_reads: the reads Redis served, one per round trip
# (a pipeline of several commands is one read).
redis_calls() { redis-cli -p $redis_port info commandstats | awk -F'[=,:]' '/^cmdstat_(evalsha|eval|hello|ping|del|scan|pttl):/ { n += $3 } END { print n + 0 }'; }
redis_reads() { redis-cli -p $redis_port info stats | awk -F: '/^total_reads_processed:/ { print $2 + 0 }'; }
redis_stats() { redis-cli -p $redis_port info commandstats | grep -v cmdstat_info; }
printf "%-44s %8s %12s %14s\n" path seconds messages/s "CPU us/msg"
for p in c f g; do
	r0=$(redis_calls) q0=$(redis_reads) rt0=$(awk '{print $14 + $15}' /proc/$redis_pid/stat)
	t0=$(awk '{print $14 + $15}' /proc/${pid[$p]}/stat)
	start=$(date +%s.%N)
	if [ -n "${PROFILE:-}" ]; then
		# A CPU profile of the first seconds of the run (go tool pprof).
		mkdir -p "$PROFILE"
		curl -s -o "$PROFILE/$p.pprof" "http://127.0.0.1:$((${port[$p]} + 10))/debug/pprof/profile?seconds=${PROFILE_SECONDS:-3}" &
	fi
	source_msgs ${port[$p]} "$messages"
	end=$(date +%s.%N)
	t1=$(awk '{print $14 + $15}' /proc/${pid[$p]}/stat)
	r1=$(redis_calls) q1=$(redis_reads) rt1=$(awk '{print $14 + $15}' /proc/$redis_pid/stat)
	secs=$(echo "$end - $start" | bc -l)
	hz=$(getconf CLK_TCK)
	case $p in
	c) name="(c) default rules, all checks" ;;
	f) name="(f) + greylisting, rate limits: embedded" ;;
	g) name="(g) + greylisting, rate limits: Redis" ;;
	esac
	awk -v n="$name" -v s="$secs" -v m="$messages" -v t=$((t1 - t0)) -v hz="$hz" \
		'BEGIN { printf "%-44s %8.2f %12.0f %14.0f\n", n, s, m / s, 1e6 * t / hz / m }'
	[ "$p" = g ] && [ -n "${VERBOSE:-}" ] && redis_stats
	# Each redis-cli call between the marks is one read more: two.
	[ "$p" = g ] && awk -v r=$((r1 - r0)) -v q=$((q1 - q0 - 2)) -v m="$messages" -v s="$sessions" 'BEGIN { printf "Redis in (g), per message: %.2f commands in %.2f round trips (%d messages over %d connections)\n", r / m, q / m, m, s }'
	[ "$p" = g ] && awk -v t=$((rt1 - rt0)) -v m="$messages" -v hz="$hz" 'BEGIN { printf "redis-server CPU per message in (g): %.0f us\n", 1e6 * t / hz / m }'
done
echo "greylist answers in (g): $(grep -o '"greylist \\u003cuser@example.org\\u003e":{"result":"[a-z]*"' "$work/verdicts-g.jsonl" | sed 's/.*"result":"//; s/"$//' | sort | uniq -c | sort -rn | tr '\n' ' ')"
