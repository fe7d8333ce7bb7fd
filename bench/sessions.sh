#!/usr/bin/env bash
# How mxguard's CPU per message grows with the sessions it holds open, in
# path (c) of bench/run.sh (the default rules, every check on, DNS from
# "mxguard zone-serve testdata/zones/bench.zone" on loopback, smtp-sink as
# the backend). For each N of SESSIONS, against a fresh mxguard:
#
#   idle    N - SENDERS sessions held idle after EHLO (smtpload -mode hold,
#           spread over the loopback sources 127.0.0.1-127.0.0.254) while
#           SENDERS (8) sessions send MESSAGES (10,000) messages back to
#           back: what idle sessions cost the busy ones.
#   spread  N sessions share one offered load of RATE (500) messages a
#           second, each sending a message every N / RATE seconds on its
#           kept connection (smtpload -pause): the same work spread over
#           more sessions. Measured over WINDOW (20) seconds once every
#           session has sent its first message, so that connecting and
#           EHLO are not counted; the messages are the verdict log's lines.
#
# Each line gives msg/s, mxguard's CPU per message (utime + stime from
# /proc/PID/stat) and the kernel's part of it (stime), and the garbage collector's share of it from
# GODEBUG=gctrace=1: its cycles per 1,000 messages, its CPU per message
# (the "ms cpu" fields of each cycle), the heap after the last cycle and
# the goroutine stacks. PROFILE_DIR=DIR keeps a CPU profile of each
# measurement, and a heap profile and the goroutines at its end, there.
#
#   bench/sessions.sh [MESSAGES] [SENDERS]
#   SESSIONS="10 100 1000 10000" MODES="idle spread" RATE=500 WINDOW=20 bench/sessions.sh
#
# Slow (a few minutes) and not part of CI. Needs smtp-sink (Debian package
# postfix) and Go. Everything stays on loopback; nothing asks the
# machine's resolver.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

messages=${1:-10000}
senders=${2:-8}
sessions_list=${SESSIONS:-10 100 1000 10000}
modes=${MODES:-idle spread}
rate=${RATE:-500}
window=${WINDOW:-20}

max=0
for n in $sessions_list; do ((n > max)) && max=$n; done
# Each side of the sessions needs a descriptor per session.
raise_fd_limit "$max"

bench_work sessions
command -v smtp-sink >/dev/null || { echo "bench: smtp-sink not found (apt-get install postfix)" >&2; exit 1; }
build_mxguard
go build -o "$work/smtpload" ./bench/smtpload

sink_port=26031
mx_port=26032
metrics_port=26033
smtp-sink -u nobody 127.0.0.1:$sink_port 4096 &
pids+=($!)
start_zone

mkdir -p "$work/spool" "$work/state"
{
	checks_config 127.0.0.1:$mx_port 127.0.0.1:$sink_port "$work/spool" "$work/verdicts.jsonl" \
		"$(printf '  max_connections: %d\n  max_connections_per_ip: %d' $((max + 100)) $((max + 100)))"
	echo "drain_timeout: 5s"
	printf 'state:\n  dir: %s\n' "$work/state"
	if [ -n "${PROFILE_DIR:-}" ]; then
		printf 'metrics:\n  address: 127.0.0.1:%s\n  pprof: true\n' $metrics_port
	fi
} >"$work/mxguard.yaml"

hz=$(getconf CLK_TCK)
mx_pid=
start_mxguard() {
	: >"$work/mxguard.log"
	GODEBUG=gctrace=1 "$work/mxguard" serve --config "$work/mxguard.yaml" 2>"$work/mxguard.log" &
	mx_pid=$!
	pids+=($mx_pid)
	for _ in $(seq 100); do
		(exec 3<>/dev/tcp/127.0.0.1/$mx_port) 2>/dev/null && break
		sleep 0.05
	done
	# Warm caches: DNS, recipients, the backend's connections.
	"$work/smtpload" -addr 127.0.0.1:$mx_port -n 400 -c "$senders" >/dev/null
}
stop_mxguard() {
	kill -TERM "$mx_pid"
	wait "$mx_pid" 2>/dev/null || true
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
sys_ticks() { awk '{print $15}' "/proc/$1/stat"; }
rss_mib() { awk '$1 == "VmRSS:" {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }
verdicts() { wc -l <"$work/verdicts.jsonl"; }
gc_lines() { grep -c '^gc ' "$work/mxguard.log" || true; }
# gc_since LINE: cycles after the first LINE gctrace lines, their CPU in
# ms (assist + background + idle mark, and the two stop-the-world phases),
# the heap after the last one (MB) and the goroutine stacks it saw (MB).
gc_since() {
	grep '^gc ' "$work/mxguard.log" | tail -n +$(($1 + 1)) | awk '
		{ n++
		  for (i = 1; i <= NF; i++) if ($(i + 1) == "ms" && $(i + 2) == "cpu,") cpu = $i
		  split(cpu, p, "[+/]"); for (j in p) ms += p[j]
		  for (i = 1; i <= NF; i++) if ($i == "MB," && $(i + 3) == "goal,") { split($(i - 1), h, "->"); live = h[3] }
		  for (i = 1; i <= NF; i++) if ($(i + 1) == "MB" && $(i + 2) == "stacks,") stacks = $i }
		END { printf "%d %.1f %s %s\n", n, ms, live + 0, stacks + 0 }'
}
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

# profile MODE N: with PROFILE_DIR, keeps mxguard's heap profile (after a
# collection) and its goroutines at the end of the measurement.
profile() {
	[ -n "${PROFILE_DIR:-}" ] || return 0
	mkdir -p "$PROFILE_DIR"
	curl -sf -o "$PROFILE_DIR/heap-$1-$2.pb.gz" "http://127.0.0.1:$metrics_port/debug/pprof/heap?gc=1"
	curl -sf -o "$PROFILE_DIR/goroutine-$1-$2.txt" "http://127.0.0.1:$metrics_port/debug/pprof/goroutine?debug=1"
}

# cpu_profile MODE N SECONDS: with PROFILE_DIR, a CPU profile of mxguard
# over the next SECONDS, in the background.
cpu_profile() {
	[ -n "${PROFILE_DIR:-}" ] || return 0
	mkdir -p "$PROFILE_DIR"
	curl -sf -o "$PROFILE_DIR/cpu-$1-$2.pprof" "http://127.0.0.1:$metrics_port/debug/pprof/profile?seconds=$3" &
}

# report MODE N MSGS SECONDS TICKS SYS_TICKS GC0: one line of the table.
report() {
	local gc
	gc=($(gc_since "$7"))
	awk -v mode="$1" -v n="$2" -v m="$3" -v s="$4" -v t="$5" -v st="$6" -v hz="$hz" -v gcs="${gc[0]}" -v gcms="${gc[1]}" \
		-v live="${gc[2]}" -v stacks="${gc[3]}" -v rss="$(rss_mib "$mx_pid")" \
		'BEGIN { printf "%-7s %6d %8d %8.1f %8.0f %10.0f %10.0f %10.1f %10.0f %7s MB %6s MB %6d MiB\n",
			mode, n, m, s, m / s, 1e6 * t / hz / m, 1e6 * st / hz / m, 1000 * gcs / m, 1000 * gcms / m, live, stacks, rss }'
}

echo "machine: $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), $(cpu_busy)% busy just before, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "mxguard $(git describe --always --dirty 2>/dev/null || echo '?'), $(go version | cut -d' ' -f3); idle: $messages messages over $senders senders; spread: $rate msg/s offered, ${window}s window"
printf "%-7s %6s %8s %8s %8s %10s %10s %10s %10s %10s %9s %10s\n" mode sessions messages seconds msg/s "CPU us/msg" "of it sys" "GCs/1k msg" "GC us/msg" "heap live" stacks RSS

for mode in $modes; do
	for n in $sessions_list; do
		start_mxguard
		case $mode in
		idle)
			idle=$((n - senders))
			hold_pid=
			if ((idle > 0)); then
				"$work/smtpload" -addr 127.0.0.1:$mx_port -mode hold -c "$idle" -sources 254 -duration 30m >"$work/hold.out" 2>"$work/hold.err" &
				hold_pid=$!
				pids+=($hold_pid)
				wait_for "$work/hold.out" '^holding'
				grep -q "^holding $idle sessions" "$work/hold.out" || { cat "$work/hold.out" "$work/hold.err" >&2; exit 1; }
			fi
			# The collector's cycle after the sessions opened.
			sleep 3
			g0=$(gc_lines) t0=$(ticks "$mx_pid") s0=$(sys_ticks "$mx_pid") start=$(date +%s.%N)
			cpu_profile idle "$n" 3
			"$work/smtpload" -addr 127.0.0.1:$mx_port -n "$messages" -c "$senders" >"$work/send.out"
			end=$(date +%s.%N) t1=$(ticks "$mx_pid") s1=$(sys_ticks "$mx_pid")
			report idle "$n" "$messages" "$(echo "$end - $start" | bc -l)" $((t1 - t0)) $((s1 - s0)) "$g0"
			profile idle "$n"
			if [ -n "$hold_pid" ]; then
				kill -TERM "$hold_pid"
				wait "$hold_pid" || true
				lost=$(sed -n 's/.*lost=\([0-9]*\).*/\1/p' "$work/hold.out")
				[ "${lost:-0}" = 0 ] || echo "bench: $lost idle sessions were closed by mxguard" >&2
			fi
			;;
		spread)
			# Each session sends a message every n / rate seconds.
			pause=$(echo "$n / $rate" | bc -l)
			# Enough messages for the first pause and the window, twice.
			total=$(echo "2 * ($rate * ($window + $pause) + $n)" | bc)
			total=${total%.*}
			"$work/smtpload" -addr 127.0.0.1:$mx_port -n "$total" -c "$n" -sources 254 -pause "${pause}s" >"$work/spread.out" 2>"$work/spread.err" &
			load_pid=$!
			pids+=($load_pid)
			wait_for "$work/spread.out" '^all .* sessions open'
			g0=$(gc_lines) t0=$(ticks "$mx_pid") s0=$(sys_ticks "$mx_pid") v0=$(verdicts) start=$(date +%s.%N)
			cpu_profile spread "$n" "$window"
			sleep "$window"
			end=$(date +%s.%N) t1=$(ticks "$mx_pid") s1=$(sys_ticks "$mx_pid") v1=$(verdicts)
			report spread "$n" $((v1 - v0)) "$(echo "$end - $start" | bc -l)" $((t1 - t0)) $((s1 - s0)) "$g0"
			profile spread "$n"
			kill "$load_pid"
			wait "$load_pid" 2>/dev/null || true
			if [ -s "$work/spread.err" ]; then
				echo "bench: smtpload reported failures:" >&2
				head -n 5 "$work/spread.err" >&2
			fi
			;;
		*)
			echo "bench: unknown mode $mode" >&2
			exit 1
			;;
		esac
		stop_mxguard
	done
done
summary=$("$work/mxguard" verdicts --summary "$work/verdicts.jsonl" | sed -n '/^by action:/,/^$/p')
echo "mxguard verdicts --summary:"
echo "$summary"
echo "load average now $(cut -d' ' -f1-3 /proc/loadavg)"
