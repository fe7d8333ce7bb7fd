#!/usr/bin/env bash
# mxguard under many connections, with the default rules and every check on
# (as path (c) of bench/run.sh), in front of Postfix's smtp-sink, its DNS
# answered by "mxguard zone-serve" from testdata/zones/bench.zone. Three
# tests, each against a fresh mxguard so that its peak RSS is the test's own:
#
#   1. IDLE sessions idle after EHLO: mxguard's RSS (target <= 300 MB).
#   2. TRICKLE clients trickling a DATA body one byte a second, while one
#      well-behaved client delivers a message: its delivery time, connect to
#      QUIT (target < 1 s).
#   3. BIG concurrent messages of BIG_SIZE bytes: peak RSS (bounded: big
#      messages go to the spool, not memory), and the spool folder is empty
#      afterwards.
#
#   bench/many.sh            # IDLE=10000 TRICKLE=2000 BIG=50 BIG_SIZE=20000000
#
# Clients spread over the loopback sources 127.0.0.1-127.0.0.254 (Linux
# routes all of 127/8 to lo). Slow (a few minutes) and not part of CI.
# Needs smtp-sink (Debian package postfix) and Go.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

idle=${IDLE:-10000}
trickle=${TRICKLE:-2000}
big=${BIG:-50}
big_size=${BIG_SIZE:-20000000}

# Each side of 10,000 sessions needs 10,000 descriptors.
raise_fd_limit "$idle"

bench_work many

command -v smtp-sink >/dev/null || { echo "bench: smtp-sink not found (apt-get install postfix)" >&2; exit 1; }

build_mxguard
go build -o "$work/smtpload" ./bench/smtpload

sink_port=26011
mx_port=26012
smtp-sink -u nobody 127.0.0.1:$sink_port 4096 &
pids+=($!)

start_zone

mkdir -p "$work/spool"
{
	checks_config 127.0.0.1:$mx_port 127.0.0.1:$sink_port "$work/spool" "$work/verdicts.jsonl" \
		"$(printf '  max_connections: 20000\n  max_connections_per_ip: 20000')"
	echo "drain_timeout: 5s"
} >"$work/mxguard.yaml"

mx_pid=
start_mxguard() {
	"$work/mxguard" serve --config "$work/mxguard.yaml" 2>>"$work/mxguard.log" &
	mx_pid=$!
	pids+=($mx_pid)
	for _ in $(seq 100); do
		(exec 3<>/dev/tcp/127.0.0.1/$mx_port) 2>/dev/null && break
		sleep 0.05
	done
	# One delivery fills the DNS and recipient caches.
	"$work/smtpload" -addr 127.0.0.1:$mx_port -n 1 -c 1 >/dev/null
}
stop_mxguard() {
	kill -TERM "$mx_pid"
	wait "$mx_pid" 2>/dev/null || true
}
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
# deliver: one well-behaved delivery from 127.0.0.1; prints the seconds from
# connect to QUIT.
deliver() {
	local start end
	start=$(date +%s.%N)
	"$work/smtpload" -addr 127.0.0.1:$mx_port -n 1 -c 1 >"$work/deliver.out"
	end=$(date +%s.%N)
	echo "$end - $start" | bc -l
}

echo "machine: $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), $(cpu_busy)% busy just before, load average $(cut -d' ' -f1-3 /proc/loadavg)"

# 1. Idle sessions.
start_mxguard
base=$(rss_mib "$mx_pid" VmRSS)
"$work/smtpload" -addr 127.0.0.1:$mx_port -mode hold -c "$idle" -sources 254 -duration 10m >"$work/hold.out" 2>"$work/hold.err" &
hold_pid=$!
pids+=($hold_pid)
wait_for "$work/hold.out" '^holding'
sleep 2
held_rss=$(rss_mib "$mx_pid" VmRSS)
held_hwm=$(rss_mib "$mx_pid" VmHWM)
held=$(sed -n 's/^holding \([0-9]*\) sessions.*/\1/p' "$work/hold.out")
opened=$(sed -n 's/.*opened in \([0-9.]*\) s.*/\1/p' "$work/hold.out")
idle_delivery=$(deliver)
kill -TERM "$hold_pid"
wait "$hold_pid" || true
stop_mxguard

# 2. Trickling clients and one good one.
start_mxguard
"$work/smtpload" -addr 127.0.0.1:$mx_port -mode trickle -c "$trickle" -sources 254 -interval 1s -duration 10m >"$work/trickle.out" 2>"$work/trickle.err" &
trickle_pid=$!
pids+=($trickle_pid)
wait_for "$work/trickle.out" '^holding'
sleep 3
deliveries=()
for _ in 1 2 3 4 5; do
	deliveries+=("$(deliver)")
	sleep 0.5
done
trickling=$(sed -n 's/^holding \([0-9]*\) sessions.*/\1/p' "$work/trickle.out")
trickle_rss=$(rss_mib "$mx_pid" VmRSS)
kill -TERM "$trickle_pid"
wait "$trickle_pid" || true
stop_mxguard

# 3. Big messages, at a quarter of the size and at full size: if the peak
# RSS does not grow with the size, the content is in the spool, not memory.
# They are DKIM-signed, so that verification (from the spool) is part of it.
big_test() {
	start_mxguard
	"$work/smtpload" -addr 127.0.0.1:$mx_port -n "$big" -c "$big" -size "$1" -dkim >"$work/big.out" 2>&1 &
	local load=$! files max_files=0 kib max_kib=0
	# The spool at its fullest, sampled every 50 ms.
	while kill -0 "$load" 2>/dev/null; do
		files=$(find "$work/spool" -type f | wc -l)
		kib=$(du -sk "$work/spool" | cut -f1)
		((files > max_files)) && max_files=$files
		((kib > max_kib)) && max_kib=$kib
		sleep 0.05
	done
	wait "$load" || true
	big_out=$(head -n 1 "$work/big.out")
	spool_peak="$max_files files, $((max_kib / 1024)) MiB"
	sleep 1
	big_hwm=$(rss_mib "$mx_pid" VmHWM)
	spool_left=$(find "$work/spool" -type f | wc -l)
	stop_mxguard
	spool_after_stop=$(find "$work/spool" -type f | wc -l)
}
big_test $((big_size / 4))
quarter_out=$big_out quarter_hwm=$big_hwm quarter_left=$spool_left quarter_spool=$spool_peak
big_test "$big_size"

warnings=$(grep -c 'level=WARN\|level=ERROR' "$work/mxguard.log" || true)
summary=$("$work/mxguard" verdicts --summary "$work/verdicts.jsonl" | sed -n '/^by action:/,/^$/p; /^by check:/,/^$/p')

printf '\n1. %d sessions idle after EHLO (%d held, opened in %s s):\n' "$idle" "$held" "$opened"
printf '   mxguard RSS %s MiB with them (peak %s MiB), %s MiB before: %.1f KiB per session (target <= 300 MB)\n' \
	"$held_rss" "$held_hwm" "$base" "$(echo "($held_rss - $base) * 1024 / $held" | bc -l)"
printf '   a delivery meanwhile took %.3f s\n' "$idle_delivery"
printf '2. %d sessions trickling a DATA body at one byte a second (%d held); RSS %s MiB\n' "$trickle" "$trickling" "$trickle_rss"
printf '   a well-behaved delivery meanwhile (connect to QUIT), 5 tries: %s s (target < 1 s)\n' \
	"$(printf '%.3f ' "${deliveries[@]}")"
printf '3. %d concurrent DKIM-signed messages of %d bytes: %s\n' "$big" "$big_size" "$big_out"
printf '   peak RSS %s MiB (%s MiB with messages a quarter the size); files left in the spool: %d after the transfers, %d after shutdown (%d after the quarter-size run)\n' \
	"$big_hwm" "$quarter_hwm" "$spool_left" "$spool_after_stop" "$quarter_left"
printf '   the spool at its fullest: %s (%s with the quarter size)\n' "$spool_peak" "$quarter_spool"
printf '   quarter size: %s\n' "$quarter_out"
printf 'warnings logged: %d; load average now %s\n' "$warnings" "$(cut -d' ' -f1-3 /proc/loadavg)"
echo "mxguard verdicts --summary:"
echo "$summary"
