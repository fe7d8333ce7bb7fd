# Shared by the bench scripts; sourced, not run.

# bench_work NAME: makes $work, a temporary folder for the run, and $pids,
# the processes to kill when the script exits, and arranges both: the
# folder is removed unless KEEP is set.
bench_work() {
	work=$(mktemp -d "/tmp/mxguard-$1-XXXXXX")
	chmod 755 "$work"
	pids=()
	cleanup_dirs=()
	trap bench_cleanup EXIT
}

bench_cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [ -n "${KEEP:-}" ]; then echo "bench: kept $work" >&2; else rm -rf "$work" "${cleanup_dirs[@]}"; fi
}

# build_mxguard: puts the mxguard to measure at $work/mxguard: the one
# MXGUARD names (a binary built from another commit, to compare two in
# one sitting), else one built from this tree. $tools is the mxguard the
# harness's own helpers (the storing backend) run: always this tree's.
build_mxguard() {
	go build -o "$work/mxguard-tree" ./cmd/mxguard
	tools=$work/mxguard-tree
	if [ -n "${MXGUARD:-}" ]; then
		cp "$MXGUARD" "$work/mxguard"
	else
		cp "$tools" "$work/mxguard"
	fi
}

# raise_fd_limit SESSIONS [SPARE]: raises the shell's descriptor limit
# (each side of a session holds one) and exits when it stays below
# SESSIONS + SPARE (default 1000).
raise_fd_limit() {
	ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
	if [ "$(ulimit -n)" -lt $(($1 + ${2:-1000})) ]; then
		echo "bench: ulimit -n is $(ulimit -n), too low for $1 sessions" >&2
		exit 1
	fi
}

# start_zone: serves testdata/zones/bench.zone with "mxguard zone-serve" on a
# loopback port of its choosing and sets $dns to the address it announces
# on the first line of its output. Needs $work and the pids array.
start_zone() {
	"$work/mxguard" zone-serve testdata/zones/bench.zone >"$work/zone.out" 2>"$work/zone.log" &
	pids+=($!)
	dns=
	for _ in $(seq 100); do
		dns=$(sed -n 's/^listening on //p' "$work/zone.out" 2>/dev/null || true)
		[ -n "$dns" ] && return 0
		sleep 0.05
	done
	echo "bench: mxguard zone-serve did not start:" >&2
	cat "$work/zone.log" >&2
	exit 1
}

# cpu_busy: the share of the machine's CPU time (percent) that was busy over
# the next second. The load average trails by minutes (a run just before
# this one still shows), so this is what says whether others are at work.
cpu_busy() {
	local a b
	a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $5 + $6 }' /proc/stat)
	sleep 1
	b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $5 + $6 }' /proc/stat)
	awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " "); busy = y[1] - x[1]; idle = y[2] - x[2]; printf "%.0f\n", 100 * busy / (busy + idle + 1e-9) }'
}

# checks_config LISTEN BACKEND SPOOL VERDICTS [LIMITS]: prints the config of
# path (c), the default rules (no rules key) and every check on, its DNS
# from $dns and rate limits off, since the load comes from one address.
# LIMITS are more lines for the limits section, indented by two spaces.
checks_config() {
	cat <<YAML
hostname: mx.example.org
listen:
  - address: $1
backend:
  address: $2
  # Above the number of sessions, so no delivery waits for a new connection.
  max_idle_connections: 64
domains: [example.org]
authentication_results: true
dns:
  servers: [$dns]
dnsbl:
  - zone: bl.bench.test
    weight: 10
recipients:
  verify: backend
headers:
  protected_domains: [bank.test]
verdict_log: $4
spool:
  dir: $3
limits:
  rate: {connections_per_minute: 0, messages_per_minute: 0, recipients_per_minute: 0}
${5:-}
log:
  level: warn
YAML
}
