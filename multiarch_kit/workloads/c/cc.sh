#!/bin/sh
# cc.sh [packages]: the cross gcc for TARGETARCH/TARGETVARIANT, or the two Debian packages that provide it.
# The same names as the kit's architecture table (multiarch_kit/platforms.py): a test builds every platform
# and reads the result's ELF header, so a wrong line here fails it.
case "$TARGETARCH$TARGETVARIANT" in
  amd64)  gnu=x86_64-linux-gnu       deb=amd64 ;;
  arm64)  gnu=aarch64-linux-gnu      deb=arm64 ;;
  armv7)  gnu=arm-linux-gnueabihf    deb=armhf ;;
  armv6)  gnu=arm-linux-gnueabi      deb=armel ;;
  *) echo "no cross compiler known for $TARGETARCH$TARGETVARIANT" >&2; exit 1 ;;
esac
if [ "${1:-}" = packages ]; then echo "gcc-$(echo "$gnu" | tr _ -) libc6-dev-$deb-cross"; else echo "$gnu-gcc"; fi
