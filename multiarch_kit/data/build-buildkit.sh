#!/bin/sh
# Builds BuildKit's buildkitd and buildctl from Debian's docker.io source package, inside the Debian root that
# multiarch-kit's lab/buildkit.py has mmdebstrap make (its customize hook runs this script there, as root).
# Usage: build-buildkit.sh OUT ARCH...   (one OUT/ARCH/ folder with both binaries per Go architecture)
#
# Debian ships no buildkitd package, but docker.io's source carries BuildKit as its "orig-buildkit" component,
# and the root already holds docker.io's Build-Depends (apt-get build-dep). Debian builds Go in GOPATH mode from
# its golang-*-dev packages, so this does too: no module is downloaded.
set -eu
out=$1; shift
mkdir -p /src "$out" && cd /src

# A mirror may lack the .dsc file (apt-get source then fails, though the tarballs are there): fetch the tarballs
# the Sources index lists, each checked against its SHA256 there.
apt-get source --print-uris --only-source docker.io |
  sed -n "s/^'\([^']*\)' \([^ ]*\.tar\.[a-z]*\) [0-9]* \([A-Za-z0-9]*:[0-9a-f]*\)$/\1 \2 \3/p" |
  while read -r uri name hash; do
    echo "mk: fetching $name"
    /usr/lib/apt/apt-helper download-file "$uri" "$name" "$hash" >/dev/null
  done

# Lay the components out as Debian's dpkg-source does (engine/, cli/, buildkit/), then apply Debian's patches:
# some of BuildKit's (a removed dependency, security fixes) touch the engine too.
mkdir -p tree && cd tree
tar xf ../*.orig.tar.* --strip-components=2        # ./moby-moby-<commit>/engine/...
for component in ../*.orig-*.tar.*; do tar xf "$component"; done
tar xf ../*.debian.tar.*
grep -v '^#' debian/patches/series | grep . | while read -r patch; do
  patch -p1 -s -f --no-backup-if-mismatch < "debian/patches/$patch" >/dev/null
done
echo "mk: applied $(grep -v '^#' debian/patches/series | grep -c .) Debian patches to $(head -1 debian/changelog | cut -d' ' -f1-2)"

# GOPATH as debian/rules makes it: BuildKit imports the engine's and the CLI's packages by their import paths.
gopath=/build/src/github.com
mkdir -p $gopath/moby $gopath/docker
cp -a buildkit $gopath/moby/buildkit
cp -a engine $gopath/docker/docker
cp -a cli $gopath/docker/cli
version=$(sed -n 's/^[[:space:]]*github.com\/moby\/buildkit \(v[^ ]*\).*/\1/p' engine/vendor.mod | head -1)
echo "mk: BuildKit $version, as the engine of this docker.io vendors it"

cd $gopath/moby/buildkit
# No cgo: static binaries, for any Linux of the architecture, built for every one on this machine.
export GO111MODULE=off GOPATH=/build:/usr/share/gocode CGO_ENABLED=0 GOCACHE=/build/cache HOME=/build
for arch in "$@"; do
  start=$(date +%s)
  mkdir -p "$out/$arch"
  GOARCH=$arch go build -trimpath -o "$out/$arch/" \
    -ldflags "-s -w -X github.com/moby/buildkit/version.Version=$version -X github.com/moby/buildkit/version.Package=debian/docker.io" \
    ./cmd/buildkitd ./cmd/buildctl
  echo "mk: built buildkitd and buildctl for $arch in $(( $(date +%s) - start )) s"
done
