#!/usr/bin/env bash
# Measures mxguard against the physical limit: the same load is sent
# (a) straight to Postfix's smtp-sink, (b) through mxguard with no DNS checks
# in front of that sink, and (c) through mxguard with the default rules and
# every check on (DNSBL, SPF, DKIM, DMARC, header checks, recipient
# verification against the sink), its DNS answered by "mxguard zone-serve"
# from testdata/zones/bench.zone with a warm cache, in one run on one machine.
# Then (f) straight to a backend that stores what it accepts ("mxguard sink
# --bench", a go-smtp server writing each message to a file) and (g)
# through mxguard as in (c) to it, one message per session, STORE_SESSIONS
# (default 8) at a time, alternating (f) and (g) STORE_PAIRS times (default
# 3). Then, as an admin would deploy it, (d) straight to a real Postfix
# (bench/postfix: a private instance that queues and discards) and (e)
# through mxguard as in (c) to that Postfix. Everything stays on loopback;
# nothing asks the machine's resolver.
#
#   bench/run.sh [MESSAGES] [SESSIONS] [SIZE]
#
# The rate is smtp-source's (MESSAGES over SESSIONS); the latency is
# bench/smtpload's (LAT_MESSAGES over LAT_SESSIONS, and over one session),
# per message from MAIL to the final reply. Environment: MXGUARD (a
# binary to measure instead of one built from the tree), LAT_MESSAGES
# (default 10000), LAT_SESSIONS (default 8), PF_MESSAGES (messages for
# (d) and (e), default 5000), POSTFIX=0 (no (d) and (e)), STORE_SESSIONS,
# STORE_PAIRS (0: no (f) and (g)).
#
# Needs smtp-source and smtp-sink (Debian package postfix) and Go; (d) and
# (e) need root as well.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

messages=${1:-20000}
sessions=${2:-20}
size=${3:-4096}
lat_messages=${LAT_MESSAGES:-10000}
lat_sessions=${LAT_SESSIONS:-8}
pf_messages=${PF_MESSAGES:-5000}
bench_work bench

for tool in smtp-source smtp-sink; do
	command -v "$tool" >/dev/null || { echo "bench: $tool not found (apt-get install postfix)" >&2; exit 1; }
done

build_mxguard
go build -o "$work/smtpload" ./bench/smtpload

sink_port=26001
mxb_port=26002
mxc_port=26003
store_port=26005
mxg_port=26006
# smtp-sink: a backlog of 256; -u nobody because it refuses to run as root.
smtp-sink -u nobody 127.0.0.1:$sink_port 256 &
sink_pid=$!
pids+=($sink_pid)

# The storing backend of paths (f) and (g).
# The store's folder is in memory (tmpfs) where the machine has one: on
# a disk, the page cache's writeback, charged to the writer when it
# falls behind, made the same backend cost 220 to 740 us a message from
# one run to the next, and the ratio measured the disk.
stored=$work/stored
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
	stored=$(mktemp -d /dev/shm/mxguard-stored-XXXXXX)
	cleanup_dirs+=("$stored")
fi
"$tools" sink --bench --dir "$stored" --listen 127.0.0.1:$store_port >/dev/null 2>"$work/sink.log" &
store_pid=$!
pids+=($store_pid)

# The DNS of path (c): testdata/zones/bench.zone on a loopback port of its
# choosing, announced on the first line of its output.
start_zone

mkdir -p "$work/spool-b" "$work/spool-c" "$work/spool-g"
# Path (b): the core proxy, no DNS-using check.
cat >"$work/mxguard-b.yaml" <<YAML
hostname: mx.example.org
listen:
  - address: 127.0.0.1:$mxb_port
backend:
  address: 127.0.0.1:$sink_port
  # Above the number of sessions, so no delivery waits for a new connection.
  max_idle_connections: 64
domains: [example.org]
rules: [$PWD/bench/no-checks.yaml]
authentication_results: false
# Nothing here needs DNS; the loopback zone server keeps it that way.
dns:
  servers: [$dns]
spool:
  dir: $work/spool-b
limits:
  # One load generator on one address: per-client rate limits off.
  rate: {connections_per_minute: 0, messages_per_minute: 0, recipients_per_minute: 0}
log:
  level: warn
YAML
# Path (c): the default rules and every check on.
checks_config 127.0.0.1:$mxc_port 127.0.0.1:$sink_port "$work/spool-c" "$work/verdicts.jsonl" >"$work/mxguard-c.yaml"
# Each instance keeps its state store in a folder of its own: the store
# locks its file, and the default one is the machine's.
# Path (g): as (c), to the storing backend.
checks_config 127.0.0.1:$mxg_port 127.0.0.1:$store_port "$work/spool-g" "$work/verdicts-g.jsonl" >"$work/mxguard-g.yaml"
for p in b c g; do
	mkdir -p "$work/state-$p"
	printf 'state:\n  dir: %s\n' "$work/state-$p" >>"$work/mxguard-$p.yaml"
done
"$work/mxguard" serve --config "$work/mxguard-b.yaml" 2>"$work/mxguard-b.log" &
mxb_pid=$!
pids+=($mxb_pid)
"$work/mxguard" serve --config "$work/mxguard-c.yaml" 2>"$work/mxguard-c.log" &
mxc_pid=$!
pids+=($mxc_pid)
"$work/mxguard" serve --config "$work/mxguard-g.yaml" 2>"$work/mxguard-g.log" &
mxg_pid=$!
pids+=($mxg_pid)

# Paths (d) and (e): a real Postfix as the backend (bench/postfix, a
# private instance that queues what it accepts and discards it), straight
# and through mxguard configured as in (c): what an admin's deployment
# looks like. POSTFIX=0 skips them; so does a machine where Postfix cannot
# be started (it needs root).
pf_addr=
mxe_port=26004
if [ "${POSTFIX:-1}" != 0 ]; then
	go build -o "$work/postfix" ./bench/postfix
	"$work/postfix" >"$work/postfix.out" 2>"$work/postfix.log" &
	pf_pid=$!
	pids+=($pf_pid)
	for _ in $(seq 300); do
		pf_addr=$(sed -n 's/^listening on //p' "$work/postfix.out")
		[ -n "$pf_addr" ] && break
		kill -0 $pf_pid 2>/dev/null || break
		sleep 0.1
	done
	[ -n "$pf_addr" ] || { echo "bench: no Postfix, so no paths (d) and (e):" >&2; cat "$work/postfix.log" >&2; }
fi
ports="$sink_port $mxb_port $mxc_port $store_port $mxg_port"
if [ -n "$pf_addr" ]; then
	mkdir -p "$work/spool-e"
	checks_config 127.0.0.1:$mxe_port "$pf_addr" "$work/spool-e" "$work/verdicts-e.jsonl" >"$work/mxguard-e.yaml"
	mkdir -p "$work/state-e"
	printf 'state:\n  dir: %s\n' "$work/state-e" >>"$work/mxguard-e.yaml"
	"$work/mxguard" serve --config "$work/mxguard-e.yaml" 2>"$work/mxguard-e.log" &
	mxe_pid=$!
	pids+=($mxe_pid)
	ports="$ports $mxe_port"
fi

for port in $ports; do
	for _ in $(seq 100); do
		(exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
		sleep 0.05
	done
done

# run: prints elapsed seconds for the load against PORT (on 127.0.0.1) or ADDR.
# Also writes smtp-source's CPU seconds to $work/source-cpu.
# run PORT|ADDR [MESSAGES]
run() {
	local start end addr=$1
	[[ $addr == *:* ]] || addr=127.0.0.1:$addr
	start=$(date +%s.%N)
	smtp-source -s "${3:-$sessions}" -m "${2:-$messages}" -l "$size" -d \
		-f sender@sender.test -t user@example.org -M client.test "$addr"
	end=$(date +%s.%N)
	# The second line of "times" is the children's user and system time.
	# ("times" runs in this shell, not in a pipeline's, to see them.)
	times >"$work/times"
	awk 'NR == 2 { gsub(/[ms]/, " "); print $1 * 60 + $2 + $3 * 60 + $4 }' "$work/times" >"$work/source-cpu"
	echo "$end - $start" | bc -l
}

# latency PORT|ADDR SESSIONS [MESSAGES [FLAG]]: prints smtpload's key=value
# summary line.
latency() {
	local addr=$1
	[[ $addr == *:* ]] || addr=127.0.0.1:$addr
	"$work/smtpload" -addr "$addr" -n "${3:-$lat_messages}" -c "$2" -size "$size" ${4:-} \
		-from sender@sender.test -to user@example.org -helo client.test 2>>"$work/smtpload.err" | tail -n 1 || true
}
field() { sed -n "s/.*\<$1=\([^ ]*\).*/\1/p" <<<"$2"; }

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# io_calls PID: the read and write system calls the process has made.
io_calls() { awk '/^sysc[rw]:/ { n += $2 } END { print n }' "/proc/$1/io"; }

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
busy=$(cpu_busy)
echo "machine: $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), ${busy}% busy just before, load average $(loadavg)"
((busy <= 10)) || echo "bench: the machine is ${busy}% busy without us: the numbers will be low and noisy" >&2

# Warm up every path once; for (c) this fills the DNS and recipient caches.
for port in $sink_port $mxb_port $mxc_port $store_port $mxg_port; do
	smtp-source -s 2 -m 200 -l "$size" -d -f sender@sender.test -t user@example.org -M client.test 127.0.0.1:$port
done

s0=$(cpu_ticks $sink_pid)
direct=$(run $sink_port)
s1=$(cpu_ticks $sink_pid)
source_cpu=$(cat "$work/source-cpu")
b0=$(cpu_ticks $mxb_pid) bio0=$(io_calls $mxb_pid)
through_b=$(run $mxb_port)
b1=$(cpu_ticks $mxb_pid) bio1=$(io_calls $mxb_pid)
c0=$(cpu_ticks $mxc_pid) cio0=$(io_calls $mxc_pid)
through_c=$(run $mxc_port)
c1=$(cpu_ticks $mxc_pid) cio1=$(io_calls $mxc_pid)

lat_a=$(latency $sink_port "$lat_sessions")
lat_b=$(latency $mxb_port "$lat_sessions")
lat_c=$(latency $mxc_port "$lat_sessions")
# Most mail is DKIM-signed, smtp-source's is not: (c) again, signed.
lat_cs=$(latency $mxc_port "$lat_sessions" "$lat_messages" -dkim)
lat1_a=$(latency $sink_port 1)
lat1_b=$(latency $mxb_port 1)
lat1_c=$(latency $mxc_port 1)

hz=$(getconf CLK_TCK)
rss_b=$(awk '/VmHWM/ {print $2}' "/proc/$mxb_pid/status")
rss_c=$(awk '/VmHWM/ {print $2}' "/proc/$mxc_pid/status")
warn_b=$(grep -c 'level=WARN\|level=ERROR' "$work/mxguard-b.log" || true)
warn_c=$(grep -c 'level=WARN\|level=ERROR' "$work/mxguard-c.log" || true)
total_c=$((200 + messages + 3 * lat_messages))
summary=$("$work/mxguard" verdicts --summary "$work/verdicts.jsonl" | sed -n '/^by action:/,/^$/p; /^by check:/,/^$/p; $p')
failed=0
for l in "$lat_a" "$lat_b" "$lat_c" "$lat_cs" "$lat1_a" "$lat1_b" "$lat1_c"; do
	f=$(field failed "$l")
	failed=$((failed + ${f:-1}))
done
[ -s "$work/smtpload.err" ] && { echo "bench: smtpload reported:" >&2; head -n 20 "$work/smtpload.err" >&2; }
accepted=$(grep -c '"action":"accept"' "$work/verdicts.jsonl" || true)

awk -v m="$messages" -v s="$sessions" -v z="$size" -v a="$direct" -v b="$through_b" -v c="$through_c" \
	-v cpub=$((b1 - b0)) -v cpuc=$((c1 - c0)) -v hz="$hz" -v rssb="$rss_b" -v rssc="$rss_c" \
	-v wb="$warn_b" -v wc="$warn_c" -v lm="$lat_messages" -v ls="$lat_sessions" \
	-v a50="$(field p50_ms "$lat_a")" -v a99="$(field p99_ms "$lat_a")" -v ar="$(field rate "$lat_a")" \
	-v b50="$(field p50_ms "$lat_b")" -v b99="$(field p99_ms "$lat_b")" -v br="$(field rate "$lat_b")" \
	-v c50="$(field p50_ms "$lat_c")" -v c99="$(field p99_ms "$lat_c")" -v cr="$(field rate "$lat_c")" \
	-v s50="$(field p50_ms "$lat_cs")" -v s99="$(field p99_ms "$lat_cs")" -v sr="$(field rate "$lat_cs")" \
	-v a150="$(field p50_ms "$lat1_a")" -v a199="$(field p99_ms "$lat1_a")" \
	-v b150="$(field p50_ms "$lat1_b")" -v b199="$(field p99_ms "$lat1_b")" \
	-v c150="$(field p50_ms "$lat1_c")" -v c199="$(field p99_ms "$lat1_c")" \
	-v acc="$accepted" -v tot="$total_c" -v f="$failed" -v srccpu="$source_cpu" -v sinkcpu=$((s1 - s0)) \
	-v iob=$((bio1 - bio0)) -v ioc=$((cio1 - cio0)) 'BEGIN {
	printf "rate: %d messages of %d bytes over %d parallel sessions (smtp-source -d)\n", m, z, s
	printf "%-40s %9s %11s %9s %14s %10s\n", "path", "seconds", "messages/s", "of (a)", "CPU s/1k msgs", "peak RSS"
	printf "%-40s %9.2f %11.0f %9s %14s %10s\n", "(a) straight to smtp-sink", a, m / a, "100%", "-", "-"
	printf "%-40s %9.2f %11.0f %8.0f%% %14.3f %6.1f MiB\n", "(b) mxguard, no DNS checks", b, m / b, 100 * a / b, cpub / hz / m * 1000, rssb / 1024
	printf "%-40s %9.2f %11.0f %8.0f%% %14.3f %6.1f MiB\n", "(c) mxguard, default rules, all checks", c, m / c, 100 * a / c, cpuc / hz / m * 1000, rssc / 1024
	printf "\nlatency, MAIL to final reply (bench/smtpload, %d messages of %d bytes):\n", lm, z
	printf "%-40s %14s %14s %16s %16s\n", "path", "p50 / p99 ms", "msgs/s", "added p50 / p99", "1 session p50/p99"
	printf "%-40s %6.2f / %5.2f %14.0f %16s %8.2f / %5.2f\n", "(a) straight to smtp-sink, " ls " sessions", a50, a99, ar, "-", a150, a199
	printf "%-40s %6.2f / %5.2f %14.0f %7.2f / %6.2f %8.2f / %5.2f\n", "(b) mxguard, no DNS checks", b50, b99, br, b50 - a50, b99 - a99, b150, b199
	printf "%-40s %6.2f / %5.2f %14.0f %7.2f / %6.2f %8.2f / %5.2f\n", "(c) mxguard, all checks", c50, c99, cr, c50 - a50, c99 - a99, c150, c199
	printf "%-40s %6.2f / %5.2f %14.0f %7.2f / %6.2f %16s\n", "(c) again, DKIM-signed messages", s50, s99, sr, s50 - a50, s99 - a99, "-"
	printf "added latency at 1 session: (b) p50 %.2f ms, p99 %.2f ms; (c) p50 %.2f ms, p99 %.2f ms\n", b150 - a150, b199 - a199, c150 - a150, c199 - a199
	printf "\ntargets: (c)/(a) %.0f%% (target >= 80%%", 100 * a / c
	if (100 * a / c < 80) printf ", missed by %.0f points", 80 - 100 * a / c
	printf "); added p99 of (c) %.2f ms at %d sessions, %.2f ms at 1 (target <= 5 ms", c99 - a99, ls, c199 - a199
	if (c99 - a99 > 5) printf ", missed by %.2f ms at %d sessions", c99 - a99 - 5, ls
	printf ")\n"
	# Where every process shares the same cores, a message through mxguard
	# costs what it costs in (a) plus the CPU of mxguard itself.
	xa = srccpu / m * 1e6; ya = sinkcpu / hz / m * 1e6; zc = cpuc / hz / m * 1e6
	printf "CPU per message: smtp-source %.0f us and smtp-sink %.0f us in (a); mxguard %.0f us in (c)\n", xa, ya, zc
	printf "  with the cores shared and saturated, (c)/(a) can reach about (source+sink)/(source+sink+mxguard) = %.0f%%;\n", 100 * (xa + ya) / (xa + ya + zc)
	printf "  80%% would need mxguard at %.0f us a message or less\n", (xa + ya) / 4
	printf "read and write system calls per message: (b) %.1f, (c) %.1f (client side, backend side, verdict log)\n", iob / m, ioc / m
	printf "warnings logged: (b) %d, (c) %d; smtpload failures: %d; (c) accepted %d of the %d messages sent to it\n", wb, wc, f, acc, tot
}'
# Paths (f) and (g), alternating: the rate through mxguard against the
# rate straight to a backend that stores what it accepts.
store_sessions=${STORE_SESSIONS:-8}
store_pairs=${STORE_PAIRS:-3}
if ((store_pairs > 0)); then
	printf '\nwith a backend that stores each message as a file (mxguard sink --bench), one message per session, %d at a time, %d messages a run:\n' "$store_sessions" "$messages"
	printf '%-6s %12s %12s %9s %22s %20s\n' pair "(f) msg/s" "(g) msg/s" "(g)/(f)" "mxguard CPU/msg (g)" "backend CPU/msg (f)"
	ratios=()
	for i in $(seq "$store_pairs"); do
		# Each run starts with an empty folder, so that neither pays for
		# the files of the runs before it.
		find "$stored" -name '*.eml' -delete
		k0=$(cpu_ticks $store_pid)
		f=$(run $store_port "$messages" "$store_sessions")
		k1=$(cpu_ticks $store_pid)
		find "$stored" -name '*.eml' -delete
		g0=$(cpu_ticks $mxg_pid)
		g=$(run $mxg_port "$messages" "$store_sessions")
		g1=$(cpu_ticks $mxg_pid)
		line=$(awk -v m="$messages" -v f="$f" -v g="$g" -v hz="$(getconf CLK_TCK)" -v cg=$((g1 - g0)) -v ck=$((k1 - k0)) -v i="$i" 'BEGIN {
			printf "%-6d %12.0f %12.0f %9.2f %19.0f us %17.0f us", i, m / f, m / g, f / g, cg / hz / m * 1e6, ck / hz / m * 1e6
		}')
		echo "$line"
		ratios+=("$(awk '{print $4}' <<<"$line")")
	done
	printf '%s\n' "${ratios[@]}" | sort -n | awk '{ r[NR] = $1 } END {
		printf "(g)/(f): median %.2f, range %.2f-%.2f (target >= 0.80)\n", r[int((NR + 1) / 2)], r[1], r[NR] }'
fi

if [ -n "$pf_addr" ]; then
	for a in "$pf_addr" $mxe_port; do
		run "$a" 200 >/dev/null
	done
	e0=$(cpu_ticks $mxe_pid)
	direct_d=$(run "$pf_addr" "$pf_messages")
	through_e=$(run $mxe_port "$pf_messages")
	e1=$(cpu_ticks $mxe_pid)
	lat_d=$(latency "$pf_addr" "$lat_sessions" "$pf_messages")
	lat_e=$(latency $mxe_port "$lat_sessions" "$pf_messages")
	awk -v m="$pf_messages" -v s="$sessions" -v ls="$lat_sessions" -v d="$direct_d" -v e="$through_e" \
		-v cpue=$((e1 - e0)) -v hz="$hz" \
		-v d50="$(field p50_ms "$lat_d")" -v d99="$(field p99_ms "$lat_d")" -v dr="$(field rate "$lat_d")" \
		-v e50="$(field p50_ms "$lat_e")" -v e99="$(field p99_ms "$lat_e")" -v er="$(field rate "$lat_e")" 'BEGIN {
		printf "\nwith a real Postfix as the backend (bench/postfix: smtpd, queue, discard), %d messages over %d sessions:\n", m, s
		printf "%-40s %9s %11s %9s %14s\n", "path", "seconds", "messages/s", "of (d)", "CPU s/1k msgs"
		printf "%-40s %9.2f %11.0f %9s %14s\n", "(d) straight to Postfix", d, m / d, "100%", "-"
		printf "%-40s %9.2f %11.0f %8.0f%% %14.3f\n", "(e) mxguard (as in (c)), then Postfix", e, m / e, 100 * d / e, cpue / hz / m * 1000
		printf "latency at %d sessions, p50 / p99 ms: (d) %.2f / %.2f (%.0f msgs/s); (e) %.2f / %.2f (%.0f msgs/s); added %.2f / %.2f\n", \
			ls, d50, d99, dr, e50, e99, er, e50 - d50, e99 - d99
	}'
fi
echo "load average $(loadavg) after"
echo "mxguard verdicts --summary for (c):"
echo "$summary"
