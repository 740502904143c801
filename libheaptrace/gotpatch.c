/*
 * libheaptrace/gotpatch.c -- rewrite malloc-family GOT slots of loaded
 * objects; see gotpatch.h for why. x86-64 ELF only (RELA relocations);
 * elsewhere ht_got_patch does nothing.
 */
#include "libheaptrace/gotpatch.h"

#include <elf.h>
#include <link.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__x86_64__)

typedef struct got_ctx_s {
    const ht_got_sym_t *syms;
    size_t nsyms;
    int patched;
    uintptr_t self; /* an address inside the shim, to skip it */
} got_ctx_t;

/* Is `name` the soname-ish path of an object we never patch? The C
 * library and the loader hold the real functions; patching them would
 * make the real malloc call us. */
static int
got_is_exempt(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    return !strncmp(base, "libc.so", 7) || !strncmp(base, "ld-linux", 8) ||
           !strncmp(base, "libc-", 5) || !strncmp(base, "ld-", 3) ||
           !strncmp(base, "linux-vdso", 10);
}

static int
got_contains(const struct dl_phdr_info *info, uintptr_t addr)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (addr >= lo && addr < lo + ph->p_memsz)
            return 1;
    }
    return 0;
}

/* Write `val` into the slot at `slot`, lifting RELRO protection for the
 * write if the page is read-only. */
static int
got_write(const struct dl_phdr_info *info, void **slot, void *val)
{
    uintptr_t a = (uintptr_t)slot;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_GNU_RELRO)
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (a < lo || a >= lo + ph->p_memsz)
            continue;
        long pg = sysconf(_SC_PAGESIZE);
        uintptr_t page = a & ~((uintptr_t)pg - 1);
        if (mprotect((void *)page, (size_t)pg, PROT_READ | PROT_WRITE) != 0)
            return -1;
        __atomic_store_n(slot, val, __ATOMIC_RELEASE);
        mprotect((void *)page, (size_t)pg, PROT_READ);
        return 0;
    }
    __atomic_store_n(slot, val, __ATOMIC_RELEASE);
    return 0;
}

static void
got_patch_relocs(got_ctx_t *c, const struct dl_phdr_info *info, const ElfW(Rela) *rel,
                 size_t count, const ElfW(Sym) *symtab, const char *strtab, size_t strsz)
{
    for (size_t i = 0; i < count; i++) {
        unsigned long type = ELF64_R_TYPE(rel[i].r_info);
        if (type != R_X86_64_JUMP_SLOT && type != R_X86_64_GLOB_DAT)
            continue;
        const ElfW(Sym) *sym = &symtab[ELF64_R_SYM(rel[i].r_info)];
        if (sym->st_name >= strsz)
            continue;
        const char *name = strtab + sym->st_name;
        for (size_t k = 0; k < c->nsyms; k++) {
            if (strcmp(name, c->syms[k].name) != 0)
                continue;
            void **slot = (void **)(info->dlpi_addr + rel[i].r_offset);
            if (!got_contains(info, (uintptr_t)slot))
                break; // a relocation that points outside the object: leave it
            if (__atomic_load_n(slot, __ATOMIC_ACQUIRE) != c->syms[k].to &&
                got_write(info, slot, c->syms[k].to) == 0)
                c->patched++;
            break;
        }
    }
}

static int
got_object_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    got_ctx_t *c = arg;
    if (got_is_exempt(info->dlpi_name) || got_contains(info, c->self))
        return 0;
    const ElfW(Dyn) *dyn = NULL;
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
            dyn = (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
    if (!dyn)
        return 0;
    const ElfW(Sym) *symtab = NULL;
    const char *strtab = NULL;
    size_t strsz = 0, relasz = 0, pltsz = 0;
    const ElfW(Rela) *rela = NULL, *jmprel = NULL;
    int pltrel_is_rela = 1;
    // After relocation, glibc stores absolute addresses in these entries
    // (the dynamic section is writable on x86-64 for exactly this).
    for (; dyn->d_tag != DT_NULL; dyn++) {
        switch (dyn->d_tag) {
        case DT_SYMTAB: symtab = (const ElfW(Sym) *)dyn->d_un.d_ptr; break;
        case DT_STRTAB: strtab = (const char *)dyn->d_un.d_ptr; break;
        case DT_STRSZ: strsz = dyn->d_un.d_val; break;
        case DT_RELA: rela = (const ElfW(Rela) *)dyn->d_un.d_ptr; break;
        case DT_RELASZ: relasz = dyn->d_un.d_val; break;
        case DT_JMPREL: jmprel = (const ElfW(Rela) *)dyn->d_un.d_ptr; break;
        case DT_PLTRELSZ: pltsz = dyn->d_un.d_val; break;
        case DT_PLTREL: pltrel_is_rela = dyn->d_un.d_val == DT_RELA; break;
        }
    }
    if (!symtab || !strtab)
        return 0;
    if (rela)
        got_patch_relocs(c, info, rela, relasz / sizeof *rela, symtab, strtab, strsz);
    if (jmprel && pltrel_is_rela)
        got_patch_relocs(c, info, jmprel, pltsz / sizeof *jmprel, symtab, strtab, strsz);
    return 0;
}

int
ht_got_patch(const ht_got_sym_t *syms, size_t n)
{
    got_ctx_t c = {.syms = syms, .nsyms = n, .patched = 0, .self = (uintptr_t)&ht_got_patch};
    dl_iterate_phdr(got_object_cb, &c);
    return c.patched;
}

#else

int
ht_got_patch(const ht_got_sym_t *syms, size_t n)
{
    (void)syms;
    (void)n;
    return 0;
}

#endif
