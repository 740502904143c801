/*
 * libheaptrace/modules.h -- the loaded objects as MODULE / UNMODULE
 * records (prefix ht_modules_): path, build-id (from PT_NOTE), load bias
 * and PT_LOAD segments, found with dl_iterate_phdr.
 *
 * dlopen/dlclose are not interposed: glibc's dlopen resolves $ORIGIN and
 * RUNPATH from its caller's object, which an interposer would change.
 * Instead the recorder polls the loader's add/remove counters on its slow
 * path (ht_modules_changed) and rescans when they move.
 */
#ifndef HT_LIBHEAPTRACE_MODULES_H
#define HT_LIBHEAPTRACE_MODULES_H

#include <stdbool.h>
#include <stdint.h>

#include "libheaptrace/ring.h"

/* Most modules tracked at once; beyond that new ones are not recorded. */
#define HT_MODULES_MAX 2048

/* Remember the main executable's path (dl_iterate_phdr names it ""). [init] */
void ht_modules_set_exe(const char *path, uint32_t len);

/* Emit a MODULE record for every loaded object not yet recorded and an
 * UNMODULE for every recorded one that is gone, through writer w. With
 * `all`, forget what was recorded and emit every module again (a new ring
 * after fork or exec). Serialized by an internal lock; the caller holds
 * its recursion guard (dl_iterate_phdr may allocate). Returns the number
 * of records written. [init or slow path] */
int ht_modules_scan(ht_ring_t *r, ht_ring_writer_t *w, uint64_t ts, bool all);

/* Have objects been loaded or unloaded since the last scan? Takes the
 * loader's lock briefly; call it on the slow path only, rate-limited. */
bool ht_modules_changed(void);

/* After fork in the child: the lock may have been held by a thread that
 * no longer exists. [init] */
void ht_modules_atfork_child(void);

#endif /* HT_LIBHEAPTRACE_MODULES_H */
