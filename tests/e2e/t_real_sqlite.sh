#!/bin/bash
# sqlite3 running a scripted session (table, rows in transactions, index,
# queries) under `heaptrace record --all`: same output and status as
# natively; report, collapse and pprof name SQLite's functions (sqlite3*).
. "$TOP/tests/e2e/t_real_lib.bash"
need sqlite3
SQ=$(real_exe sqlite3)
awk 'BEGIN {
  q = sprintf("%c", 39)
  print "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, grp INTEGER, note TEXT);"
  for (i = 0; i < 20000; i++) {
    if (i % 5000 == 0) print "BEGIN;"
    printf "INSERT INTO t(name, grp, note) VALUES(%sn%d%s, %d, %snote %d%s);\n", q, i * 7919 % 10007, q, i % 50, q, i, q
    if (i % 5000 == 4999) print "COMMIT;"
  }
  print "CREATE INDEX t_name ON t(name);"
  print "SELECT count(*), count(DISTINCT name) FROM t;"
  print "SELECT grp, count(*) FROM t GROUP BY grp ORDER BY grp LIMIT 3;"
  print "SELECT name FROM t WHERE name = " q "n4242" q " LIMIT 1;"
  print "SELECT length(group_concat(note)) FROM t WHERE grp < 5;"
}' >"$WORK/session.sql"
run() {  # run DB OUT
    rm -f "$1"
    "${@:3}" "$SQ" "$1" <"$WORK/session.sql" >"$2.out" 2>"$2.err"
    echo $? >"$2.rc"
}
run "$WORK/native.db" "$WORK/native"
run "$WORK/traced.db" "$WORK/traced" "$HT" record --all -o "$WORK/t.htr"
cat "$WORK/traced.err"
[ "$(cat "$WORK/native.rc")" = 0 ] || fail "sqlite3 failed natively: $(cat "$WORK/native.err")"
grep -q '^20000|' "$WORK/native.out" || fail "unexpected native output: $(head -n 2 "$WORK/native.out")"
same_run sqlite3
check_trace "$WORK/t.htr" 'sqlite3(_[a-z0-9_]+|[A-Z][A-Za-z0-9_]*)' "SQLite function (sqlite3*)"
echo ok
