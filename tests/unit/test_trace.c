/* tests/unit/test_trace.c -- record encoder/decoder round trips. */
#include "formats/trace.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint8_t buf[1 << 16];
static ht_tf_dec_t dec;

START_TEST(test_varint_edges)
{
    uint64_t vals[] = {0, 1, 127, 128, 16383, 16384, UINT32_MAX, UINT64_MAX - 1, UINT64_MAX};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        uint8_t b[10];
        unsigned n = ht_tf_varint_write(b, vals[i]);
        ck_assert_uint_eq(n, ht_tf_varint_len(vals[i]));
        const uint8_t *p = b;
        uint64_t v;
        ck_assert_int_eq(ht_tf_varint_read(&p, b + n, &v), 0);
        ck_assert_uint_eq(v, vals[i]);
        ck_assert_ptr_eq(p, b + n);
        // Every strict prefix is truncated.
        p = b;
        if (n > 1)
            ck_assert_int_eq(ht_tf_varint_read(&p, b + n - 1, &v), -EBADMSG);
    }
    // An 11-byte run of continuation bytes is not a varint.
    uint8_t bad[11];
    memset(bad, 0xff, sizeof bad);
    const uint8_t *p = bad;
    uint64_t v;
    ck_assert_int_eq(ht_tf_varint_read(&p, bad + sizeof bad, &v), -EBADMSG);
}
END_TEST

START_TEST(test_round_trip_every_kind)
{
    ht_tf_enc_t e;
    ht_tf_enc_init(&e, buf, sizeof buf);
    uint64_t frames[300];
    for (int i = 0; i < 300; i++)
        frames[i] = 0x7f0000001000ull + (uint64_t)(i * 7919 % 1000) * 16;
    ht_tf_seg_t segs[2] = {{0x1000, 0x2000, 5}, {0x5000, 0x100, 6}};
    const uint8_t bid[20] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20};
    ck_assert_int_eq(ht_tf_put_batch(&e, 42, 43, 1000000), 0);
    ck_assert_int_eq(ht_tf_put_alloc(&e, 1000010, 0x55550000, 24, 7, HT_TF_WEIGHT_ONE), 0);
    ck_assert_int_eq(ht_tf_put_alloc(&e, 1000020, 0x55551000, 100, 8, 3 * HT_TF_WEIGHT_ONE / 2), 0);
    ck_assert_int_eq(ht_tf_put_free(&e, 1000030, 0x55550000), 0);
    ck_assert_int_eq(ht_tf_put_realloc(&e, 1000035, 0x55551000, 0x7fff00002000ull, 200, 9, 17), 0);
    ck_assert_int_eq(ht_tf_put_stack(&e, 9, frames, 300), 0);
    ck_assert_int_eq(ht_tf_put_stack_ref(&e, 10, 9, 298, frames + 100, 2), 0);
    ck_assert_int_eq(ht_tf_put_module(&e, 1000040, 3, 0x7f00000000, "/lib/libc.so.6", 14, bid, 20,
                                      segs, 2), 0);
    ck_assert_int_eq(ht_tf_put_unmodule(&e, 1000050, 3), 0);
    ck_assert_int_eq(ht_tf_put_thread(&e, 1000060, 44, "worker", 6), 0);
    ck_assert_int_eq(ht_tf_put_thread_end(&e, 1000070, 44), 0);
    ck_assert_int_eq(ht_tf_put_totals(&e, 1000080, 43, 10, 1000, 9, 900), 0);
    ck_assert_int_eq(ht_tf_put_exit(&e, 1000090, HT_TF_EXIT_SIGNAL, 9), 0);
    ck_assert_int_eq(ht_tf_put_process(&e, 1000100, 42, 1, HT_TF_PROC_ALL, 0, 256, "/bin/x", 6,
                                       "x\0-v", 4), 0);
    ck_assert_int_eq(ht_tf_put_fork(&e, 1000110, 4242), 0);
    ck_assert_int_eq(ht_tf_put_live(&e, 77, 5), 0);
    ck_assert_int_eq(ht_tf_put_keyframe(&e, 2000000, 5, 2, HT_TF_SNAP_API), 0);
    ck_assert_int_eq(ht_tf_put_keyframe_end(&e, 1), 0);
    ck_assert_int_eq(ht_tf_put_lost(&e, 2000010, 3, 4, 5), 0);
    ck_assert_int_eq(ht_tf_put_memstat(&e, 2000020, 1, 2, 3, 4, 5, 6, 7), 0);
    ck_assert_int_eq(ht_tf_put_snapshot_req(&e, 2000030, HT_TF_SNAP_SIGNAL), 0);
    ck_assert_int_eq(ht_tf_put_site(&e, 77, 100, 8, 3 * HT_TF_WEIGHT_ONE / 2, 43,
                                    HT_TF_SITE_INHERITED), 0);
    ck_assert_int_eq(ht_tf_put_tick(&e, 2000040), 0);
    ck_assert_int_eq(ht_tf_put_ev_alloc(&e, 77), 0);
    ck_assert_int_eq(ht_tf_put_ev_free(&e, 77, 0), 0);
    ck_assert_int_eq(ht_tf_put_ev_free(&e, 78, 1), 0);
    ck_assert_int_eq(ht_tf_put_ev_thread(&e, 45), 0);
    ck_assert_int_eq(ht_tf_put_unknown_frees(&e, 2000070, 12), 0);

    ht_tf_rec_t r;
    ht_tf_dec_init(&dec, buf, (size_t)(e.p - buf));
    int seen[HT_TF_KIND_MAX] = {0};
    while (ht_tf_dec_next(&dec, &r) == 1) {
        seen[r.kind]++;
        switch (r.kind) {
        case HT_TF_BATCH:
            ck_assert_uint_eq(r.pid, 42);
            ck_assert_uint_eq(r.tid, 43);
            ck_assert_uint_eq(r.ts, 1000000);
            break;
        case HT_TF_ALLOC:
            ck_assert_uint_eq(r.ts, 1000010);
            ck_assert_uint_eq(r.ptr, 0x55550000);
            ck_assert_uint_eq(r.size, 24);
            ck_assert_uint_eq(r.stack, 7);
            ck_assert_uint_eq(r.weight, HT_TF_WEIGHT_ONE);
            break;
        case HT_TF_REALLOC:
            ck_assert_uint_eq(r.ts, 1000035);
            ck_assert_uint_eq(r.from, 0x55551000);
            ck_assert_uint_eq(r.ptr, 0x7fff00002000ull);
            ck_assert_uint_eq(r.size, 200);
            ck_assert_uint_eq(r.stack, 9);
            ck_assert_uint_eq(r.later, 17);
            break;
        case HT_TF_ALLOC_W:
            ck_assert_uint_eq(r.ts, 1000020);
            ck_assert_uint_eq(r.weight, 3 * HT_TF_WEIGHT_ONE / 2);
            break;
        case HT_TF_FREE:
            ck_assert_uint_eq(r.ts, 1000030);
            ck_assert_uint_eq(r.ptr, 0x55550000);
            break;
        case HT_TF_STACK:
            ck_assert_uint_eq(r.id, 9);
            ck_assert_uint_eq(r.nframes, 300);
            ck_assert_mem_eq(r.frames, frames, sizeof frames);
            break;
        case HT_TF_STACK_REF:
            ck_assert_uint_eq(r.id, 10);
            ck_assert_uint_eq(r.base, 9);
            ck_assert_uint_eq(r.keep, 298);
            ck_assert_uint_eq(r.nframes, 2);
            ck_assert_mem_eq(r.frames, frames + 100, 2 * sizeof *frames);
            break;
        case HT_TF_MODULE:
            ck_assert_uint_eq(r.ts, 1000040);
            ck_assert_uint_eq(r.bias, 0x7f00000000);
            ck_assert_uint_eq(r.str_len, 14);
            ck_assert_mem_eq(r.str, "/lib/libc.so.6", 14);
            ck_assert_uint_eq(r.bytes_len, 20);
            ck_assert_mem_eq(r.bytes, bid, 20);
            ck_assert_uint_eq(r.nsegs, 2);
            ck_assert_uint_eq(r.segs[1].vaddr, 0x5000);
            break;
        case HT_TF_THREAD:
            ck_assert_uint_eq(r.tid, 44);
            ck_assert_mem_eq(r.str, "worker", 6);
            break;
        case HT_TF_TOTALS:
            ck_assert_uint_eq(r.allocs, 10);
            ck_assert_uint_eq(r.free_bytes, 900);
            break;
        case HT_TF_EXIT:
            ck_assert_uint_eq(r.how, HT_TF_EXIT_SIGNAL);
            ck_assert_uint_eq(r.code, 9);
            break;
        case HT_TF_PROCESS:
            ck_assert_uint_eq(r.ts, 1000100);
            ck_assert_uint_eq(r.max_depth, 256);
            ck_assert_uint_eq(r.str2_len, 4);
            break;
        case HT_TF_FORK:
            ck_assert_uint_eq(r.child, 4242);
            break;
        case HT_TF_SITE:
            ck_assert_uint_eq(r.id, 77);
            ck_assert_uint_eq(r.size, 100);
            ck_assert_uint_eq(r.stack, 8);
            ck_assert_uint_eq(r.weight, 3 * HT_TF_WEIGHT_ONE / 2);
            ck_assert_uint_eq(r.tid, 43);
            ck_assert_uint_eq(r.flags, HT_TF_SITE_INHERITED);
            break;
        case HT_TF_TICK:
            ck_assert_uint_eq(r.ts, 2000040);
            break;
        case HT_TF_EV_ALLOC:
        case HT_TF_EV_FREE:
            // No time of their own: the stream's, which the TICK set.
            ck_assert_uint_eq(r.ts, 2000040);
            ck_assert_uint_eq(r.site, 77);
            break;
        case HT_TF_EV_FREE_TMP:
            ck_assert_uint_eq(r.site, 78);
            break;
        case HT_TF_EV_THREAD:
            ck_assert_uint_eq(r.tid, 45);
            break;
        case HT_TF_UNKNOWN_FREES:
            ck_assert_uint_eq(r.ts, 2000070);
            ck_assert_uint_eq(r.frees, 12);
            break;
        case HT_TF_LIVE:
            ck_assert_uint_eq(r.site, 77);
            ck_assert_uint_eq(r.count, 5);
            break;
        case HT_TF_KEYFRAME:
            ck_assert_uint_eq(r.ts, 2000000);
            ck_assert_uint_eq(r.snapshot, 2);
            break;
        case HT_TF_LOST:
            ck_assert_uint_eq(r.ts, 2000010);
            ck_assert_uint_eq(r.wait_ns, 5);
            break;
        case HT_TF_MEMSTAT:
            ck_assert_uint_eq(r.heap_total, 7);
            break;
        case HT_TF_SNAPSHOT_REQ:
            ck_assert_uint_eq(r.ts, 2000030);
            break;
        }
    }
    ck_assert_ptr_eq(dec.p, e.p);
    for (unsigned k = 1; k < HT_TF_KIND_MAX; k++) {
        ck_assert_msg(ht_tf_kind_name(k) != NULL, "kind %u has no name", k);
        ck_assert_msg(seen[k] == 1, "kind %s seen %d times", ht_tf_kind_name(k), seen[k]);
    }
}
END_TEST

/* Segment streams count "d" in HT_TF_SEG_TICK_NS ticks: the base moves by whole
 * ticks, so a decoded time is at most one tick early and the error never
 * grows along the stream. */
START_TEST(test_segment_tick_quantizes_without_drift)
{
    ht_tf_enc_t e;
    ht_tf_enc_init_seg(&e, buf, sizeof buf);
    ck_assert_int_eq(ht_tf_put_keyframe(&e, 1000000, 0, 0, 0), 0);
    uint64_t ts = 1000000;
    for (int i = 0; i < 1000; i++) {
        ts += 1 + (uint64_t)i * 7919 % (HT_TF_SEG_TICK_NS * 17 / 10); // sub- and multi-tick steps
        ck_assert_int_eq(ht_tf_put_tick(&e, ts), 0); // nothing while under a tick
        ck_assert_int_eq(ht_tf_put_ev_alloc(&e, 1), 0);
    }
    ht_tf_rec_t r;
    ht_tf_dec_init_seg(&dec, buf, (size_t)(e.p - buf));
    ck_assert_int_eq(ht_tf_dec_next(&dec, &r), 1);
    uint64_t want = 1000000;
    for (int i = 0; i < 1000; i++) {
        want += 1 + (uint64_t)i * 7919 % (HT_TF_SEG_TICK_NS * 17 / 10);
        do
            ck_assert_int_eq(ht_tf_dec_next(&dec, &r), 1);
        while (r.kind == HT_TF_TICK);
        ck_assert_int_eq(r.kind, HT_TF_EV_ALLOC);
        ck_assert_uint_le(r.ts, want);
        ck_assert_uint_lt(want - r.ts, HT_TF_SEG_TICK_NS);
        ck_assert_uint_eq((r.ts - 1000000) % HT_TF_SEG_TICK_NS, 0);
    }
}
END_TEST

START_TEST(test_enc_full_leaves_buffer_untouched)
{
    uint8_t small[8];
    ht_tf_enc_t e;
    ht_tf_enc_init(&e, small, sizeof small);
    ck_assert_int_eq(ht_tf_put_free(&e, 1, 0x1234), 0);
    uint8_t *before = e.p;
    uint64_t ts_before = e.last_ts;
    ck_assert_int_eq(ht_tf_put_alloc(&e, 5, UINT64_MAX, UINT64_MAX, 1, HT_TF_WEIGHT_ONE), -ENOSPC);
    ck_assert_ptr_eq(e.p, before);
    ck_assert_uint_eq(e.last_ts, ts_before);
}
END_TEST

START_TEST(test_dec_rejects_truncation_and_lies)
{
    ht_tf_enc_t e;
    ht_tf_enc_init(&e, buf, sizeof buf);
    ck_assert_int_eq(ht_tf_put_thread(&e, 5, 1, "abcdef", 6), 0);
    size_t n = (size_t)(e.p - buf);
    ht_tf_rec_t r;
    for (size_t cut = 1; cut < n; cut++) {
        ht_tf_dec_init(&dec, buf, cut);
        ck_assert_int_eq(ht_tf_dec_next(&dec, &r), -EBADMSG);
        ck_assert_ptr_eq(dec.p, buf);
    }
    // A stack that claims 2^60 frames.
    uint8_t lie[16] = {HT_TF_STACK, 1};
    unsigned k = 2 + ht_tf_varint_write(lie + 2, 1ull << 60);
    ht_tf_dec_init(&dec, lie, k + 2);
    ck_assert_int_eq(ht_tf_dec_next(&dec, &r), -EBADMSG);
    // An unknown kind (the codes past the table, below the packed events).
    uint8_t unk[2] = {0x3e, 0};
    ht_tf_dec_init(&dec, unk, 2);
    ck_assert_int_eq(ht_tf_dec_next(&dec, &r), -EBADMSG);
    // The plain codes of the packed events are not written any more.
    uint8_t plain[2] = {HT_TF_EV_ALLOC, 1};
    ht_tf_dec_init(&dec, plain, 2);
    ck_assert_int_eq(ht_tf_dec_next(&dec, &r), -EBADMSG);
}

/* EV_ALLOC / EV_FREE / EV_FREE_TMP are packed: kind and low site bits in
 * one byte, the rest in a varint; they decode to the plain kinds. */
START_TEST(test_packed_events)
{
    ht_tf_enc_t e;
    ht_tf_enc_init_seg(&e, buf, sizeof buf);
    const uint64_t sites[] = {1, 63, 64, 127, 8191, 8192, 1u << 20, HT_TF_MAX_SITE - 1};
    for (size_t i = 0; i < sizeof sites / sizeof sites[0]; i++) {
        ck_assert_int_eq(ht_tf_put_ev_alloc(&e, sites[i]), 0);
        ck_assert_int_eq(ht_tf_put_ev_free(&e, sites[i], (int)(i & 1)), 0);
    }
    ht_tf_rec_t r;
    ht_tf_dec_init_seg(&dec, buf, (size_t)(e.p - buf));
    for (size_t i = 0; i < sizeof sites / sizeof sites[0]; i++) {
        ck_assert_int_eq(ht_tf_dec_next(&dec, &r), 1);
        ck_assert_int_eq(r.kind, HT_TF_EV_ALLOC);
        ck_assert_uint_eq(r.site, sites[i]);
        ck_assert_int_eq(ht_tf_dec_next(&dec, &r), 1);
        ck_assert_int_eq(r.kind, (i & 1) ? HT_TF_EV_FREE_TMP : HT_TF_EV_FREE);
        ck_assert_uint_eq(r.site, sites[i]);
    }
    ck_assert_int_eq(ht_tf_dec_next(&dec, &r), 0);
    ht_tf_enc_init_seg(&e, buf, sizeof buf);
    ck_assert_int_eq(ht_tf_put_ev_alloc(&e, 8191), 0);
    ck_assert_int_eq(ht_tf_put_ev_free(&e, 100, 1), 0);
    ck_assert_uint_eq((size_t)(e.p - buf), 4); // sites under 2^13: two bytes an event
}
END_TEST
END_TEST

/* The shim's unchecked ALLOC/FREE/REALLOC encoders write exactly the
 * bytes of the checked ones, out-of-order times (clamped) and sampled
 * weights included. */
START_TEST(test_reserved_puts_match)
{
    static uint8_t a[1 << 16], b[1 << 16];
    ht_tf_enc_t ea, eb;
    ht_tf_enc_init(&ea, a, sizeof a);
    ht_tf_enc_init(&eb, b, sizeof b);
    uint64_t x = 88172645463325252ull, ts = 1000;
    for (int i = 0; i < 1000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        ts = (x & 7) == 0 ? ts - (x >> 60) : ts + (x >> 40); // sometimes back
        uint64_t ptr = x >> (x & 31), size = x >> 44, stack = x & 0xffff;
        uint64_t w = (x & 3) ? HT_TF_WEIGHT_ONE : HT_TF_WEIGHT_ONE + (x >> 50);
        if ((x & 24) == 16) {
            uint64_t from = x >> 17, later = x >> 50;
            ck_assert_int_eq(ht_tf_put_realloc(&ea, ts, from, ptr, size, stack, later), 0);
            ht_tf_put_realloc_reserved(&eb, ts, from, ptr, size, stack, later);
        } else if (x & 8) {
            ck_assert_int_eq(ht_tf_put_alloc(&ea, ts, ptr, size, stack, w), 0);
            ht_tf_put_alloc_reserved(&eb, ts, ptr, size, stack, w);
        } else {
            ck_assert_int_eq(ht_tf_put_free(&ea, ts, ptr), 0);
            ht_tf_put_free_reserved(&eb, ts, ptr);
        }
        ck_assert_uint_eq((size_t)(ea.p - a), (size_t)(eb.p - b));
        ck_assert_uint_eq(ea.last_ts, eb.last_ts);
    }
    ck_assert_mem_eq(a, b, (size_t)(ea.p - a));
    // And they decode to what went in: pointers of 6 bytes and escaped
    // ones (x >> (x & 31) is often 2^48 or more), whatever is left of the
    // buffer after them (the last FREE ends the input, short of the 8
    // bytes a fast load takes).
    x = 88172645463325252ull;
    ts = 1000;
    ht_tf_dec_t d;
    ht_tf_dec_init(&d, b, (size_t)(eb.p - b));
    int escaped = 0;
    for (int i = 0; i < 1000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t ptr = x >> (x & 31);
        escaped += ptr >= HT_TF_P_ESC;
        ht_tf_rec_t r;
        ck_assert_int_eq(ht_tf_dec_next(&d, &r), 1);
        if ((x & 24) == 16) {
            ck_assert_int_eq(r.kind, HT_TF_REALLOC);
            ck_assert_uint_eq(r.from, x >> 17);
            ck_assert_uint_eq(r.later, x >> 50);
        } else {
            ck_assert_int_eq(r.kind,
                             (x & 8) ? ((x & 3) ? HT_TF_ALLOC : HT_TF_ALLOC_W) : HT_TF_FREE);
        }
        ck_assert_uint_eq(r.ptr, ptr);
        if (x & 24)
            ck_assert_uint_eq(r.size, x >> 44);
    }
    ht_tf_rec_t r;
    ck_assert_int_eq(ht_tf_dec_next(&d, &r), 0);
    ck_assert_int_gt(escaped, 100);
    ck_assert_int_lt(escaped, 900);
}
END_TEST

START_TEST(test_dec_random_bytes_never_crash)
{
    srand(12345);
    uint8_t junk[512];
    ht_tf_rec_t r;
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = (size_t)(rand() % (int)sizeof junk);
        for (size_t i = 0; i < n; i++)
            junk[i] = (uint8_t)rand();
        ht_tf_dec_init(&dec, junk, n);
        int rc, guard = 0;
        while ((rc = ht_tf_dec_next(&dec, &r)) == 1) {
            ck_assert(dec.p <= junk + n);
            ck_assert(++guard <= (int)n);
        }
        ck_assert(rc == 0 || rc == -EBADMSG);
    }
}
END_TEST

Suite *
suite_trace(void)
{
    Suite *s = suite_create("trace");
    TCase *tc = tcase_create("codec");
    tcase_add_test(tc, test_varint_edges);
    tcase_add_test(tc, test_round_trip_every_kind);
    tcase_add_test(tc, test_segment_tick_quantizes_without_drift);
    tcase_add_test(tc, test_enc_full_leaves_buffer_untouched);
    tcase_add_test(tc, test_dec_rejects_truncation_and_lies);
    tcase_add_test(tc, test_packed_events);
    tcase_add_test(tc, test_reserved_puts_match);
    tcase_add_test(tc, test_dec_random_bytes_never_crash);
    suite_add_tcase(s, tc);
    return s;
}
