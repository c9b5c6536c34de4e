#!/usr/bin/env bash
# fuzz.sh runs every fuzz target of the module (each `func FuzzXxx(f *testing.F)`
# in a package's test files) for FUZZTIME each (default 10s), one target per
# `go test -fuzz` run, since go test fuzzes one target at a time. A new target
# is picked up without changes here. It stops at the first failure, naming the
# target; go test has then written the failing input to the package's
# testdata/fuzz/<target>/, where `go test -run=<target>` replays it (commit it
# with the fix, as a regression test). `make fuzz` calls it; `make test` too.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

FUZZTIME=${FUZZTIME:-10s}

log() { printf 'fuzz.sh: %s\n' "$*"; }

# targets prints "<import path> <target>" for every fuzz target, reading the
# test files go list says the package compiles (build constraints honoured).
targets() {
	go list -f '{{.ImportPath}} {{.Dir}}{{range .TestGoFiles}} {{.}}{{end}}{{range .XTestGoFiles}} {{.}}{{end}}' ./... |
		while read -r pkg dir files; do
			for f in $files; do
				sed -nE 's/^func (Fuzz[A-Za-z0-9_]*)\([A-Za-z_][A-Za-z0-9_]* \*testing\.F\).*/\1/p' "$dir/$f" |
					while read -r name; do printf '%s %s\n' "$pkg" "$name"; done
			done
		done
}

list=$(targets)
if [ -z "$list" ]; then
	log "no fuzz targets found"
	exit 0
fi
log "$(wc -l <<<"$list") targets, $FUZZTIME each"

out=$(mktemp "${TMPDIR:-/tmp}/hypha-fuzz.XXXXXX")
trap 'rm -f "$out"' EXIT

start=$SECONDS
while read -r pkg name; do
	t0=$SECONDS
	if ! go test -run='^$' -fuzz="^${name}\$" -fuzztime="$FUZZTIME" "$pkg" >"$out" 2>&1; then
		corpus="$(go list -f '{{.Dir}}' "$pkg")/testdata/fuzz/$name"
		# On a loaded machine go's fuzzing engine can run out of its own
		# time mid-input and report that input with "context deadline
		# exceeded". Such a report is a failure only if the input fails
		# when replayed; otherwise it is dropped and the target passes.
		if grep -q 'context deadline exceeded' "$out" && go test -count=1 -run="^${name}\$" "$pkg" >/dev/null 2>&1; then
			git ls-files --others --exclude-standard -- "$corpus" | xargs -r rm -f
			log "ok   $pkg $name (the engine's deadline passed mid-input; that input passes when replayed)"
			continue
		fi
		cat "$out"
		log "FAIL: $name in $pkg; the failing input is under $(go list -f '{{.Dir}}' "$pkg")/testdata/fuzz/$name/"
		exit 1
	fi
	execs=$(sed -nE 's/.*execs: ([0-9]+).*/\1/p' "$out" | tail -1)
	log "ok   $pkg $name (${execs:-?} execs, $((SECONDS - t0))s)"
done <<<"$list"
log "all targets passed in $((SECONDS - start))s"
