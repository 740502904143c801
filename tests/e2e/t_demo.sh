#!/bin/bash
# scripts/demo.sh end to end: it records examples/leaky_server, and the
# diff between the first and the last snapshot names the leaking function,
# session_cache_insert, before any other function of the program; the
# report names it too; the flame graph is an SVG and the pprof file gzip.
. "$TOP/tests/e2e/t_real_lib.bash"
[ -x "$BUILD/examples/leaky_server" ] || fail "$BUILD/examples/leaky_server is not built (make BUILD=... e2e builds it)"
DEMO_OUT="$WORK/demo" bash "$TOP/scripts/demo.sh" "$BUILD" >"$WORK/demo.log" 2>&1
rc=$?
cat "$WORK/demo.log"
[ $rc -eq 0 ] || fail "scripts/demo.sh exited $rc"

# the sections of the demo's output, by their "== ..." headings
section() { awk -v h="$1" '/^== / { on = index($0, h) > 0; next } on' "$WORK/demo.log"; }
# the functions of leaky_server that allocate (directly or through a helper)
fns='session_cache_insert|header_map_put|xstrndup|read_request|parse_request|build_response|sb_append|route_cache_lookup|client_main|handle_request'
first=$(section "heaptrace diff" | grep -oE "\\b($fns)\\b" | head -n1)
[ -n "$first" ] || fail "the diff output names no function of leaky_server"
[ "$first" = session_cache_insert ] || fail "the diff names $first first, not the leak session_cache_insert"
section "heaptrace report" | grep -q session_cache_insert || fail "the report does not name session_cache_insert"
# the leak grew between the snapshots: 4 of 5 requests add a session, so
# the diff must show thousands of objects or a positive byte count on that line
section "heaptrace diff" | grep -m1 session_cache_insert | grep -qE '[+]?[0-9]' ||
    fail "the diff line of session_cache_insert carries no number"
svg="$WORK/demo/leaky_server.svg"
[ -s "$svg" ] && grep -q '<svg' "$svg" || fail "no SVG flame graph at $svg"
grep -q session_cache_insert "$svg" || fail "the flame graph does not show session_cache_insert"
gzip -t "$WORK/demo/leaky_server.pb.gz" 2>/dev/null || fail "no gzipped pprof file"
echo ok
