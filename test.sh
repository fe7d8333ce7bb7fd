#!/usr/bin/env bash
# Runs mxguard's tests on a Debian machine: installs the real peers the
# tests talk to (when missing), stops the daemons their packages start,
# then runs go vet, staticcheck and every test, and prints the coverage of
# the end-to-end tests. This is the README's test command, and CI's.
set -euo pipefail
cd "$(dirname "$0")"

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

# Each entry: a check that succeeds when the peer is there, and the Debian
# packages that provide it.
need=()
want() { # want CHECK PACKAGE...
	local check=$1
	shift
	bash -c "$check" >/dev/null 2>&1 || need+=("$@")
}
# swaks and Postfix (smtp-sink, smtp-source, a real Postfix for the
# XCLIENT and relay tests) are the SMTP peers of the end-to-end tests;
# gcc is what -race needs.
want 'command -v swaks' swaks
want 'command -v smtp-sink' postfix
want 'command -v gcc' gcc libc6-dev
# python3-authres, a real RFC 8601 parser, reads the
# Authentication-Results header that mxguard writes.
want "/usr/bin/python3 -c 'import authres'" python3-authres
# gnutls-cli checks that TLS sessions end with close_notify.
want 'command -v gnutls-cli' gnutls-bin
# dkimpy and Mail::DKIM, the reference DKIM verifiers that
# checks/dkim's TestReferenceVerifiers compares every verdict with.
want "/usr/bin/python3 -c 'import dkim, nacl'" python3-dkim python3-nacl
want "perl -MMail::DKIM::Verifier -e1" libmail-dkim-perl
# redis-server and HAProxy: a fleet of mxguard instances shares its state
# through Redis behind a balancer that speaks the PROXY protocol.
want 'test -x /usr/bin/redis-server' redis-server
want 'test -x /usr/sbin/haproxy' haproxy
# clamd: the ClamAV check's tests run a real clamd on a signature database
# they write themselves (internal/testclamd); freshclam, which would
# download one, never runs. The clamav package brings sigtool, to read or
# extend that database (docs/testing.md).
want 'test -x /usr/sbin/clamd && command -v sigtool' clamav-daemon clamav
# rspamd: the rspamd check's tests run a real rspamd with a configuration
# of their own (internal/testrspamd): its normal worker on loopback, no
# Redis, no module that would use the network, test symbols in lua.
want 'test -x /usr/bin/rspamd' rspamd
# chromium: the console's tests drive a real headless Chromium
# (internal/testbrowser), on loopback only.
want 'test -x /usr/bin/chromium' chromium
if [ ${#need[@]} -gt 0 ]; then
	$sudo apt-get update
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}"
fi
# The tests start their own Postfix instances, in temporary folders; the
# one the package starts must not run.
$sudo postfix stop >/dev/null 2>&1 || true
# So do the tests' Redis and HAProxy: stop the system ones the packages
# start (with or without systemd).
for daemon in redis-server haproxy; do
	$sudo service "$daemon" stop >/dev/null 2>&1 || true
	$sudo pkill -x "$daemon" >/dev/null 2>&1 || true
done
# So do the tests' clamd; the package's freshclam would try to download
# signatures: stop both, and keep them from starting at boot.
for service in clamav-daemon clamav-freshclam; do
	$sudo service "$service" stop >/dev/null 2>&1 || true
	$sudo update-rc.d "$service" disable >/dev/null 2>&1 || true
	$sudo systemctl disable --now "$service" >/dev/null 2>&1 || true
done
# So do the tests' rspamd: the package's own (its workers on ports
# 11332-11334) must not run.
$sudo service rspamd stop >/dev/null 2>&1 || true
$sudo update-rc.d rspamd disable >/dev/null 2>&1 || true
$sudo systemctl disable --now rspamd >/dev/null 2>&1 || true
for daemon in clamd freshclam; do
	$sudo pkill -x "$daemon" >/dev/null 2>&1 || true
done

go version

# Static analysis, at a pinned version so that every machine reports the
# same findings; any finding fails the run. Installed beside the tree, in
# .tools/ (ignored by git and by ./...), once per version.
staticcheck_version=v0.8.2
staticcheck=.tools/staticcheck-$staticcheck_version/staticcheck
if [ ! -x "$staticcheck" ]; then
	GOBIN="$PWD/$(dirname "$staticcheck")" go install "honnef.co/go/tools/cmd/staticcheck@$staticcheck_version"
fi
go vet ./...
"$staticcheck" ./...

# The end-to-end tests in cmd/mxguard run a binary built with -cover; every
# mxguard process they start writes its counters here.
cover=$(mktemp -d)
trap 'rm -rf "$cover"' EXIT
MXGUARD_COVERAGE=$cover go test -race -shuffle=on ./...

echo "Coverage of the mxguard binary by the end-to-end tests (docs/testing.md):"
go tool covdata percent -i="$cover"
go tool covdata textfmt -i="$cover" -o="$cover/profile.txt"
go tool cover -func="$cover/profile.txt" | tail -n 1
