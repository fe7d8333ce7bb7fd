#!/usr/bin/env bash
# Rewrites the facts table of docs/rules.md from the code
# ("mxguard rules facts --markdown"); TestRulesDocListsEveryFact fails
# until this has been run after a fact changes.
set -euo pipefail
cd "$(dirname "$0")/.."
table=$(go run ./cmd/mxguard rules facts --markdown)
awk -v table="$table" '
	/<!-- facts:begin -->/ { print; print table; skip = 1; next }
	/<!-- facts:end -->/ { skip = 0 }
	!skip { print }
' docs/rules.md > docs/rules.md.new
mv docs/rules.md.new docs/rules.md
