#!/bin/bash
# The symbol cache (analyzer/symcache.h): a second analysis answers from
# it with the same output; it is keyed to the file the DWARF came from, so
# a rebuilt or touched binary is read afresh; a damaged cache file is
# ignored; HEAPTRACE_CACHE_DIR=off writes nothing.
. "$TOP/tests/e2e/lib.sh"
cp "$BUILD/examples/leaky" ./leaky
"$HT" record --all --quiet -o t.htr ./leaky >/dev/null || fail "record failed"
export HEAPTRACE_CACHE_DIR="$WORK/cache"
"$HT" leaks t.htr >cold.txt || fail "leaks failed"
grep -q load_config cold.txt || fail "no load_config in: $(head -20 cold.txt)"
bid=$(readelf -n leaky | awk '/Build ID/{print $3}')
[ -n "$bid" ] || skip "the example has no build-id"
[ -s "cache/$bid.sym" ] || fail "no cache file for the example: $(ls cache)"
"$HT" leaks t.htr >warm.txt || fail "leaks failed (warm)"
cmp -s cold.txt warm.txt || fail "the cached answers differ: $(diff cold.txt warm.txt | head)"
# The cache is used: a function renamed in it (same length) shows up...
python3 - "cache/$bid.sym" <<'PY' || fail "could not edit the cache"
import sys
p = sys.argv[1]
b = open(p, "rb").read()
assert b"load_config" in b
open(p, "wb").write(b.replace(b"load_config", b"XXXX_config"))
PY
"$HT" leaks t.htr >edited.txt || fail "leaks failed (edited cache)"
grep -q XXXX_config edited.txt || fail "the cache was not used"
# ... until the binary's file changes: then the DWARF is read again.
touch -d '2001-01-01' leaky
"$HT" leaks t.htr >touched.txt || fail "leaks failed (touched)"
cmp -s cold.txt touched.txt || fail "a stale cache was used: $(diff cold.txt touched.txt | head)"
# Garbage in the cache file: ignored, and the answers stay right.
head -c 300 /dev/urandom >"cache/$bid.sym"
"$HT" leaks t.htr >garbage.txt 2>err.txt || fail "leaks failed (damaged cache): $(cat err.txt)"
cmp -s cold.txt garbage.txt || fail "a damaged cache changed the answers"
# Off: nothing written.
HEAPTRACE_CACHE_DIR=off "$HT" leaks t.htr >off.txt || fail "leaks failed (cache off)"
cmp -s cold.txt off.txt || fail "answers differ with the cache off"
rm -rf cache
HEAPTRACE_CACHE_DIR=off "$HT" leaks t.htr >/dev/null
[ ! -e cache ] || fail "HEAPTRACE_CACHE_DIR=off wrote a cache"
echo ok
