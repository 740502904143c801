/*
 * analyzer/elf.c -- ELF notes, debuglink and function symbols, read with
 * elfutils' libelf. See elf.h for the contract.
 */
#include "analyzer/elf.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* One kept function symbol. end is precomputed (size, or next symbol /
 * section end for size-0 symbols); maxend is the running maximum of end
 * over [0..i], which bounds the backward walk for nested symbols. */
typedef struct elf_sym_s {
    uint64_t addr, end, maxend;
    uint32_t name;  /* offset into names */
    uint16_t rank;  /* lower is preferred among aliases */
    uint16_t sized; /* st_size was > 0 */
} elf_sym_t;

struct ht_elf_s {
    uint8_t build_id[64];
    size_t build_id_len;
    char *debuglink;
    uint32_t debuglink_crc;
    int has_dwarf;
    int syms_kind;
    elf_sym_t *syms;
    size_t nsyms;
    char *names; /* NUL-separated names */
    size_t names_len, names_cap;
};

/* Sanity caps against hostile files: a real symbol table has at most a
 * few million entries. */
#define ELF_MAX_SYMS (16u << 20)
#define ELF_MAX_NAME 65536

int
ht_elf_open_regular(const char *path, uint64_t *size)
{
    // O_NONBLOCK: opening a FIFO named by a hostile trace must not hang us;
    // it is cleared again below for regular files, where it means nothing.
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return -EINVAL;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    if (size)
        *size = (uint64_t)st.st_size;
    return fd;
}

static int
elf_names_add(ht_elf_t *e, const char *s, uint32_t *off)
{
    size_t n = strnlen(s, ELF_MAX_NAME);
    if (n == 0 || n >= ELF_MAX_NAME)
        return -EBADMSG;
    if (e->names_len + n + 1 > UINT32_MAX)
        return -EFBIG;
    if (e->names_len + n + 1 > e->names_cap) {
        size_t cap = e->names_cap ? e->names_cap * 2 : 4096;
        while (cap < e->names_len + n + 1)
            cap *= 2;
        char *p = realloc(e->names, cap);
        if (!p)
            return -ENOMEM;
        e->names = p;
        e->names_cap = cap;
    }
    memcpy(e->names + e->names_len, s, n);
    e->names[e->names_len + n] = '\0';
    *off = (uint32_t)e->names_len;
    e->names_len += n + 1;
    return 0;
}

/* Look for NT_GNU_BUILD_ID in one block of note data. */
static int
elf_scan_notes(ht_elf_t *e, Elf_Data *d)
{
    if (!d || !d->d_buf)
        return 0;
    size_t off = 0, next;
    GElf_Nhdr nh;
    size_t name_off, desc_off;
    while (off < d->d_size && (next = gelf_getnote(d, off, &nh, &name_off, &desc_off)) > 0) {
        if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
            memcmp((const char *)d->d_buf + name_off, "GNU", 4) == 0 && nh.n_descsz > 0 &&
            nh.n_descsz <= sizeof e->build_id) {
            memcpy(e->build_id, (const char *)d->d_buf + desc_off, nh.n_descsz);
            e->build_id_len = nh.n_descsz;
            return 1;
        }
        off = next;
    }
    return 0;
}

static void
elf_read_debuglink(ht_elf_t *e, Elf *elf, Elf_Scn *scn)
{
    Elf_Data *d = elf_getdata(scn, NULL);
    if (!d || !d->d_buf || d->d_size < 8)
        return;
    const char *p = d->d_buf;
    size_t n = strnlen(p, d->d_size);
    if (n == 0 || n >= d->d_size || n > 255)
        return;
    // The name is a bare file name looked up in fixed directories: a '/'
    // or a dot-dot would let a hostile file steer us anywhere.
    if (memchr(p, '/', n) || strcmp(p, ".") == 0 || strcmp(p, "..") == 0)
        return;
    size_t crc_off = (n + 1 + 3) & ~(size_t)3;
    if (crc_off + 4 > d->d_size)
        return;
    const unsigned char *c = (const unsigned char *)p + crc_off;
    const char *ident = elf_getident(elf, NULL);
    uint32_t crc;
    if (ident && ident[EI_DATA] == ELFDATA2MSB)
        crc = (uint32_t)c[0] << 24 | (uint32_t)c[1] << 16 | (uint32_t)c[2] << 8 | c[3];
    else
        crc = (uint32_t)c[3] << 24 | (uint32_t)c[2] << 16 | (uint32_t)c[1] << 8 | c[0];
    e->debuglink = strndup(p, n);
    e->debuglink_crc = crc;
}

static int
elf_sym_cmp(const void *a, const void *b)
{
    const elf_sym_t *x = a, *y = b;
    if (x->addr != y->addr)
        return x->addr < y->addr ? -1 : 1;
    if (x->sized != y->sized)
        return x->sized ? -1 : 1;
    if (x->rank != y->rank)
        return x->rank < y->rank ? -1 : 1;
    return x->name < y->name ? -1 : x->name > y->name;
}

/* Rank an alias: fewer leading underscores first ("calloc" before the
 * GLOBAL "__libc_calloc", "pipe2" before "__GI_pipe2": the public name is
 * the one people know), then global before weak before local, then
 * shorter. */
static uint16_t
elf_sym_rank(int bind, const char *name)
{
    unsigned us = 0;
    while (name[us] == '_' && us < 15)
        us++;
    unsigned b = bind == STB_GLOBAL ? 0 : bind == STB_WEAK ? 1 : 2;
    size_t len = strlen(name);
    return (uint16_t)(us << 12 | b << 8 | (len > 255 ? 255 : len));
}

/* Read function symbols of one symbol table section. */
static int
elf_read_syms(ht_elf_t *e, Elf *elf, Elf_Scn *scn, const GElf_Shdr *sh, const uint64_t *sec_end,
              size_t nsecs)
{
    Elf_Data *d = elf_getdata(scn, NULL);
    if (!d || !d->d_buf || sh->sh_entsize == 0)
        return 0;
    size_t n = d->d_size / sh->sh_entsize;
    if (n > ELF_MAX_SYMS)
        n = ELF_MAX_SYMS;
    GElf_Ehdr eh;
    int arm = gelf_getehdr(elf, &eh) && eh.e_machine == EM_ARM;
    elf_sym_t *syms = calloc(n ? n : 1, sizeof *syms);
    if (!syms)
        return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        GElf_Sym s;
        if (!gelf_getsym(d, (int)i, &s))
            continue;
        int type = GELF_ST_TYPE(s.st_info);
        if (type != STT_FUNC && type != STT_GNU_IFUNC)
            continue;
        if (s.st_shndx == SHN_UNDEF || s.st_shndx == SHN_ABS || s.st_shndx == SHN_COMMON)
            continue;
        const char *name = elf_strptr(elf, sh->sh_link, s.st_name);
        if (!name || !*name)
            continue;
        uint64_t addr = s.st_value;
        if (arm)
            addr &= ~(uint64_t)1; // Thumb bit
        uint32_t off;
        int rc = elf_names_add(e, name, &off);
        if (rc == -ENOMEM) {
            free(syms);
            return rc;
        }
        if (rc < 0)
            continue;
        elf_sym_t *y = &syms[k++];
        y->addr = addr;
        y->sized = s.st_size > 0;
        // Saturate: a hostile st_size must not wrap around.
        y->end = s.st_size > UINT64_MAX - addr ? UINT64_MAX : addr + s.st_size;
        if (!y->sized)
            y->end = (s.st_shndx < nsecs && sec_end[s.st_shndx] > addr) ? sec_end[s.st_shndx]
                                                                        : UINT64_MAX;
        y->rank = elf_sym_rank(GELF_ST_BIND(s.st_info), name);
        y->name = off;
    }
    if (k == 0) {
        free(syms);
        return 0;
    }
    qsort(syms, k, sizeof *syms, elf_sym_cmp);
    // Collapse aliases: the first of each address is the preferred name;
    // it covers the largest extent any alias claims.
    size_t w = 0;
    for (size_t i = 0; i < k; i++) {
        if (w > 0 && syms[w - 1].addr == syms[i].addr) {
            if (syms[i].sized && syms[i].end > syms[w - 1].end)
                syms[w - 1].end = syms[i].end;
            continue;
        }
        syms[w++] = syms[i];
    }
    // A size-0 symbol ends where the next one starts (asm functions).
    for (size_t i = 0; i < w; i++) {
        if (!syms[i].sized && i + 1 < w && syms[i + 1].addr < syms[i].end)
            syms[i].end = syms[i + 1].addr;
        syms[i].maxend =
            i > 0 && syms[i - 1].maxend > syms[i].end ? syms[i - 1].maxend : syms[i].end;
    }
    free(e->syms);
    e->syms = syms;
    e->nsyms = w;
    return 0;
}

static int
elf_load(ht_elf_t *e, Elf *elf)
{
    if (elf_kind(elf) != ELF_K_ELF)
        return -EBADMSG;
    GElf_Ehdr eh;
    if (!gelf_getehdr(elf, &eh))
        return -EBADMSG;
    size_t shstrndx = 0, nsecs = 0;
    int have_shstr = elf_getshdrstrndx(elf, &shstrndx) == 0;
    if (elf_getshdrnum(elf, &nsecs) != 0)
        nsecs = 0;
    if (nsecs > 65536 * 4)
        return -EBADMSG;

    uint64_t *sec_end = calloc(nsecs ? nsecs : 1, sizeof *sec_end);
    if (!sec_end)
        return -ENOMEM;
    Elf_Scn *symtab = NULL, *dynsym = NULL;
    GElf_Shdr symtab_sh, dynsym_sh;
    int rc = 0;
    for (Elf_Scn *scn = elf_nextscn(elf, NULL); scn; scn = elf_nextscn(elf, scn)) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh))
            continue;
        size_t idx = elf_ndxscn(scn);
        if (idx < nsecs)
            sec_end[idx] =
                sh.sh_size > UINT64_MAX - sh.sh_addr ? UINT64_MAX : sh.sh_addr + sh.sh_size;
        const char *name = have_shstr ? elf_strptr(elf, shstrndx, sh.sh_name) : NULL;
        if (sh.sh_type == SHT_SYMTAB && !symtab) {
            symtab = scn;
            symtab_sh = sh;
        } else if (sh.sh_type == SHT_DYNSYM && !dynsym) {
            dynsym = scn;
            dynsym_sh = sh;
        } else if (sh.sh_type == SHT_NOTE && !e->build_id_len) {
            elf_scan_notes(e, elf_getdata(scn, NULL));
        }
        if (!name)
            continue;
        if ((strcmp(name, ".debug_info") == 0 || strcmp(name, ".zdebug_info") == 0) &&
            sh.sh_type != SHT_NOBITS && sh.sh_size > 0)
            e->has_dwarf = 1;
        else if (strcmp(name, ".gnu_debuglink") == 0 && !e->debuglink && sh.sh_type != SHT_NOBITS)
            elf_read_debuglink(e, elf, scn);
    }
    // sstrip-ed files have no section headers: the note is still reachable
    // through PT_NOTE.
    size_t nph = 0;
    if (!e->build_id_len && elf_getphdrnum(elf, &nph) == 0) {
        for (size_t i = 0; i < nph && i < 4096 && !e->build_id_len; i++) {
            GElf_Phdr ph;
            if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_NOTE)
                continue;
            if (ph.p_filesz == 0 || ph.p_filesz > (1u << 20))
                continue;
            elf_scan_notes(
                e, elf_getdata_rawchunk(elf, (int64_t)ph.p_offset, ph.p_filesz, ELF_T_NHDR));
        }
    }
    if (symtab) {
        rc = elf_read_syms(e, elf, symtab, &symtab_sh, sec_end, nsecs);
        if (rc == 0 && e->nsyms)
            e->syms_kind = HT_ELF_SYMS_SYMTAB;
    }
    if (rc == 0 && !e->nsyms && dynsym) {
        rc = elf_read_syms(e, elf, dynsym, &dynsym_sh, sec_end, nsecs);
        if (rc == 0 && e->nsyms)
            e->syms_kind = HT_ELF_SYMS_DYNSYM;
    }
    free(sec_end);
    return rc;
}

int
ht_elf_open(const char *path, ht_elf_t **out)
{
    *out = NULL;
    if (!path || !*path)
        return -EINVAL;
    if (elf_version(EV_CURRENT) == EV_NONE)
        return -ENOSYS;
    int fd = ht_elf_open_regular(path, NULL);
    if (fd < 0)
        return fd;
    ht_elf_t *e = calloc(1, sizeof *e);
    if (!e) {
        close(fd);
        return -ENOMEM;
    }
    // ELF_C_READ, not ELF_C_READ_MMAP: a mapping of a file that shrinks
    // while we read it turns into SIGBUS.
    Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
    int rc = elf ? elf_load(e, elf) : -EBADMSG;
    if (elf)
        elf_end(elf);
    close(fd);
    if (rc < 0) {
        ht_elf_close(e);
        return rc;
    }
    *out = e;
    return 0;
}

void
ht_elf_close(ht_elf_t *e)
{
    if (!e)
        return;
    free(e->debuglink);
    free(e->syms);
    free(e->names);
    free(e);
}

const uint8_t *
ht_elf_build_id(const ht_elf_t *e, size_t *len)
{
    *len = e->build_id_len;
    return e->build_id_len ? e->build_id : NULL;
}

const char *
ht_elf_debuglink(const ht_elf_t *e, uint32_t *crc)
{
    if (crc)
        *crc = e->debuglink_crc;
    return e->debuglink;
}

int
ht_elf_has_dwarf(const ht_elf_t *e)
{
    return e->has_dwarf;
}

int
ht_elf_syms_kind(const ht_elf_t *e)
{
    return e->syms_kind;
}

size_t
ht_elf_syms_count(const ht_elf_t *e)
{
    return e->nsyms;
}

const char *
ht_elf_sym_lookup(const ht_elf_t *e, uint64_t vaddr, uint64_t *start)
{
    size_t lo = 0, hi = e->nsyms;
    while (lo < hi) { // first symbol with addr > vaddr
        size_t mid = lo + (hi - lo) / 2;
        if (e->syms[mid].addr <= vaddr)
            lo = mid + 1;
        else
            hi = mid;
    }
    // Walk back over symbols that start at or before vaddr while some
    // symbol at or before them still reaches past vaddr (maxend), so a
    // function nested in a bigger one is found first. Bounded: a hostile
    // table must not make each lookup linear.
    for (size_t i = lo, steps = 0; i > 0 && steps < 256; i--, steps++) {
        const elf_sym_t *y = &e->syms[i - 1];
        if (y->maxend <= vaddr)
            break;
        if (vaddr < y->end) {
            if (start)
                *start = y->addr;
            return e->names + y->name;
        }
    }
    return NULL;
}

int
ht_elf_sym_find(const ht_elf_t *e, const char *name, uint64_t *vaddr)
{
    for (size_t i = 0; i < e->nsyms; i++)
        if (strcmp(e->names + e->syms[i].name, name) == 0) {
            *vaddr = e->syms[i].addr;
            return 0;
        }
    return -ENOENT;
}

int
ht_elf_file_crc32(const char *path, uint32_t *crc)
{
    int fd = ht_elf_open_regular(path, NULL);
    if (fd < 0)
        return fd;
    unsigned char *buf = malloc(1 << 16);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    uLong c = crc32(0L, Z_NULL, 0);
    int rc = 0;
    for (;;) {
        ssize_t n = read(fd, buf, 1 << 16);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        if (n == 0)
            break;
        c = crc32(c, buf, (uInt)n);
    }
    free(buf);
    close(fd);
    if (rc == 0)
        *crc = (uint32_t)c;
    return rc;
}
