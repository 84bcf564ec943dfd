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

echo "== idle stacks, without the race detector (the suite above checks them with it)"
go test -count=1 -run '^TestLoadIdleStacks$' ./cmd/bridge-load/

echo "== keyring tests against a real Secret Service"
if command -v gnome-keyring-daemon >/dev/null && command -v dbus-run-session >/dev/null; then
  XDG_DATA_HOME="$(mktemp -d)" KEYRING_PW=ci-pass \
    dbus-run-session -- sh scripts/with-keyring.sh go test -count=1 -tags keyring_integration -run Keyring ./tokens/
else
  echo "SKIPPED: gnome-keyring-daemon or dbus-run-session is not installed (.ci/run installs them)"
fi

echo "== cross builds"
# Every release target builds without cgo; on macOS that build has no tray
# icon (systray needs cgo there) and says so when `bridge tray` runs.
for target in linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64; do
  CGO_ENABLED=0 GOOS="${target%/*}" GOARCH="${target#*/}" go build -o /dev/null ./cmd/bridge
  echo "$target ok"
done
GOOS=windows go vet ./cmd/bridge/... ./bridge/control/
GOOS=darwin CGO_ENABLED=0 go vet ./cmd/bridge/... ./bridge/control/
# The server must never link the tray's GUI library.
if go list -deps ./bridge/... | grep -q systray; then echo "bridge/... links systray"; exit 1; fi

echo "== release: a snapshot .deb installed and checked, and the container image"
sh scripts/release-check.sh

echo "== fuzz targets, briefly"
# A count, not a duration: a duration races the fuzz coordinator's own deadline
# in Go 1.26 and can fail with "context deadline exceeded" on a busy machine.
sh scripts/fuzz.sh 20000x

echo "== benchmarks, short"
go test -run '^$' -bench . -benchtime 3x -benchmem ./... >/dev/null
echo "benchmarks ran"
