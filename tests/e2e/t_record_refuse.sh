#!/bin/bash
# What record refuses before running anything, with one line and the right
# status: a static binary, a setuid one, a missing program, an existing
# output file, bad options.
. "$TOP/tests/e2e/lib.sh"
"$HT" record nonexistent-program-xyz 2>err
expect_eq "missing program status" "$?" 127
expect_eq "missing program message" "$(cat err)" "heaptrace: cannot run 'nonexistent-program-xyz': No such file or directory"
echo 'x' >exists.htr
"$HT" record -o exists.htr /bin/true 2>err
expect_eq "existing output status" "$?" 1
grep -q "exists" err || fail "existing output: $(cat err)"
expect_eq "existing output untouched" "$(cat exists.htr)" x
"$HT" record --sample-rate lots /bin/true 2>err
expect_eq "bad option value" "$?" 2
"$HT" record --no-such-option /bin/true 2>err
expect_eq "unknown option" "$?" 2
"$HT" record --help >help || fail "--help"
grep -q -- "--snapshot-interval" help || fail "help lacks options"
cp /bin/true ./suid && chmod u+s ./suid
"$HT" record ./suid 2>err
expect_eq "setuid status" "$?" 1
grep -q "setuid" err || fail "setuid: $(cat err)"
[ "$(wc -l <err)" = 1 ] || fail "setuid: more than one line: $(cat err)"
printf 'int main(void){return 0;}\n' >s.c
gcc -static -o static_prog s.c 2>/dev/null || skip "no static libc to build a static binary"
"$HT" record ./static_prog 2>err
expect_eq "static status" "$?" 1
grep -q "statically linked" err || fail "static: $(cat err)"
[ "$(wc -l <err)" = 1 ] || fail "static: more than one line: $(cat err)"
ls heaptrace.* >/dev/null 2>&1 && fail "a trace was written for a refused program"
echo ok
