#!/usr/bin/env bash
# Measures what content scanning costs: path (c) of bench/run.sh (the
# default rules, every check on) against (h) the same with the ClamAV check
# on, to a real clamd (the Debian package's, in a temporary folder) over
# its unix socket, (r) with the rspamd check on instead, to a real rspamd
# (the Debian package's) on loopback HTTP, and (hr) with both. clamd's database is written here, nothing is
# downloaded: a signature of our own, and SIGS random body signatures and
# as many file hashes (default 20000 each), so that its matcher has some
# weight; the real database (several million signatures) costs clamd more
# per byte, and more memory. clamd's CPU time per message is given apart
# from mxguard's.
#
# rspamd runs its normal worker (two processes) with the package's own
# rules (rules/rspamd.lua: its regexp, header, MIME and HTML rules) and
# none of its modules: no DNS lists, no Redis (so no Bayes, no fuzzy
# hashes), its resolver pointed at a loopback port where nothing answers.
# A site's full rspamd does more per message; the figure is what the
# protocol and rspamd's parsing cost, and a floor for the rest. rspamd's
# CPU time (main process and workers) is given apart too.
#
#   bench/content.sh [MESSAGES] [SESSIONS] [SIZE]
#
# Needs smtp-source and smtp-sink (Debian package postfix), clamd (Debian
# package clamav-daemon), rspamd (Debian package rspamd) and Go. Everything stays on loopback; nothing asks
# the machine's resolver.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

messages=${1:-5000}
sessions=${2:-20}
size=${3:-4096}
sigs=${SIGS:-20000}
bench_work content-bench

for tool in smtp-source smtp-sink /usr/sbin/clamd /usr/bin/rspamd; do
	command -v "$tool" >/dev/null || { echo "bench: $tool not found (apt-get install postfix clamav-daemon rspamd)" >&2; exit 1; }
done
build_mxguard

sink_port=26201
smtp-sink -u nobody 127.0.0.1:$sink_port 256 &
pids+=($!)
start_zone

# clamd's database: an .ndb line is Name:TargetType:Offset:HexBody, an
# .hdb line MD5:Size:Name.
mkdir -p "$work/clamd/db" "$work/clamd/tmp"
printf 'Mxguard-Bench-Signature:0:*:%s\n' "$(printf 'MXGUARD-BENCH-MALWARE' | od -An -tx1 | tr -d ' \n')" >"$work/clamd/db/bench.ndb"
od -An -tx1 -N $((sigs * 12)) /dev/urandom | tr -d ' \n' | fold -w 24 |
	awk '{ printf "Bench.Body-%d:0:*:%s\n", NR, $0 }' >>"$work/clamd/db/bench.ndb"
od -An -tx1 -N $((sigs * 16)) /dev/urandom | tr -d ' \n' | fold -w 32 |
	awk '{ printf "%s:%d:Bench.Hash-%d\n", $0, 1000 + NR, NR }' >"$work/clamd/db/bench.hdb"
cat >"$work/clamd/clamd.conf" <<CONF
Foreground yes
DatabaseDirectory $work/clamd/db
TemporaryDirectory $work/clamd/tmp
LocalSocket $work/clamd/clamd.sock
StreamMaxLength 30M
MaxThreads 12
LogFile $work/clamd/clamd.log
CONF
load_start=$(date +%s.%N)
/usr/sbin/clamd --config-file="$work/clamd/clamd.conf" >"$work/clamd/out" 2>&1 &
clamd_pid=$!
pids+=($clamd_pid)
for _ in $(seq 1200); do
	[ -S "$work/clamd/clamd.sock" ] && break
	kill -0 $clamd_pid 2>/dev/null || { echo "bench: clamd exited:" >&2; cat "$work/clamd/out" "$work/clamd/clamd.log" >&2; exit 1; }
	sleep 0.05
done
load_end=$(date +%s.%N)

# rspamd: the normal worker on loopback, the package's rules, no modules.
rspamd_port=26211
rspamd_dns=26212
mkdir -p "$work/rspamd"
printf 'com\nnet\norg\ntest\nexample\n' >"$work/rspamd/tld.dat"
cat >"$work/rspamd/rspamd.conf" <<CONF
options {
  filters = "";
  explicit_modules = [];
  dns { nameserver = ["127.0.0.1:$rspamd_dns"]; timeout = 1s; retransmits = 1; }
  cache_file = "$work/rspamd/symbols.cache";
  dynamic_conf = "$work/rspamd/dynamic.json";
  history_file = "$work/rspamd/history";
  control_socket = "$work/rspamd/rspamd.sock mode=0600";
  tempdir = "$work/rspamd";
  url_tld = "$work/rspamd/tld.dat";
  allow_raw_input = true;
}
logging { type = "file"; filename = "$work/rspamd/rspamd.log"; level = "warning"; }
actions { greylist = 4; add_header = 6; rewrite_subject = 9; reject = 15; }
lua = "/usr/share/rspamd/rules/rspamd.lua";
worker "normal" { bind_socket = "127.0.0.1:$rspamd_port"; count = 2; mime = true; }
CONF
rspamd_args=(-f -c "$work/rspamd/rspamd.conf")
[ "$(id -u)" -ne 0 ] || rspamd_args+=(-i -u root -g root)
/usr/bin/rspamd "${rspamd_args[@]}" >"$work/rspamd/out" 2>&1 &
rspamd_pid=$!
pids+=($rspamd_pid)
for _ in $(seq 1200); do
	(exec 3<>/dev/tcp/127.0.0.1/$rspamd_port && printf 'GET /ping HTTP/1.0\r\n\r\n' >&3 && grep -q pong <&3) 2>/dev/null && break
	kill -0 $rspamd_pid 2>/dev/null || { echo "bench: rspamd exited:" >&2; cat "$work/rspamd/out" "$work/rspamd/rspamd.log" >&2; exit 1; }
	sleep 0.05
done

declare -A port=([c]=26203 [h]=26204 [r]=26205 [hr]=26206) pid=()
paths="c h r hr"
for p in $paths; do
	mkdir -p "$work/spool-$p"
	{
		checks_config 127.0.0.1:${port[$p]} 127.0.0.1:$sink_port "$work/spool-$p" "$work/verdicts-$p.jsonl"
		echo "state:"
		echo "  dir: $work/state-$p"
		case $p in h | hr) printf 'clamav:\n  address: unix:%s\n' "$work/clamd/clamd.sock" ;; esac
		case $p in r | hr) printf 'rspamd:\n  url: http://127.0.0.1:%s\n' $rspamd_port ;; esac
	} >"$work/mxguard-$p.yaml"
	mkdir -p "$work/state-$p"
	"$work/mxguard" serve --config "$work/mxguard-$p.yaml" 2>"$work/mxguard-$p.log" &
	pid[$p]=$!
	pids+=(${pid[$p]})
done
for p in $paths; do
	for _ in $(seq 200); do
		(exec 3<>/dev/tcp/127.0.0.1/${port[$p]}) 2>/dev/null && break
		sleep 0.05
	done
done

source_msgs() { # PORT MESSAGES
	smtp-source -s "$sessions" -m "$2" -l "$size" -d -f sender@sender.test -t user@example.org -M client.test 127.0.0.1:$1
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# rspamd's CPU: its main process and its workers (hs_helper included).
rspamd_ticks() {
	local t=0 p
	for p in $rspamd_pid $(pgrep -P $rspamd_pid); do
		t=$((t + $(ticks "$p")))
	done
	echo $t
}
busy=$(cpu_busy)
echo "machine: $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), ${busy}% busy just before"
echo "clamd: $(grep -o 'Loaded [0-9]* signatures' "$work/clamd/clamd.log" || echo '?'), ready in $(echo "$load_end - $load_start" | bc -l | xargs printf '%.1f')s, RSS $(awk '/VmRSS/ {print $2}' /proc/$clamd_pid/status) kB"
echo "messages: $messages over $sessions sessions, $size bytes each"
# Warm-up: the DNS and recipient caches.
for p in $paths; do
	source_msgs ${port[$p]} 200 >/dev/null 2>&1 || true
done

hz=$(getconf CLK_TCK)
printf "%-40s %8s %12s %16s %16s %16s\n" path seconds messages/s "mxguard CPU us" "clamd CPU us" "rspamd CPU us"
for p in $paths; do
	t0=$(ticks ${pid[$p]})
	k0=$(ticks $clamd_pid)
	r0=$(rspamd_ticks)
	start=$(date +%s.%N)
	source_msgs ${port[$p]} "$messages"
	end=$(date +%s.%N)
	t1=$(ticks ${pid[$p]})
	k1=$(ticks $clamd_pid)
	r1=$(rspamd_ticks)
	secs=$(echo "$end - $start" | bc -l)
	case $p in
	c) name="(c) default rules, all checks" ;;
	h) name="(h) + ClamAV (clamd, unix socket)" ;;
	r) name="(r) + rspamd (HTTP, loopback)" ;;
	hr) name="(hr) + ClamAV and rspamd" ;;
	esac
	awk -v n="$name" -v s="$secs" -v m="$messages" -v t=$((t1 - t0)) -v k=$((k1 - k0)) -v r=$((r1 - r0)) -v hz="$hz" \
		'BEGIN { printf "%-40s %8.2f %12.0f %16.0f %16.0f %16.0f\n", n, s, m / s, 1e6 * t / hz / m, 1e6 * k / hz / m, 1e6 * r / hz / m }'
done
# Every message of (h) must have been scanned, and found clean.
scanned=$(grep -c '"clamav":{"result":"clean"' "$work/verdicts-h.jsonl" || true)
echo "(h) messages scanned clean: $scanned of $((200 + messages)); accepted: $(grep -c '"action":"accept"' "$work/verdicts-h.jsonl" || true)"
# And every message of (r) and (hr) answered by rspamd.
for p in r hr; do
	echo "($p) messages rspamd scanned: $(grep -c '"rspamd":{"result":"scanned"' "$work/verdicts-$p.jsonl" || true) of $((200 + messages)); accepted: $(grep -c '"action":"accept"' "$work/verdicts-$p.jsonl" || true)"
done
for p in h r hr; do
	warn=$(grep -c 'level=WARN\|level=ERROR' "$work/mxguard-$p.log" || true)
	[ "$warn" = 0 ] || { echo "bench: ($p) logged $warn warnings or errors:" >&2; head -n 5 "$work/mxguard-$p.log" >&2; }
done
