#!/bin/sh
# build.sh CC FILES OUT: compile the first FILES of Brotli's library sources with CC -O2, one after another;
# when that is all of them, link the brotli tool into OUT.
set -eu
cc=$1 files=$2 out=$3
cd /src/c
mkdir -p /obj "$out"
ls common/*.c dec/*.c enc/*.c | sort > /tmp/sources
head -n "$files" /tmp/sources | while read -r source; do
  "$cc" -O2 -Iinclude -c "$source" -o "/obj/$(echo "$source" | tr / _).o"
done
if [ "$files" -ge "$(wc -l < /tmp/sources)" ]; then
  "$cc" -O2 -Iinclude tools/brotli.c /obj/*.o -lm -o "$out/brotli"
fi
echo "compiled $(ls /obj | wc -l) files with $cc on $(uname -m)"
