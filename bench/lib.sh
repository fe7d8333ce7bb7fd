# Shared by bench/run.sh and bench/many.sh; sourced, not run.

# start_zone: serves bench/bench.zone with "mxguard zone-serve" on a
# loopback port of its choosing and sets $dns to the address it announces
# on the first line of its output. Needs $work and the pids array.
start_zone() {
	"$work/mxguard" zone-serve bench/bench.zone >"$work/zone.out" 2>"$work/zone.log" &
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
