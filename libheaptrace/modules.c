/*
 * libheaptrace/modules.c -- MODULE records from dl_iterate_phdr (contract:
 * modules.h).
 */
#include "libheaptrace/modules.h"

#include <elf.h>
#include <link.h>
#include <stddef.h>
#include <string.h>

#include "libheaptrace/util.h"

typedef struct mod_ent_s {
    uintptr_t bias;
    uint64_t name_hash;
    uint64_t id;
    uint32_t seen; /* scan generation in which it was last found */
} mod_ent_t;

static mod_ent_t mod_tab[HT_MODULES_MAX];
static uint32_t mod_n;
static uint64_t mod_next_id = 1;
static uint32_t mod_gen;
static unsigned long long mod_adds, mod_subs;
static char mod_exe[HT_TF_MAX_STR];
static uint32_t mod_exe_len;
static _Atomic int mod_lock;

static void
mod_lock_take(void)
{
    int z = 0;
    while (!atomic_compare_exchange_weak_explicit(&mod_lock, &z, 1, memory_order_acquire,
                                                  memory_order_relaxed)) {
        z = 0;
        ht_cpu_relax();
    }
}

static void
mod_lock_drop(void)
{
    atomic_store_explicit(&mod_lock, 0, memory_order_release);
}

void
ht_modules_atfork_child(void)
{
    atomic_store_explicit(&mod_lock, 0, memory_order_relaxed);
}

void
ht_modules_set_exe(const char *path, uint32_t len)
{
    if (len >= sizeof mod_exe)
        len = sizeof mod_exe - 1;
    memcpy(mod_exe, path, len);
    mod_exe[len] = '\0';
    mod_exe_len = len;
}

static uint64_t
mod_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return h;
}

/* GNU build-id from the object's PT_NOTE segments (already mapped). */
static uint32_t
mod_build_id(const struct dl_phdr_info *info, const uint8_t **out)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE)
            continue;
        const uint8_t *p = (const uint8_t *)(info->dlpi_addr + ph->p_vaddr);
        const uint8_t *end = p + ph->p_memsz;
        size_t align = ph->p_align == 8 ? 8 : 4;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
            const uint8_t *name = p + sizeof *nh;
            const uint8_t *desc = name + HT_ALIGN_UP((size_t)nh->n_namesz, align);
            const uint8_t *next = desc + HT_ALIGN_UP((size_t)nh->n_descsz, align);
            if (desc > end || desc + nh->n_descsz > end)
                break;
            if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
                memcmp(name, "GNU", 4) == 0 && nh->n_descsz > 0) {
                *out = desc;
                return nh->n_descsz > HT_TF_MAX_BUILD_ID ? HT_TF_MAX_BUILD_ID : nh->n_descsz;
            }
            if (next <= p)
                break;
            p = next;
        }
    }
    *out = NULL;
    return 0;
}

typedef struct mod_scan_s {
    ht_ring_t *r;
    ht_ring_writer_t *w;
    uint64_t ts;
    int written;
    int first;
} mod_scan_t;

static void
mod_emit(mod_scan_t *sc, uint64_t id, const struct dl_phdr_info *info, const char *path,
         uint32_t path_len)
{
    ht_tf_seg_t segs[HT_TF_MAX_SEGS];
    uint32_t nsegs = 0;
    for (int i = 0; i < info->dlpi_phnum && nsegs < HT_TF_MAX_SEGS; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        segs[nsegs].vaddr = ph->p_vaddr;
        segs[nsegs].memsz = ph->p_memsz;
        segs[nsegs].flags = ph->p_flags;
        nsegs++;
    }
    const uint8_t *bid;
    uint32_t bid_len = mod_build_id(info, &bid);
    size_t need = 64 + path_len + bid_len + nsegs * 30u;
    if (ht_ring_writer_reserve(sc->r, sc->w, need, sc->ts) != 0)
        return;
    if (ht_tf_put_module(&sc->w->enc, sc->ts, id, info->dlpi_addr, path, path_len, bid, bid_len,
                         segs, nsegs) == 0) {
        ht_ring_writer_commit(sc->r, sc->w);
        sc->written++;
    }
}

static int
mod_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    mod_scan_t *sc = arg;
    if (sc->first && size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs) {
        mod_adds = info->dlpi_adds;
        mod_subs = info->dlpi_subs;
    }
    const char *name = info->dlpi_name ? info->dlpi_name : "";
    // The main program comes first and is named ""; use its real path.
    const char *path = name;
    uint32_t path_len = (uint32_t)strlen(name);
    if (sc->first && path_len == 0) {
        path = mod_exe;
        path_len = mod_exe_len;
    }
    sc->first = 0;
    uint64_t h = mod_hash(name) ^ info->dlpi_addr;
    for (uint32_t i = 0; i < mod_n; i++) {
        if (mod_tab[i].bias == info->dlpi_addr && mod_tab[i].name_hash == h) {
            mod_tab[i].seen = mod_gen;
            return 0;
        }
    }
    if (mod_n == HT_MODULES_MAX)
        return 0;
    mod_ent_t *e = &mod_tab[mod_n++];
    e->bias = info->dlpi_addr;
    e->name_hash = h;
    e->id = mod_next_id++;
    e->seen = mod_gen;
    mod_emit(sc, e->id, info, path, path_len);
    return 0;
}

int
ht_modules_scan(ht_ring_t *r, ht_ring_writer_t *w, uint64_t ts, bool all)
{
    mod_lock_take();
    if (all)
        mod_n = 0; // ids keep growing: they only need to be unique per ring
    mod_scan_t sc = {r, w, ts, 0, 1};
    mod_gen++;
    dl_iterate_phdr(mod_cb, &sc);
    // Whatever was not seen in this scan has been unloaded.
    uint32_t j = 0;
    for (uint32_t i = 0; i < mod_n; i++) {
        if (mod_tab[i].seen == mod_gen) {
            mod_tab[j++] = mod_tab[i];
            continue;
        }
        if (ht_ring_writer_reserve(r, w, HT_TF_MAX_FIXED_REC, ts) == 0 &&
            ht_tf_put_unmodule(&w->enc, ts, mod_tab[i].id) == 0) {
            ht_ring_writer_commit(r, w);
            sc.written++;
        }
    }
    mod_n = j;
    mod_lock_drop();
    return sc.written;
}

static int
mod_count_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    unsigned long long *v = arg;
    if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs) {
        v[0] = info->dlpi_adds;
        v[1] = info->dlpi_subs;
    }
    return 1; // the counters are global: the first object is enough
}

bool
ht_modules_changed(void)
{
    unsigned long long v[2] = {mod_adds, mod_subs};
    dl_iterate_phdr(mod_count_cb, v);
    return v[0] != mod_adds || v[1] != mod_subs;
}
