/*
 * tests/fuzz/fuzz_segment.c -- libFuzzer target for one decompressed
 * segment payload: the record decoder and the replay (sites, STACK_REF,
 * LIVE counts, keyframes, modules), past the file's CRCs and zstd that
 * stop most mutations of whole files (fuzz_reader.c). Each input is
 * replayed twice, as a first segment and as one after a gap, then summed.
 */
#include "analyzer/reader.h"
#include "analyzer/replay.h"

#include <stdbool.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ht_rp_t *rp = ht_rp_create(100, 1);
    if (!rp)
        return 0;
    bool stopped = false;
    size_t bad = 0;
    (void)ht_rd_segment(rp, data, size, 0, 100, true, -1, &stopped, &bad, NULL);
    (void)ht_rd_segment(rp, data, size, 2, 100, true, 0, &stopped, &bad, NULL);
    ht_rp_finish(rp);
    ht_rp_destroy(rp);
    return 0;
}
