/* tests/unit/fixture_profile.c -- the shared hand-built profile (see
 * fixture_profile.h). */
#include "tests/unit/fixture_profile.h"

#include <string.h>

ht_mapping_t fx_maps[3] = {
    {0x400000, 0x500000, 0, "/usr/bin/app", "abcdef0123456789", 1},
    {0x7f0000000000, 0x7f0000200000, 0x1000, "/lib/x86_64-linux-gnu/libc.so.6", "", 1},
    {0x7e0000000000, 0x7e0000100000, 0x2000, "/opt/plug/libplug.so", "", 0},
};
static ht_line_t fx_l0[] = {{"inner_helper", "src/a.c", 10}, {"outer_fn", "src/a.c", 50}};
static ht_line_t fx_l1[] = {{"main", "src/main.c", 5}};
static ht_line_t fx_l2[] = {{"__libc_start_main", NULL, 0}};
static ht_line_t fx_l3[] = {{"malloc", NULL, 0}};
static ht_line_t fx_l4[1]; // the suite's, copied in by fx_profile_init
static ht_line_t fx_l6[] = {{"operator new(unsigned long)", NULL, 0}};
static ht_line_t fx_l7[] = {{"worker", "src/w.c", 20}};
static ht_line_t fx_l8[] = {{"worker", "src/w.c", 22}};
ht_location_t fx_locs[9] = {
    {0x401000, 1, 2, fx_l0}, {0x402000, 1, 1, fx_l1},        {0x7f0000001000, 2, 1, fx_l2},
    {0x7f0000002000, 2, 1, fx_l3}, {0x403000, 1, 1, fx_l4}, {0x7e0000001234, 3, 0, NULL},
    {0x404000, 1, 1, fx_l6}, {0x405000, 1, 1, fx_l7},       {0x405100, 1, 1, fx_l8},
};
static uint32_t fx_s0[] = {0, 1, 2}, fx_s1[] = {3, 0, 1, 2}, fx_s2[] = {4, 1, 2},
                fx_s3[] = {5, 1, 2}, fx_s4[] = {6, 7, 1, 2}, fx_s5[] = {6, 8, 1, 2},
                fx_s7[] = {3};
static uint32_t *const fx_shape[FX_NSHAPES] = {fx_s0, fx_s1, fx_s2, fx_s3, fx_s4, fx_s5, NULL, fx_s7};
static const uint32_t fx_shape_len[FX_NSHAPES] = {3, 4, 3, 3, 4, 4, 0, 1};

void
fx_profile_init(ht_profile_t *p, ht_pstack_t *stacks, size_t n, const ht_line_t *odd)
{
    fx_l4[0] = *odd;
    memset(stacks, 0, n * sizeof *stacks);
    for (size_t i = 0; i < n; i++) {
        size_t k = i < FX_NSHAPES ? i : 0;
        stacks[i].nlocs = fx_shape_len[k];
        stacks[i].locs = fx_shape[k];
    }
    memset(p, 0, sizeof *p);
    p->maps = fx_maps;
    p->nmaps = sizeof fx_maps / sizeof fx_maps[0];
    p->locs = fx_locs;
    p->nlocs = sizeof fx_locs / sizeof fx_locs[0];
    p->stacks = stacks;
    p->nstacks = (uint32_t)n;
}
