#!/bin/sh
# Runs every fuzz target of the module for the given time (or count, e.g.
# 20000x) each (default 10s):
#   sh scripts/fuzz.sh 10m
set -eu
cd "$(dirname "$0")/.."
t=${1:-10s}
for pkg in $(go list ./...); do
  for f in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    echo "fuzz $pkg $f ($t)"
    go test -run '^$' -fuzz "^$f\$" -fuzztime "$t" "$pkg"
  done
done
