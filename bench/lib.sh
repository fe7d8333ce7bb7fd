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
