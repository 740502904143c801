/*
 * tests/fuzz/fuzz_reader.c -- libFuzzer target for everything that reads a
 * trace: file header, segment scan, zstd, record decoder, replay and
 * profile building (symbolization off: the fuzzer must not read the
 * machine's binaries). The input is written to a memfd and loaded through
 * /proc/self/fd, exactly as a file on disk would be.
 *
 * `make fuzz` runs it for a bounded time; inputs that once failed are kept
 * in tests/fuzz/corpus/ and replayed by `make check`.
 */
#include "analyzer/analyze.h"
#include "analyzer/profile.h"

#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz.htr", 0);
    if (fd < 0)
        return 0;
    size_t off = 0;
    while (off < size) {
        ssize_t n = write(fd, data + off, size - off);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ht_an_opts_t o;
    ht_an_opts_default(&o);
    o.symbolize = 0;
    o.progress = 0;
    ht_profile_t *p = NULL;
    char err[256];
    if (ht_an_profile_load(path, &o, &p, err, sizeof err) == 0)
        ht_prof_destroy(p);
    close(fd);
    return 0;
}
