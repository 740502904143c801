/*
 * libheaptrace/shim_dl.c -- dlclose, interposed so that an unload is
 * recorded when it happens: MODULE for whatever was loaded since the
 * recorder last looked (a plugin loaded, used and closed within one poll
 * interval would otherwise never be described), then, after the real
 * dlclose, UNMODULE for what it unmapped. Without this the unload is only
 * noticed at the next poll, and a different library mapped at the same
 * address in between would be taken for the old one.
 *
 * dlclose does not look at its caller, so a plain call is fine here
 * (unlike dlopen, shim.c, which must jump).
 */
#include <dlfcn.h>
#include <errno.h>

#include "libheaptrace/rec.h"
#include "libheaptrace/unwind.h"
#include "libheaptrace/util.h"

HT_EXPORT int
dlclose(void *handle)
{
    // Resolved on first use, not at init: by then dlsym's own allocations
    // go to the real allocator like any other.
    static int (*real_dlclose)(void *);
    int (*fn)(void *) = __atomic_load_n(&real_dlclose, __ATOMIC_ACQUIRE);
    if (!fn) {
        fn = (int (*)(void *))dlsym(RTLD_NEXT, "dlclose");
        if (!fn) {
            errno = ENOSYS; // no libc without dlclose can have loaded us
            return -1;
        }
        __atomic_store_n(&real_dlclose, fn, __ATOMIC_RELEASE);
    }
    ht_rec_modules_sync(); // MODULE for what came since the last look
    int rc = fn(handle);
    int saved = errno;
    // Cached unwind rules of what was unmapped must not apply to whatever
    // is mapped there next.
    ht_unwind_flush();
    ht_rec_modules_sync(); // UNMODULE for what this unmapped
    errno = saved;
    return rc;
}
