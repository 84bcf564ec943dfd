#!/bin/sh
# The project's test command (README "Testing"): formatting, vet, the whole
# suite under the race detector, the keyring tests against a real Secret
# Service, and short runs of every fuzz target and benchmark.
set -eu
cd "$(dirname "$0")/.."

echo "== gofmt"
bad=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$bad" ]; then echo "not gofmt'ed: $bad"; exit 1; fi

echo "== go vet"
go vet ./...

echo "== go test -race"
go test -race -count=1 ./...

echo "== keyring tests against a real Secret Service"
if command -v gnome-keyring-daemon >/dev/null && command -v dbus-run-session >/dev/null; then
  XDG_DATA_HOME="$(mktemp -d)" KEYRING_PW=ci-pass \
    dbus-run-session -- sh scripts/with-keyring.sh go test -count=1 -tags keyring_integration -run Keyring ./tokens/
else
  echo "SKIPPED: gnome-keyring-daemon or dbus-run-session is not installed (.ci/run installs them)"
fi

echo "== fuzz targets, briefly"
sh scripts/fuzz.sh 5s

echo "== benchmarks, short"
go test -run '^$' -bench . -benchtime 3x -benchmem ./... >/dev/null
echo "benchmarks ran"
