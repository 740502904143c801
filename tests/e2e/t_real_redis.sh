#!/bin/bash
# redis-server under `heaptrace record` (default sampling, a snapshot every
# 2 s), driven by redis-benchmark on loopback for a few seconds, then shut
# down cleanly (shutdown nosave): the same exit status and benchmark tests
# as natively; the trace analyzes and names redis's allocator, zmalloc*.
. "$TOP/tests/e2e/t_real_lib.bash"
need redis-server
need redis-benchmark
need redis-cli
RS=$(real_exe redis-server)

free_port() {
    local p
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 30000))
        redis-cli -h 127.0.0.1 -p "$p" ping >/dev/null 2>&1 || { echo "$p"; return 0; }
    done
    return 1
}
# serve MODE: start redis-server (recorded when MODE is traced), run the
# benchmark, shut it down; MODE.{out,rc} = the benchmark's tests, the
# server's exit status
serve() {
    local mode=$1 port pid pre=() up=0
    port=$(free_port) || fail "no free loopback port"
    [ "$mode" = traced ] && pre=("$HT" record -o "$WORK/t.htr" --snapshot-interval 2)
    mkdir -p "$WORK/$mode"
    "${pre[@]}" "$RS" --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
        --dir "$WORK/$mode" >"$WORK/$mode.server.log" 2>&1 &
    pid=$!
    for _ in $(seq 200); do
        redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG && { up=1; break; }
        sleep 0.05
    done
    [ $up = 1 ] || { kill "$pid"; wait "$pid"; tail -n 5 "$WORK/$mode.server.log"; fail "redis-server ($mode) did not answer"; }
    timeout 60 redis-benchmark -h 127.0.0.1 -p "$port" -q -n 50000 -c 10 -r 100000 -d 200 \
        -t set,get,lpush,lpop,hset >"$WORK/$mode.bench" 2>&1 || fail "redis-benchmark ($mode) failed"
    redis-cli -h 127.0.0.1 -p "$port" dbsize >"$WORK/$mode.dbsize"
    redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1
    local waited=0
    while kill -0 "$pid" 2>/dev/null && [ $waited -lt 200 ]; do sleep 0.05; waited=$((waited + 1)); done
    kill -0 "$pid" 2>/dev/null && { kill -9 "$pid"; fail "redis-server ($mode) did not exit after shutdown"; }
    wait "$pid"; echo $? >"$WORK/$mode.rc"
    # the tests that completed, e.g. "SET", "GET", "LPUSH"
    tr '\r' '\n' <"$WORK/$mode.bench" | sed -n 's/^\([A-Z_]*\).*: [0-9.]* requests per second.*/\1/p' | sort -u >"$WORK/$mode.out"
    echo "$mode: $(tr '\r' '\n' <"$WORK/$mode.bench" | grep 'requests per second' | tr '\n' ' ')"
}
serve native
serve traced
[ "$(cat "$WORK/native.rc")" = 0 ] || fail "redis-server exited $(cat "$WORK/native.rc") natively"
[ "$(wc -l <"$WORK/native.out")" -ge 5 ] || fail "redis-benchmark did not complete natively: $(cat "$WORK/native.bench")"
same_run redis-server
# -r picks random keys, so the exact count varies from run to run
[ "$(cat "$WORK/traced.dbsize")" -gt 10000 ] 2>/dev/null ||
    fail "only $(cat "$WORK/traced.dbsize") keys under heaptrace ($(cat "$WORK/native.dbsize") natively)"
check_trace "$WORK/t.htr" 'z(try)?(malloc|calloc|realloc)[a-z_]*' "redis allocator function (zmalloc*)"
snaps=$("$HT" snapshots "$WORK/t.htr") || fail "heaptrace snapshots failed"
echo "$snaps" | head -n 5
echo ok
