#!/bin/sh
# Builds a release into dist/ (or --out DIR):
#   bridge_VERSION_OS_ARCH.tar.gz / .zip  (VERSION without its v) for linux, darwin and windows on amd64 and arm64
#   mailbridge_DEBVERSION_ARCH.deb         (dpkg-deb) and mailbridge-DEBVERSION-1.ARCH.rpm (nfpm)
#   checksums.txt                          SHA-256 of each of the above
#   mailbridge.rb, mailbridge.json         a Homebrew formula and a Scoop manifest (not published)
#   container/                             the build context of packaging/container/Containerfile
#
# usage: sh scripts/release.sh [--snapshot] [--out DIR] [--targets "OS/ARCH ..."] [--only "KIND ..."]
#   --snapshot  build an untagged commit, as VERSION+snapshot.DATE.COMMIT (VERSION: the last
#               vX.Y.Z tag, or v0.0.0; "+" so that packages sort it after VERSION); without
#               it, HEAD must carry a vX.Y.Z tag and the work tree must be clean
#   --only      some of: bin archive deb rpm brew scoop container (default: all of them)
#
# The same commit gives the same bytes: binaries are built with -trimpath and no build id,
# stamped with the commit's date rather than the clock (SOURCE_DATE_EPOCH is the commit
# time), and every archive and package has its files in sorted order with that date.
# Needs go, git, tar, gzip, zip, sha256sum and dpkg-deb (Debian's dpkg); the .rpm is built by
# nfpm through the Go module proxy.
set -eu
cd "$(dirname "$0")/.."

snapshot=false out=dist only="bin archive deb rpm brew scoop container"
targets="linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64"
while [ $# -gt 0 ]; do
  case $1 in
  --snapshot) snapshot=true ;;
  --out) out=$2; shift ;;
  --targets) targets=$2; shift ;;
  --only) only=$2; shift ;;
  *) echo "usage: sh scripts/release.sh [--snapshot] [--out DIR] [--targets \"OS/ARCH ...\"] [--only \"KIND ...\"]" >&2; exit 2 ;;
  esac
  shift
done
want() { case " $only " in *" $1 "*) return 0 ;; esac; return 1; }

nfpm_version=v2.45.2
name=mailbridge
homepage=https://github.com/mailbridge/bridge
summary="Lets password-only mail clients use Microsoft 365 and Outlook.com through OAuth"

commit=$(git rev-parse HEAD)
SOURCE_DATE_EPOCH=$(git log -1 --format=%ct HEAD)
export SOURCE_DATE_EPOCH
date=$(TZ=UTC git log -1 --date=format-local:%Y-%m-%dT%H:%M:%SZ --format=%cd HEAD)
tag=$(git describe --tags --exact-match --match 'v[0-9]*' HEAD 2>/dev/null || true)
if $snapshot; then
  base=$(git describe --tags --abbrev=0 --match 'v[0-9]*' HEAD 2>/dev/null || echo v0.0.0)
  version=$base+snapshot.$(TZ=UTC git log -1 --date=format-local:%Y%m%d%H%M%S --format=%cd HEAD).$(git rev-parse --short=12 HEAD)
  git diff --quiet HEAD -- || version=$version.dirty
else
  if [ -z "$tag" ]; then echo "release: HEAD has no vX.Y.Z tag; tag it, or build with --snapshot" >&2; exit 2; fi
  if ! git diff --quiet HEAD --; then echo "release: the work tree has changes; commit them, or build with --snapshot" >&2; exit 2; fi
  version=$tag
fi
# Debian and RPM versions: no leading v, and "~" before a pre-release so that it sorts
# before the release.
pkgversion=$(echo "${version#v}" | sed 's/-/~/')
# Archive names carry the version without its v: bridge_1.2.3_linux_amd64.tar.gz.
fversion=${version#v}
url=${RELEASE_URL:-$homepage/releases/download/$version}

mkdir -p "$out"
out=$(cd "$out" && pwd)
stage=$out/stage
rm -rf "$stage"
mkdir -p "$stage"

# build OS ARCH DIR: the binaries of one target, as every release builds them.
build() {
  ext=
  if [ "$1" = windows ]; then ext=.exe; fi
  env CGO_ENABLED=0 GOOS="$1" GOARCH="$2" GOAMD64=v1 GOARM64=v8.0 GOFLAGS=-mod=readonly \
    go build -trimpath -buildvcs=false \
    -ldflags "-s -w -buildid= -X main.version=$version -X main.commit=$commit -X main.date=$date" \
    -o "$3/bridge$ext" ./cmd/bridge
  if [ "$1" = windows ]; then
    # The launcher of the background server: GUI subsystem, so no console window opens.
    env CGO_ENABLED=0 GOOS="$1" GOARCH="$2" GOAMD64=v1 GOARM64=v8.0 GOFLAGS=-mod=readonly \
      go build -trimpath -buildvcs=false -ldflags "-s -w -buildid= -H=windowsgui" -o "$3/bridgew.exe" ./cmd/bridgew
  fi
}

# stamp DIR: every file's date is the commit's, so archives do not record the build's.
stamp() { find "$1" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +; }

for t in $targets; do
  os=${t%/*} arch=${t#*/}
  build "$os" "$arch" "$stage/bin/${os}_$arch"
  echo "built $t"
done
if [ "$only" = bin ]; then exit 0; fi

# The man page and the completion scripts come from the program itself, built for this
# machine with the same stamp.
host=$stage/bin/$(go env GOOS)_$(go env GOARCH)
if [ ! -d "$host" ]; then host=$stage/host && build "$(go env GOOS)" "$(go env GOARCH)" "$host"; fi
docs=$stage/docs
mkdir -p "$docs/completions"
"$host/bridge" man >"$docs/bridge.1"
"$host/bridge" completion bash >"$docs/completions/bridge.bash"
"$host/bridge" completion zsh >"$docs/completions/_bridge"
"$host/bridge" completion fish >"$docs/completions/bridge.fish"
cp README.md config.example.toml "$docs/"

# archive OS ARCH: bridge_VERSION_OS_ARCH/ with the binaries and the docs.
archive() {
  dir=bridge_${fversion}_$1_$2
  rm -rf "$stage/archive/$dir"
  mkdir -p "$stage/archive/$dir"
  cp -R "$stage/bin/$1_$2/." "$docs/." "$stage/archive/$dir/"
  if [ "$1" = linux ]; then cp packaging/bridge.service "$stage/archive/$dir/"; fi
  chmod -R u=rwX,go=rX "$stage/archive/$dir"
  stamp "$stage/archive/$dir"
  if [ "$1" = windows ]; then
    (cd "$stage/archive" && find "$dir" -type f | LC_ALL=C sort | TZ=UTC zip -X -D -q "$out/$dir.zip" -@)
  else
    (cd "$stage/archive" && tar --sort=name --owner=0 --group=0 --numeric-owner --format=ustar -cf - "$dir" | gzip -n -9 >"$out/$dir.tar.gz")
  fi
}

# pkgroot ARCH: the file tree the .deb installs (the .rpm the same files, zsh's aside).
pkgroot() {
  r=$stage/pkg/$1
  rm -rf "$r"
  install -D -m 755 "$stage/bin/linux_$1/bridge" "$r/usr/bin/bridge"
  install -D -m 644 packaging/bridge.service "$r/usr/lib/systemd/user/bridge.service"
  install -D -m 644 "$docs/bridge.1" "$r/usr/share/man/man1/bridge.1"
  gzip -n -9 "$r/usr/share/man/man1/bridge.1"
  install -D -m 644 "$docs/completions/bridge.bash" "$r/usr/share/bash-completion/completions/bridge"
  install -D -m 644 "$docs/completions/_bridge" "$r/usr/share/zsh/vendor-completions/_bridge"
  install -D -m 644 "$docs/completions/bridge.fish" "$r/usr/share/fish/vendor_completions.d/bridge.fish"
  install -D -m 644 config.example.toml "$r/usr/share/doc/$name/config.example.toml"
  install -D -m 644 README.md "$r/usr/share/doc/$name/README.md"
  find "$r" -type d -exec chmod 755 {} +
}

deb() {
  r=$stage/pkg/$1
  mkdir -p "$r/DEBIAN"
  cat >"$r/DEBIAN/control" <<EOF
Package: $name
Version: $pkgversion
Architecture: $1
Maintainer: bridge developers <$homepage>
Installed-Size: $(du -sk --exclude=DEBIAN "$r" | cut -f1)
Recommends: ca-certificates
Section: mail
Priority: optional
Homepage: $homepage
Description: $summary
 bridge listens on 127.0.0.1 for IMAP, POP3 and SMTP clients that log in with a
 password, and logs in to Microsoft 365 or Outlook.com on their behalf with OAuth 2.0
 (SASL XOAUTH2). Start it at login with: systemctl --user enable --now bridge
EOF
  stamp "$r"
  dpkg-deb --root-owner-group -Zxz --build "$r" "$out/${name}_${pkgversion}_$1.deb" >/dev/null
  rm -rf "$r/DEBIAN"
}

rpm() {
  r=$stage/pkg/$1
  cat >"$stage/nfpm-$1.yaml" <<EOF
name: $name
arch: $1
platform: linux
version: $pkgversion
version_schema: none
release: 1
mtime: $date
maintainer: bridge developers <$homepage>
description: $summary
homepage: $homepage
recommends: [ca-certificates]
rpm:
  # The build machine's name would make the bytes differ between machines.
  buildhost: reproducible
contents:
  - {src: $r/usr/bin/bridge, dst: /usr/bin/bridge, file_info: {mode: 0755}}
  - {src: $r/usr/lib/systemd/user/bridge.service, dst: /usr/lib/systemd/user/bridge.service}
  - {src: $r/usr/share/man/man1/bridge.1.gz, dst: /usr/share/man/man1/bridge.1.gz}
  - {src: $r/usr/share/bash-completion/completions/bridge, dst: /usr/share/bash-completion/completions/bridge}
  - {src: $r/usr/share/zsh/vendor-completions/_bridge, dst: /usr/share/zsh/site-functions/_bridge}
  - {src: $r/usr/share/fish/vendor_completions.d/bridge.fish, dst: /usr/share/fish/vendor_completions.d/bridge.fish}
  - {src: $r/usr/share/doc/$name/config.example.toml, dst: /usr/share/doc/$name/config.example.toml, type: doc}
  - {src: $r/usr/share/doc/$name/README.md, dst: /usr/share/doc/$name/README.md, type: doc}
EOF
  go run "github.com/goreleaser/nfpm/v2/cmd/nfpm@$nfpm_version" package -f "$stage/nfpm-$1.yaml" -p rpm -t "$out/" >/dev/null
}

for t in $targets; do
  os=${t%/*} arch=${t#*/}
  if want archive; then archive "$os" "$arch"; fi
  if [ "$os" = linux ] && { want deb || want rpm; }; then
    pkgroot "$arch"
    if want deb; then deb "$arch"; fi
    if want rpm; then rpm "$arch"; fi
  fi
done

(cd "$out" && ls -1 -- *.tar.gz *.zip *.deb *.rpm 2>/dev/null | LC_ALL=C sort | xargs -r sha256sum >checksums.txt)
hash_of() { awk -v f="$1" '$2 == f { print $1 }' "$out/checksums.txt"; }

# The formula and the manifest name the archives of the targets built here.
if want brew; then
  {
    cat <<EOF
# Homebrew formula for bridge $version, made by scripts/release.sh.
class Mailbridge < Formula
  desc "$summary"
  homepage "$homepage"
  version "$fversion"
EOF
    for os in darwin linux; do
      block=
      for arch in arm64 amd64; do
        f=bridge_${fversion}_${os}_$arch.tar.gz
        [ -n "$(hash_of "$f")" ] || continue
        cpu=intel
        if [ "$arch" = arm64 ]; then cpu=arm; fi
        block="$block    on_$cpu do\n      url \"$url/$f\"\n      sha256 \"$(hash_of "$f")\"\n    end\n"
      done
      [ -n "$block" ] || continue
      if [ "$os" = darwin ]; then printf '  on_macos do\n%b  end\n' "$block"; else printf '  on_linux do\n%b  end\n' "$block"; fi
    done
    cat <<'EOF'

  def install
    bin.install "bridge"
    man1.install "bridge.1"
    bash_completion.install "completions/bridge.bash" => "bridge"
    zsh_completion.install "completions/_bridge"
    fish_completion.install "completions/bridge.fish"
    doc.install "README.md", "config.example.toml"
  end

  # brew services start mailbridge: the server at every login, as the user, so the keyring is
  # at hand.
  service do
    run [opt_bin/"bridge", "serve"]
    keep_alive crashed: true
    log_path var/"log/bridge.log"
    error_log_path var/"log/bridge.log"
  end

  test do
    assert_match "bridge v#{version}", shell_output("#{bin}/bridge version")
  end
end
EOF
  } >"$out/$name.rb"
fi

if want scoop; then
  arch_json=
  for arch in amd64 arm64; do
    f=bridge_${fversion}_windows_$arch.zip
    [ -n "$(hash_of "$f")" ] || continue
    key=64bit
    if [ "$arch" = arm64 ]; then key=arm64; fi
    if [ -n "$arch_json" ]; then arch_json="$arch_json,"; fi
    arch_json="$arch_json
    \"$key\": {
      \"url\": \"$url/$f\",
      \"hash\": \"$(hash_of "$f")\",
      \"extract_dir\": \"bridge_${fversion}_windows_$arch\"
    }"
  done
  if [ -n "$arch_json" ]; then
    cat >"$out/$name.json" <<EOF
{
  "version": "$fversion",
  "description": "$summary",
  "homepage": "$homepage",
  "architecture": {$arch_json
  },
  "bin": "bridge.exe",
  "notes": [
    "Sign in: bridge login EMAIL --client-id ID (see the README).",
    "Start the bridge at every logon, without a console window: bridge service install",
    "Run bridge service install again after an update."
  ]
}
EOF
  fi
fi

# The container's build context: the static Linux binaries, the CA certificates the Go TLS
# stack reads, and the volume's first config.
if want container; then
  c=$out/container
  rm -rf "$c"
  mkdir -p "$c/rootfs/etc/ssl/certs" "$c/tmp" "$c/data"
  chmod 1777 "$c/tmp"
  for t in $targets; do
    case $t in linux/*) mkdir -p "$c/linux_${t#*/}" && cp "$stage/bin/linux_${t#*/}/bridge" "$c/linux_${t#*/}/" ;; esac
  done
  cp /etc/ssl/certs/ca-certificates.crt "$c/rootfs/etc/ssl/certs/"
  cp packaging/container/config.toml "$c/data/config.toml"
  cp packaging/container/Containerfile "$c/"
  stamp "$c"
fi

echo "release $version in $out:"
(cd "$out" && ls -l -- *.tar.gz *.zip *.deb *.rpm *.rb *.json checksums.txt 2>/dev/null | awk '{ print "  " $5 "\t" $9 }')
