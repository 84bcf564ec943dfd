#!/bin/sh
# CI's check of the release, as a user meets it: a snapshot build of the linux/amd64 .deb
# (the whole matrix is `sh scripts/release.sh`), installed with dpkg -i, then `bridge version`,
# the user unit under systemd-analyze, the man page under man, and bash completion; the
# package is removed at the end. Then, where podman runs, the container image: built,
# `bridge version` in it, and `bridge demo` in it reached from the host.
# Needs root and dpkg (.ci/run installs the rest).
set -eu
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ] || ! command -v dpkg-deb >/dev/null; then
  echo "SKIPPED: the release check installs a .deb: it needs root and dpkg"
  exit 0
fi
start=$(date +%s)
out=$(mktemp -d)
img=localhost/mailbridge-check
cleanup() {
  dpkg -r mailbridge >/dev/null 2>&1 || true
  if command -v podman >/dev/null; then
    podman rm -f bridge-check >/dev/null 2>&1 || true
    podman rmi -f "$img" >/dev/null 2>&1 || true
    podman volume rm -f bridge-check-data >/dev/null 2>&1 || true
  fi
  rm -rf "$out"
}
trap cleanup EXIT
fail() { echo "release check: $*" >&2; exit 1; }

sh scripts/release.sh --snapshot --out "$out" --targets linux/amd64 --only "deb container"
deb=$(ls "$out"/mailbridge_*_amd64.deb)
dpkg -i "$deb" >/dev/null
echo "installed $(basename "$deb") ($(wc -c <"$deb") bytes)"

# /usr/bin/bridge by its path: root's PATH finds iproute2's /usr/sbin/bridge first.
v=$(/usr/bin/bridge version)
echo "$v" | sed 's/^/  /'
commit=$(git rev-parse HEAD)
case $v in "bridge v"*+snapshot.*"commit $commit"*"date   20"*) ;; *) fail "bridge version does not show the stamped version, commit $commit and date" ;; esac

unit=/usr/lib/systemd/user/bridge.service
if command -v systemd-analyze >/dev/null; then
  rt=$(mktemp -d)
  chmod 700 "$rt"
  if ! msg=$(XDG_RUNTIME_DIR=$rt systemd-analyze --user verify "$unit" 2>&1) || [ -n "$msg" ]; then
    rm -rf "$rt"
    fail "systemd-analyze --user verify $unit: $msg"
  fi
  rm -rf "$rt"
  echo "systemd-analyze --user verify $unit: ok"
else
  echo "SKIPPED: systemd-analyze is not installed; $unit was not verified"
fi

page=/usr/share/man/man1/bridge.1.gz
if ! err=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >"$out/man.txt") || [ -n "$err" ]; then
  fail "man -l $page: $err"
fi
tr -s ' ' <"$out/man.txt" | grep -q "bridge - let password-only mail clients" || fail "man -l $page: no NAME line"
grep -q "completion bash|zsh|fish" "$out/man.txt" || fail "man -l $page: no completion command"
echo "man -l $page: ok ($(wc -l <"$out/man.txt") lines)"

# bridge lo<TAB>, and an address, as a user's bash does it (a user's PATH, where bridge is ours).
printf '[[account]]\nemail = "me@example.com"\nclient_id = "x"\n' >"$out/config.toml"
complete_words() {
  PATH=/usr/local/bin:/usr/bin:/bin bash --norc --noprofile -c \
    'source /usr/share/bash-completion/completions/bridge; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _bridge; printf "%s\n" "${COMPREPLY[*]}"' bash "$@"
}
got=$(complete_words bridge lo)
[ "$got" = "login logout" ] || fail "bridge lo<TAB>: \"$got\", want \"login logout\""
got=$(complete_words bridge --config "$out/config.toml" doctor m)
[ "$got" = "me@example.com" ] || fail "bridge doctor m<TAB>: \"$got\", want the account's address"
echo "bash completion: bridge lo<TAB> -> login logout; bridge doctor m<TAB> -> me@example.com"

dpkg -r mailbridge >/dev/null
[ ! -e /usr/bin/bridge ] || fail "dpkg -r left /usr/bin/bridge"
echo "removed mailbridge; the .deb check took $(($(date +%s) - start)) s"

if ! command -v podman >/dev/null; then
  echo "SKIPPED: podman is not installed; the container image was not built"
  exit 0
fi
start=$(date +%s)
podman build -q --layers=false -t "$img" "$out/container" >/dev/null
# This machine's sandbox lacks CAP_SYS_RESOURCE and mixes cgroup v1 and v2, which crun refuses:
# there the container runs under runc, with limits no higher than the current ones.
run="podman run"
if ! podman run --rm "$img" version >/dev/null 2>&1; then
  run="podman run --runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024"
  echo "podman run failed with its defaults here; using: $run"
fi
$run --rm "$img" version | grep -q "^commit $commit" || fail "bridge version in the image"
$run -d --name bridge-check --network host -v bridge-check-data:/data "$img" demo --imap 127.0.0.1:0 --smtp 127.0.0.1:0 --pop3 127.0.0.1:0 >/dev/null
list=
for _ in $(seq 50); do
  list=$(podman logs bridge-check 2>/dev/null | sed -n '/^List the inbox:/{n;p;}')
  [ -n "$list" ] && break
  sleep 0.2
done
[ -n "$list" ] || fail "bridge demo in the container printed no commands: $(podman logs bridge-check 2>&1)"
command -v curl >/dev/null || fail "curl is not installed (.ci/run installs it)"
got=$(sh -c "$list")
echo "$got" | grep -q "Welcome to the bridge demo" || fail "the host's curl through the container's demo: $got"
# The volume's config from the image: the file store, owned by the image's user.
$run --rm -v bridge-check-data:/data "$img" check-config >/dev/null || fail "check-config on the volume's config"
echo "container: built, bridge version, bridge demo reached from the host at $(echo "$list" | grep -o 'imap://[^/]*'), check-config on /data: ok ($(($(date +%s) - start)) s)"
