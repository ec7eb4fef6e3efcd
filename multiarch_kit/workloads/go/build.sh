#!/bin/sh
# build.sh PACKAGES OUT: compile the first PACKAGES packages gofmt depends on (dependencies first), all of
# them from source (-a); when that is every one, link gofmt into OUT. GOARCH/GOARM choose the target.
set -eu
packages=$1 out=$2
export CGO_ENABLED=0
mkdir -p "$out"
go list -deps cmd/gofmt > /tmp/packages
if [ "$packages" -ge "$(wc -l < /tmp/packages)" ]; then
  go build -a -o "$out/gofmt" cmd/gofmt
else
  go build -a $(head -n "$packages" /tmp/packages)
fi
echo "compiled $(head -n "$packages" /tmp/packages | wc -l) packages for $(go env GOARCH) on $(uname -m)"
