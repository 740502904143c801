/*
 * analyzer/dwarf.c -- file:line and inline chains from DWARF 2-5 with
 * libdwarf 20210528. See dwarf.h for the contract.
 *
 * Every libdwarf call gets a Dwarf_Error pointer: with neither an error
 * pointer nor a handler, libdwarf calls abort(). The no-op handler given
 * to dwarf_init_b is a second net for any internal path that reports
 * without one.
 */
#include "analyzer/dwarf.h"

#include "analyzer/elf.h"

#include <errno.h>
#include <libdwarf/dwarf.h>
#include <libdwarf/libdwarf.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Limits against hostile input: real programs stay far below them. */
#define DW_MAX_DEPTH 128   /* DIE nesting we follow */
#define DW_MAX_RANGES 4096 /* ranges of one DIE */
#define DW_MAX_CUS (1u << 20)
#define DW_MAX_NAME_HOPS 8 /* abstract_origin / specification chain */
#define DW_MAX_CHAIN 64    /* inline nesting of one address */

/* An address interval with a payload, kept sorted by lo; maxhi is the
 * running maximum of hi, which bounds the backward walk when intervals
 * overlap (functions at address 0 discarded by the linker, nested
 * ranges). */
typedef struct dw_ival_s {
    uint64_t lo, hi, maxhi;
    uint32_t a, b; /* payload: (line, file) for rows; (scope, -) or (cu, -) */
} dw_ival_t;

typedef struct dw_ivals_s {
    dw_ival_t *v;
    size_t n, cap;
} dw_ivals_t;

/* A function or an inlined call inside one CU: a tree stored flat. */
typedef struct dw_scope_s {
    const char *name;
    uint32_t rng, nrng;     /* into cu->ranges */
    int32_t child, sibling; /* -1: none */
    uint32_t call_file, call_line;
} dw_scope_t;

typedef struct dw_range_s {
    uint64_t lo, hi;
} dw_range_t;

typedef struct dw_cu_s {
    Dwarf_Off off; /* CU DIE offset in .debug_info */
    uint64_t base; /* CU base address (low_pc), for DWARF 2-4 ranges */
    uint16_t version;
    int8_t state;       /* 0: not read, 1: read, -1: damaged (no info) */
    uint8_t had_ranges; /* the CU DIE gave address ranges */
    dw_ivals_t rows;    /* line table: (line, file number) */
    dw_ivals_t funcs;   /* out-of-line functions: (scope index) */
    dw_scope_t *scopes;
    size_t nscopes, scopes_cap;
    dw_range_t *ranges;
    size_t nranges, ranges_cap;
    char **files; /* dwarf_srcfiles() */
    Dwarf_Signed nfiles;
    Dwarf_Signed file_base; /* file number of files[0] */
} dw_cu_t;

/* Name cache: DIE offset of an abstract origin -> its name. */
typedef struct dw_name_s {
    Dwarf_Off off; /* 0: empty slot (offset 0 is a CU header, never a DIE) */
    const char *name;
} dw_name_t;

/* The libdwarf side, which lives only in the worker process. */
typedef struct dw_src_s {
    Dwarf_Debug dbg;
    int fd;
    int indexed;
    dw_cu_t *cus;
    size_t ncus;
    dw_ivals_t cu_index; /* (cu index) */
    dw_name_t *names;
    size_t names_cap, names_n;
} dw_src_t;

static void
dw_handler_cb(Dwarf_Error err, Dwarf_Ptr arg)
{
    (void)err;
    (void)arg;
}

// Release an error returned by a failed call; errors mean "no info".
#define DW_DROP(d, err)                                                                            \
    do {                                                                                           \
        if (err) {                                                                                 \
            dwarf_dealloc_error((d)->dbg, err);                                                    \
            err = NULL;                                                                            \
        }                                                                                          \
    } while (0)

/* ---- interval sets ---- */

static int
dw_ivals_push(dw_ivals_t *s, uint64_t lo, uint64_t hi, uint32_t a, uint32_t b)
{
    if (hi <= lo)
        return 0;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        dw_ival_t *v = realloc(s->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = (dw_ival_t){.lo = lo, .hi = hi, .a = a, .b = b};
    return 0;
}

static int
dw_ival_cmp(const void *x, const void *y)
{
    const dw_ival_t *a = x, *b = y;
    if (a->lo != b->lo)
        return a->lo < b->lo ? -1 : 1;
    // Among equal starts the shorter interval sorts last, so the backward
    // walk meets the most specific one first.
    if (a->hi != b->hi)
        return a->hi > b->hi ? -1 : 1;
    return 0;
}

static void
dw_ivals_seal(dw_ivals_t *s)
{
    if (s->n > 1)
        qsort(s->v, s->n, sizeof *s->v, dw_ival_cmp);
    for (size_t i = 0; i < s->n; i++)
        s->v[i].maxhi = i && s->v[i - 1].maxhi > s->v[i].hi ? s->v[i - 1].maxhi : s->v[i].hi;
}

/* The interval containing x with the greatest start, or NULL. */
static const dw_ival_t *
dw_ivals_find(const dw_ivals_t *s, uint64_t x)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->v[mid].lo <= x)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo, steps = 0; i > 0 && steps < 1024; i--, steps++) {
        const dw_ival_t *v = &s->v[i - 1];
        if (v->maxhi <= x)
            break;
        if (x < v->hi)
            return v;
    }
    return NULL;
}

static void
dw_ivals_free(dw_ivals_t *s)
{
    free(s->v);
    memset(s, 0, sizeof *s);
}

/* ---- small libdwarf helpers ---- */

static int
dw_attr_udata(dw_src_t *d, Dwarf_Die die, Dwarf_Half at, Dwarf_Unsigned *out)
{
    Dwarf_Error err = NULL;
    Dwarf_Attribute attr = NULL;
    int res = dwarf_attr(die, at, &attr, &err);
    if (res != DW_DLV_OK) {
        DW_DROP(d, err);
        return 0;
    }
    res = dwarf_formudata(attr, out, &err);
    DW_DROP(d, err);
    if (res != DW_DLV_OK) {
        // GCC writes DW_AT_call_file as DW_FORM_implicit_const (DWARF 5),
        // which this libdwarf reads only as signed data.
        Dwarf_Signed sv = 0;
        res = dwarf_formsdata(attr, &sv, &err);
        DW_DROP(d, err);
        if (res == DW_DLV_OK && sv < 0)
            res = DW_DLV_NO_ENTRY;
        *out = (Dwarf_Unsigned)sv;
    }
    dwarf_dealloc(d->dbg, attr, DW_DLA_ATTR);
    return res == DW_DLV_OK;
}

/* A string attribute. The pointer is into libdwarf's section data
 * (.debug_str, .debug_line_str or .debug_info), valid until dwarf_finish. */
static const char *
dw_attr_string(dw_src_t *d, Dwarf_Die die, Dwarf_Half at)
{
    Dwarf_Error err = NULL;
    Dwarf_Attribute attr = NULL;
    int res = dwarf_attr(die, at, &attr, &err);
    if (res != DW_DLV_OK) {
        DW_DROP(d, err);
        return NULL;
    }
    char *s = NULL;
    res = dwarf_formstring(attr, &s, &err);
    DW_DROP(d, err);
    dwarf_dealloc(d->dbg, attr, DW_DLA_ATTR);
    return res == DW_DLV_OK && s && *s ? s : NULL;
}

/* A reference attribute as a global .debug_info offset. */
static int
dw_attr_ref(dw_src_t *d, Dwarf_Die die, Dwarf_Half at, Dwarf_Off *out)
{
    Dwarf_Error err = NULL;
    Dwarf_Attribute attr = NULL;
    int res = dwarf_attr(die, at, &attr, &err);
    if (res != DW_DLV_OK) {
        DW_DROP(d, err);
        return 0;
    }
    res = dwarf_global_formref(attr, out, &err);
    DW_DROP(d, err);
    dwarf_dealloc(d->dbg, attr, DW_DLA_ATTR);
    return res == DW_DLV_OK && *out != 0;
}

static int
dw_range_push(dw_cu_t *cu, uint64_t lo, uint64_t hi)
{
    if (hi <= lo)
        return 0;
    if (cu->nranges == cu->ranges_cap) {
        size_t cap = cu->ranges_cap ? cu->ranges_cap * 2 : 64;
        dw_range_t *r = realloc(cu->ranges, cap * sizeof *r);
        if (!r)
            return -ENOMEM;
        cu->ranges = r;
        cu->ranges_cap = cap;
    }
    cu->ranges[cu->nranges++] = (dw_range_t){lo, hi};
    return 0;
}

/* DWARF 5 DW_AT_ranges (.debug_rnglists). */
static int
dw_ranges_rnglists(dw_src_t *d, dw_cu_t *cu, Dwarf_Attribute attr, Dwarf_Half form)
{
    Dwarf_Error err = NULL;
    Dwarf_Unsigned val = 0;
    int res;
    if (form == DW_FORM_rnglistx)
        res = dwarf_formudata(attr, &val, &err);
    else {
        Dwarf_Off off = 0;
        res = dwarf_global_formref(attr, &off, &err);
        if (res != DW_DLV_OK) {
            DW_DROP(d, err);
            res = dwarf_formudata(attr, &val, &err);
        } else
            val = off;
    }
    if (res != DW_DLV_OK) {
        DW_DROP(d, err);
        return 0;
    }
    Dwarf_Rnglists_Head head = NULL;
    Dwarf_Unsigned count = 0, goff = 0;
    res = dwarf_rnglists_get_rle_head(attr, form, val, &head, &count, &goff, &err);
    if (res != DW_DLV_OK) {
        DW_DROP(d, err);
        return 0;
    }
    int rc = 0;
    for (Dwarf_Unsigned i = 0; i < count && i < DW_MAX_RANGES && rc == 0; i++) {
        unsigned len = 0, code = 0;
        Dwarf_Unsigned raw1, raw2, c1 = 0, c2 = 0;
        Dwarf_Bool noaddr = 0;
        res = dwarf_get_rnglists_entry_fields_a(head, i, &len, &code, &raw1, &raw2, &noaddr, &c1,
                                                &c2, &err);
        if (res != DW_DLV_OK) {
            DW_DROP(d, err);
            break;
        }
        if (noaddr)
            continue;
        switch (code) {
        case DW_RLE_offset_pair:
        case DW_RLE_startx_endx:
        case DW_RLE_startx_length:
        case DW_RLE_start_end:
        case DW_RLE_start_length:
            rc = dw_range_push(cu, c1, c2);
            break;
        default:
            break;
        }
    }
    dwarf_dealloc_rnglists_head(head);
    return rc;
}

/* DWARF 2-4 DW_AT_ranges (.debug_ranges), relative to the CU base. */
static int
dw_ranges_legacy(dw_src_t *d, dw_cu_t *cu, Dwarf_Die die, Dwarf_Attribute attr)
{
    Dwarf_Error err = NULL;
    Dwarf_Off off = 0;
    int res = dwarf_global_formref(attr, &off, &err);
    if (res != DW_DLV_OK) {
        DW_DROP(d, err);
        Dwarf_Unsigned u = 0;
        res = dwarf_formudata(attr, &u, &err);
        if (res != DW_DLV_OK) {
            DW_DROP(d, err);
            return 0;
        }
        off = u;
    }
    Dwarf_Ranges *buf = NULL;
    Dwarf_Signed cnt = 0;
    Dwarf_Unsigned bytes = 0;
    Dwarf_Off real = 0;
    res = dwarf_get_ranges_b(d->dbg, off, die, &real, &buf, &cnt, &bytes, &err);
    if (res != DW_DLV_OK) {
        DW_DROP(d, err);
        return 0;
    }
    uint64_t base = cu->base;
    int rc = 0;
    for (Dwarf_Signed i = 0; i < cnt && i < DW_MAX_RANGES && rc == 0; i++) {
        if (buf[i].dwr_type == DW_RANGES_END)
            break;
        if (buf[i].dwr_type == DW_RANGES_ADDRESS_SELECTION)
            base = buf[i].dwr_addr2;
        else
            rc = dw_range_push(cu, base + buf[i].dwr_addr1, base + buf[i].dwr_addr2);
    }
    dwarf_ranges_dealloc(d->dbg, buf, cnt);
    return rc;
}

/* Append the address ranges of DIE to cu->ranges. Returns -ENOMEM or 0;
 * the number appended is the growth of cu->nranges. */
static int
dw_die_ranges(dw_src_t *d, dw_cu_t *cu, Dwarf_Die die)
{
    Dwarf_Error err = NULL;
    Dwarf_Addr lo = 0, hi = 0;
    Dwarf_Half form = 0;
    enum Dwarf_Form_Class cls = DW_FORM_CLASS_UNKNOWN;
    int have_lo = dwarf_lowpc(die, &lo, &err) == DW_DLV_OK;
    DW_DROP(d, err);
    if (have_lo && dwarf_highpc_b(die, &hi, &form, &cls, &err) == DW_DLV_OK) {
        if (cls == DW_FORM_CLASS_CONSTANT)
            hi = hi > UINT64_MAX - lo ? UINT64_MAX : lo + hi;
        return dw_range_push(cu, lo, hi);
    }
    DW_DROP(d, err);

    Dwarf_Attribute attr = NULL;
    int res = dwarf_attr(die, DW_AT_ranges, &attr, &err);
    if (res != DW_DLV_OK) {
        DW_DROP(d, err);
        return 0;
    }
    int rc = 0;
    if (dwarf_whatform(attr, &form, &err) == DW_DLV_OK) {
        if (form == DW_FORM_rnglistx || cu->version >= 5)
            rc = dw_ranges_rnglists(d, cu, attr, form);
        else
            rc = dw_ranges_legacy(d, cu, die, attr);
    }
    DW_DROP(d, err);
    dwarf_dealloc(d->dbg, attr, DW_DLA_ATTR);
    return rc;
}

/* ---- names ---- */

static const char *
dw_name_cache_get(dw_src_t *d, Dwarf_Off off, int *found)
{
    *found = 0;
    if (!d->names_cap)
        return NULL;
    size_t mask = d->names_cap - 1;
    for (size_t i = (off * 0x9E3779B97F4A7C15ull) >> 20 & mask;; i = (i + 1) & mask) {
        if (d->names[i].off == 0)
            return NULL;
        if (d->names[i].off == off) {
            *found = 1;
            return d->names[i].name;
        }
    }
}

static void
dw_name_cache_put(dw_src_t *d, Dwarf_Off off, const char *name)
{
    if ((d->names_n + 1) * 2 > d->names_cap) {
        size_t cap = d->names_cap ? d->names_cap * 2 : 256;
        dw_name_t *t = calloc(cap, sizeof *t);
        if (!t)
            return; // a cache miss next time, nothing worse
        for (size_t j = 0; j < d->names_cap; j++) {
            if (!d->names[j].off)
                continue;
            size_t i = (d->names[j].off * 0x9E3779B97F4A7C15ull) >> 20 & (cap - 1);
            while (t[i].off)
                i = (i + 1) & (cap - 1);
            t[i] = d->names[j];
        }
        free(d->names);
        d->names = t;
        d->names_cap = cap;
    }
    size_t mask = d->names_cap - 1;
    size_t i = (off * 0x9E3779B97F4A7C15ull) >> 20 & mask;
    while (d->names[i].off && d->names[i].off != off)
        i = (i + 1) & mask;
    if (!d->names[i].off)
        d->names_n++;
    d->names[i] = (dw_name_t){off, name};
}

/* A linkage name worth showing: a mangled C++ (or Rust) name, which
 * demangles to the qualified name with parameters. C functions get one
 * too when declared with an asm label (glibc's "__GI___libc_malloc" for
 * __libc_malloc); there DW_AT_name is the name people know. */
static int
dw_is_mangled(const char *s)
{
    return s && s[0] == '_' && (s[1] == 'Z' || s[1] == 'R');
}

/* The name of a function DIE, looked up along its abstract_origin /
 * specification chain: the first mangled linkage name, else the first
 * DW_AT_name, else any linkage name. */
static const char *
dw_die_name(dw_src_t *d, Dwarf_Die die)
{
    const char *plain = NULL, *linkage = NULL;
    Dwarf_Die cur = die, owned = NULL;
    for (int hop = 0; hop < DW_MAX_NAME_HOPS && cur; hop++) {
        const char *l = dw_attr_string(d, cur, DW_AT_linkage_name);
        if (!l)
            l = dw_attr_string(d, cur, DW_AT_MIPS_linkage_name);
        if (l && !linkage)
            linkage = l;
        if (dw_is_mangled(linkage))
            break;
        if (!plain)
            plain = dw_attr_string(d, cur, DW_AT_name);
        Dwarf_Off ref = 0;
        if (!dw_attr_ref(d, cur, DW_AT_abstract_origin, &ref) &&
            !dw_attr_ref(d, cur, DW_AT_specification, &ref))
            break;
        Dwarf_Error err = NULL;
        Dwarf_Die next = NULL;
        if (dwarf_offdie_b(d->dbg, ref, 1, &next, &err) != DW_DLV_OK) {
            DW_DROP(d, err);
            next = NULL;
        }
        if (owned)
            dwarf_dealloc_die(owned);
        owned = cur = next;
    }
    if (owned)
        dwarf_dealloc_die(owned);
    if (dw_is_mangled(linkage))
        return linkage;
    return plain ? plain : linkage;
}

/* Name of an inlined call: its abstract origin's, cached by origin. */
static const char *
dw_inline_name(dw_src_t *d, Dwarf_Die die)
{
    Dwarf_Off ref = 0;
    if (!dw_attr_ref(d, die, DW_AT_abstract_origin, &ref))
        return dw_die_name(d, die);
    int found;
    const char *name = dw_name_cache_get(d, ref, &found);
    if (found)
        return name;
    name = dw_die_name(d, die);
    dw_name_cache_put(d, ref, name);
    return name;
}

/* ---- one CU ---- */

static int
dw_scope_new(dw_cu_t *cu, const char *name, uint32_t rng, uint32_t nrng, int32_t *out)
{
    if (cu->nscopes >= INT32_MAX)
        return -EOVERFLOW;
    if (cu->nscopes == cu->scopes_cap) {
        size_t cap = cu->scopes_cap ? cu->scopes_cap * 2 : 64;
        dw_scope_t *s = realloc(cu->scopes, cap * sizeof *s);
        if (!s)
            return -ENOMEM;
        cu->scopes = s;
        cu->scopes_cap = cap;
    }
    cu->scopes[cu->nscopes] =
        (dw_scope_t){.name = name, .rng = rng, .nrng = nrng, .child = -1, .sibling = -1};
    *out = (int32_t)cu->nscopes++;
    return 0;
}

/* Walk the children of DIE. parent: the scope (function or inlined call)
 * that encloses them, -1 at CU or namespace level. last_child tracks the
 * parent's last child so siblings stay in DIE order. */
static int
dw_walk(dw_src_t *d, dw_cu_t *cu, Dwarf_Die die, int depth, int32_t parent)
{
    if (depth > DW_MAX_DEPTH)
        return 0;
    Dwarf_Error err = NULL;
    Dwarf_Die child = NULL;
    int res = dwarf_child(die, &child, &err);
    if (res != DW_DLV_OK) {
        DW_DROP(d, err);
        return 0;
    }
    int rc = 0;
    int32_t last = -1;
    if (parent >= 0)
        for (int32_t c = cu->scopes[parent].child; c >= 0; c = cu->scopes[c].sibling)
            last = c;
    while (child && rc == 0) {
        Dwarf_Half tag = 0;
        if (dwarf_tag(child, &tag, &err) != DW_DLV_OK) {
            DW_DROP(d, err);
            tag = 0;
        }
        switch (tag) {
        case DW_TAG_subprogram:
        case DW_TAG_inlined_subroutine: {
            int is_inline = tag == DW_TAG_inlined_subroutine;
            if (is_inline && parent < 0)
                break; // an inlined call outside any function: nothing to chain to
            size_t r0 = cu->nranges;
            rc = dw_die_ranges(d, cu, child);
            if (rc < 0 || cu->nranges == r0)
                break; // declarations and abstract instances have no code
            const char *name = is_inline ? dw_inline_name(d, child) : dw_die_name(d, child);
            int32_t s;
            rc = dw_scope_new(cu, name, (uint32_t)r0, (uint32_t)(cu->nranges - r0), &s);
            if (rc < 0)
                break;
            if (is_inline) {
                Dwarf_Unsigned v = 0;
                if (dw_attr_udata(d, child, DW_AT_call_file, &v) && v <= UINT32_MAX)
                    cu->scopes[s].call_file = (uint32_t)v;
                if (dw_attr_udata(d, child, DW_AT_call_line, &v) && v <= UINT32_MAX)
                    cu->scopes[s].call_line = (uint32_t)v;
                if (last >= 0)
                    cu->scopes[last].sibling = s;
                else
                    cu->scopes[parent].child = s;
                last = s;
            } else {
                for (size_t i = r0; i < cu->nranges && rc == 0; i++)
                    rc = dw_ivals_push(&cu->funcs, cu->ranges[i].lo, cu->ranges[i].hi, (uint32_t)s,
                                       0);
            }
            if (rc == 0)
                rc = dw_walk(d, cu, child, depth + 1, s);
            break;
        }
        case DW_TAG_lexical_block:
        case DW_TAG_try_block:
        case DW_TAG_catch_block:
            // Blocks are transparent: inlined calls inside them belong to
            // the enclosing function.
            if (parent >= 0) {
                rc = dw_walk(d, cu, child, depth + 1, parent);
                last = -1;
                for (int32_t c = cu->scopes[parent].child; c >= 0; c = cu->scopes[c].sibling)
                    last = c;
            }
            break;
        case DW_TAG_namespace:
        case DW_TAG_class_type:
        case DW_TAG_structure_type:
        case DW_TAG_union_type:
        case DW_TAG_module:
            // Out-of-line member functions may be defined inside these
            // (clang does it); they start new top-level functions.
            rc = dw_walk(d, cu, child, depth + 1, -1);
            break;
        default:
            break;
        }
        Dwarf_Die next = NULL;
        res = dwarf_siblingof_b(d->dbg, child, 1, &next, &err);
        dwarf_dealloc_die(child);
        if (res != DW_DLV_OK) {
            DW_DROP(d, err);
            next = NULL;
        }
        child = next;
    }
    if (child)
        dwarf_dealloc_die(child);
    return rc;
}

/* Read the line table of the CU into cu->rows and its file names. */
static int
dw_cu_lines(dw_src_t *d, dw_cu_t *cu, Dwarf_Die cu_die)
{
    Dwarf_Error err = NULL;
    Dwarf_Unsigned version = 0;
    Dwarf_Small table_count = 0;
    Dwarf_Line_Context ctx = NULL;
    if (dwarf_srclines_b(cu_die, &version, &table_count, &ctx, &err) != DW_DLV_OK) {
        DW_DROP(d, err);
        return 0;
    }
    Dwarf_Signed base = 1, count = 0, end = 0;
    if (dwarf_srclines_files_indexes(ctx, &base, &count, &end, &err) != DW_DLV_OK) {
        DW_DROP(d, err);
        base = version >= 5 ? 0 : 1;
    }
    cu->file_base = base;
    if (dwarf_srcfiles(cu_die, &cu->files, &cu->nfiles, &err) != DW_DLV_OK) {
        DW_DROP(d, err);
        cu->files = NULL;
        cu->nfiles = 0;
    }

    Dwarf_Line *lines = NULL;
    Dwarf_Signed n = 0;
    int rc = 0;
    if (dwarf_srclines_from_linecontext(ctx, &lines, &n, &err) != DW_DLV_OK) {
        DW_DROP(d, err);
        n = 0;
    }
    // Row i covers [addr_i, addr_i+1) when both are in one sequence. Of
    // several rows at one address the last one wins, as in addr2line.
    int have_prev = 0;
    uint64_t paddr = 0;
    uint32_t pline = 0, pfile = 0;
    for (Dwarf_Signed i = 0; i < n && rc == 0; i++) {
        Dwarf_Addr addr = 0;
        Dwarf_Unsigned lineno = 0, fileno = 0;
        Dwarf_Bool endseq = 0;
        if (dwarf_lineaddr(lines[i], &addr, &err) != DW_DLV_OK ||
            dwarf_lineendsequence(lines[i], &endseq, &err) != DW_DLV_OK) {
            DW_DROP(d, err);
            have_prev = 0;
            continue;
        }
        if (dwarf_lineno(lines[i], &lineno, &err) != DW_DLV_OK) {
            DW_DROP(d, err);
            lineno = 0;
        }
        if (dwarf_line_srcfileno(lines[i], &fileno, &err) != DW_DLV_OK) {
            DW_DROP(d, err);
            fileno = UINT32_MAX;
        }
        if (have_prev && addr > paddr)
            rc = dw_ivals_push(&cu->rows, paddr, addr, pline, pfile);
        if (endseq) {
            have_prev = 0;
            continue;
        }
        // A row going backwards inside a sequence is damage; the interval
        // it would close was dropped above (addr > paddr failed), and the
        // row starts a new run.
        have_prev = 1;
        paddr = addr;
        pline = lineno > UINT32_MAX ? 0 : (uint32_t)lineno;
        pfile = fileno > UINT32_MAX ? UINT32_MAX : (uint32_t)fileno;
    }
    dwarf_srclines_dealloc_b(ctx);
    dw_ivals_seal(&cu->rows);
    return rc;
}

static const char *
dw_cu_file(const dw_cu_t *cu, uint32_t fileno)
{
    if (fileno == UINT32_MAX || !cu->files)
        return NULL;
    int64_t i = (int64_t)fileno - cu->file_base;
    if (i < 0 || i >= cu->nfiles)
        return NULL;
    const char *f = cu->files[i];
    return f && *f ? f : NULL;
}

static void
dw_cu_parse(dw_src_t *d, dw_cu_t *cu)
{
    Dwarf_Error err = NULL;
    Dwarf_Die cu_die = NULL;
    cu->state = -1;
    if (dwarf_offdie_b(d->dbg, cu->off, 1, &cu_die, &err) != DW_DLV_OK) {
        DW_DROP(d, err);
        return;
    }
    int rc = dw_cu_lines(d, cu, cu_die);
    if (rc == 0)
        rc = dw_walk(d, cu, cu_die, 0, -1);
    dwarf_dealloc_die(cu_die);
    dw_ivals_seal(&cu->funcs);
    // Out of memory half-way: whatever was read is still right, so keep
    // it; the CU is simply less complete.
    cu->state = 1;
}

/* ---- the CU index ---- */

static void
dw_index_aranges(dw_src_t *d)
{
    Dwarf_Error err = NULL;
    Dwarf_Arange *ar = NULL;
    Dwarf_Signed n = 0;
    if (dwarf_get_aranges(d->dbg, &ar, &n, &err) != DW_DLV_OK) {
        DW_DROP(d, err);
        return;
    }
    // Only CUs that have no ranges of their own are completed from
    // .debug_aranges: the CU DIE is the more precise source.
    for (Dwarf_Signed i = 0; i < n; i++) {
        Dwarf_Unsigned seg = 0, segsz = 0, len = 0;
        Dwarf_Addr start = 0;
        Dwarf_Off cuoff = 0;
        if (dwarf_get_arange_info_b(ar[i], &seg, &segsz, &start, &len, &cuoff, &err) == DW_DLV_OK) {
            size_t lo = 0, hi = d->ncus;
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (d->cus[mid].off < cuoff)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            if (lo < d->ncus && d->cus[lo].off == cuoff && !d->cus[lo].had_ranges && len > 0)
                dw_ivals_push(&d->cu_index, start,
                              len > UINT64_MAX - start ? UINT64_MAX : start + len, (uint32_t)lo, 0);
        } else
            DW_DROP(d, err);
        dwarf_dealloc(d->dbg, ar[i], DW_DLA_ARANGE);
    }
    dwarf_dealloc(d->dbg, ar, DW_DLA_LIST);
}

static void
dw_index(dw_src_t *d)
{
    d->indexed = 1;
    size_t cap = 0;
    for (;;) {
        Dwarf_Error err = NULL;
        Dwarf_Unsigned hdr_len = 0, typeoff = 0, next = 0;
        Dwarf_Half version = 0, addr_size = 0, len_size = 0, ext_size = 0, cu_type = 0;
        Dwarf_Off abbrev = 0;
        Dwarf_Sig8 sig;
        int res =
            dwarf_next_cu_header_d(d->dbg, 1, &hdr_len, &version, &abbrev, &addr_size, &len_size,
                                   &ext_size, &sig, &typeoff, &next, &cu_type, &err);
        if (res != DW_DLV_OK) {
            // DW_DLV_ERROR: the rest of .debug_info cannot be walked;
            // what was indexed so far stays usable.
            DW_DROP(d, err);
            break;
        }
        Dwarf_Die cu_die = NULL;
        if (dwarf_siblingof_b(d->dbg, NULL, 1, &cu_die, &err) != DW_DLV_OK) {
            DW_DROP(d, err);
            continue;
        }
        Dwarf_Half tag = 0;
        Dwarf_Off off = 0;
        if (dwarf_tag(cu_die, &tag, &err) != DW_DLV_OK ||
            dwarf_dieoffset(cu_die, &off, &err) != DW_DLV_OK || tag != DW_TAG_compile_unit ||
            d->ncus >= DW_MAX_CUS) {
            DW_DROP(d, err);
            dwarf_dealloc_die(cu_die);
            continue;
        }
        if (d->ncus == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            dw_cu_t *c = realloc(d->cus, ncap * sizeof *c);
            if (!c) {
                dwarf_dealloc_die(cu_die);
                break;
            }
            d->cus = c;
            cap = ncap;
        }
        dw_cu_t *cu = &d->cus[d->ncus];
        memset(cu, 0, sizeof *cu);
        cu->off = off;
        cu->version = version;
        // The base of DWARF 2-4 range lists is the CU's low_pc: read it
        // before the ranges.
        Dwarf_Addr lowpc = 0;
        if (dwarf_lowpc(cu_die, &lowpc, &err) == DW_DLV_OK)
            cu->base = lowpc;
        DW_DROP(d, err);
        dw_die_ranges(d, cu, cu_die);
        for (size_t i = 0; i < cu->nranges; i++)
            dw_ivals_push(&d->cu_index, cu->ranges[i].lo, cu->ranges[i].hi, (uint32_t)d->ncus, 0);
        cu->had_ranges = cu->nranges > 0;
        // The pool is reused for the CU's functions when it is parsed.
        cu->nranges = 0;
        d->ncus++;
        dwarf_dealloc_die(cu_die);
    }
    dw_index_aranges(d);
    dw_ivals_seal(&d->cu_index);
}

/* ---- the worker: libdwarf in a process of its own ----
 *
 * libdwarf 20210528 is not safe on hostile input (a damaged
 * .debug_rnglists makes dwarf_load_rnglists free twice; the unit tests'
 * fuzzer finds it in seconds), and traces name files we cannot trust. So
 * every libdwarf call runs in a forked worker, one per module, which
 * answers two requests over a socket: the CU index, and the flattened
 * tables of one CU. A worker that dies or hangs costs that CU (or, after
 * repeated failures, the module) its DWARF, never the analyzer.
 *
 * Wire format, host byte order (the two ends are one binary):
 *   request:  u8 op ('I' index, 'C' cu), u64 arg (cu number)
 *   reply:    u64 length, then length bytes
 *   'I' reply: u64 ncus, u64 n, n x {u64 lo, u64 hi, u64 cu}
 *   'C' reply: u64 nrows, nfuncs, nscopes, nranges, nblob;
 *              nrows  x {u64 lo, hi; u32 line, file}
 *              nfuncs x {u64 lo, hi; u32 scope, 0}
 *              nscopes x dw_wscope_t
 *              nranges x {u64 lo, hi}
 *              nblob bytes of NUL-terminated strings (file, name offsets)
 */

#define DW_NONE UINT32_MAX
#define DW_REPLY_MAX (1ull << 31) /* largest reply accepted */
#define DW_TIMEOUT_MS 60000       /* a CU that takes longer is given up */
#define DW_MAX_FAILURES 3         /* worker deaths before the module's DWARF is dropped */

typedef struct dw_wscope_s {
    uint32_t name, call_file, call_line, rng, nrng;
    int32_t child, sibling;
    uint32_t pad;
} dw_wscope_t;

typedef struct dw_buf_s {
    unsigned char *p;
    size_t n, cap;
    int oom;
} dw_buf_t;

static void
dw_buf_put(dw_buf_t *b, const void *v, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n)
            cap *= 2;
        unsigned char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, v, n);
    b->n += n;
}

static void
dw_buf_u64(dw_buf_t *b, uint64_t v)
{
    dw_buf_put(b, &v, sizeof v);
}

/* String blob of one CU with dedup by pointer (names and file names are
 * libdwarf pointers, shared by many scopes and rows). */
typedef struct dw_strs_s {
    dw_buf_t blob;
    const char **keys;
    uint32_t *offs;
    size_t cap, n;
} dw_strs_t;

static uint32_t
dw_strs_add(dw_strs_t *t, const char *s)
{
    if (!s)
        return DW_NONE;
    if ((t->n + 1) * 2 > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        const char **k = calloc(cap, sizeof *k);
        uint32_t *o = calloc(cap, sizeof *o);
        if (!k || !o) {
            free(k);
            free(o);
            return DW_NONE;
        }
        for (size_t i = 0; i < t->cap; i++) {
            if (!t->keys[i])
                continue;
            size_t j = ((uintptr_t)t->keys[i] * 0x9E3779B97F4A7C15ull >> 17) & (cap - 1);
            while (k[j])
                j = (j + 1) & (cap - 1);
            k[j] = t->keys[i];
            o[j] = t->offs[i];
        }
        free(t->keys);
        free(t->offs);
        t->keys = k;
        t->offs = o;
        t->cap = cap;
    }
    size_t mask = t->cap - 1;
    size_t j = ((uintptr_t)s * 0x9E3779B97F4A7C15ull >> 17) & mask;
    for (; t->keys[j]; j = (j + 1) & mask)
        if (t->keys[j] == s)
            return t->offs[j];
    if (t->blob.n > UINT32_MAX / 2)
        return DW_NONE;
    uint32_t off = (uint32_t)t->blob.n;
    dw_buf_put(&t->blob, s, strnlen(s, 65536));
    dw_buf_put(&t->blob, "", 1);
    t->keys[j] = s;
    t->offs[j] = off;
    t->n++;
    return off;
}

static void
dw_worker_cu(dw_src_t *d, size_t n, dw_buf_t *out)
{
    dw_cu_t *cu = &d->cus[n];
    if (cu->state == 0)
        dw_cu_parse(d, cu);
    dw_strs_t st = {0};
    dw_buf_t body = {0};
    size_t nrows = cu->state > 0 ? cu->rows.n : 0, nfuncs = cu->state > 0 ? cu->funcs.n : 0;
    size_t nscopes = cu->state > 0 ? cu->nscopes : 0, nranges = cu->state > 0 ? cu->nranges : 0;
    for (size_t i = 0; i < nrows; i++) {
        const dw_ival_t *v = &cu->rows.v[i];
        uint32_t rec[2] = {v->a, dw_strs_add(&st, dw_cu_file(cu, v->b))};
        dw_buf_u64(&body, v->lo);
        dw_buf_u64(&body, v->hi);
        dw_buf_put(&body, rec, sizeof rec);
    }
    for (size_t i = 0; i < nfuncs; i++) {
        const dw_ival_t *v = &cu->funcs.v[i];
        uint32_t rec[2] = {v->a, 0};
        dw_buf_u64(&body, v->lo);
        dw_buf_u64(&body, v->hi);
        dw_buf_put(&body, rec, sizeof rec);
    }
    for (size_t i = 0; i < nscopes; i++) {
        const dw_scope_t *sc = &cu->scopes[i];
        dw_wscope_t w = {.name = dw_strs_add(&st, sc->name),
                         .call_file = dw_strs_add(&st, dw_cu_file(cu, sc->call_file)),
                         .call_line = sc->call_line,
                         .rng = sc->rng,
                         .nrng = sc->nrng,
                         .child = sc->child,
                         .sibling = sc->sibling};
        dw_buf_put(&body, &w, sizeof w);
    }
    for (size_t i = 0; i < nranges; i++) {
        dw_buf_u64(&body, cu->ranges[i].lo);
        dw_buf_u64(&body, cu->ranges[i].hi);
    }
    if (body.oom || st.blob.oom)
        nrows = nfuncs = nscopes = nranges = body.n = st.blob.n = 0;
    dw_buf_u64(out, nrows);
    dw_buf_u64(out, nfuncs);
    dw_buf_u64(out, nscopes);
    dw_buf_u64(out, nranges);
    dw_buf_u64(out, st.blob.n);
    dw_buf_put(out, body.p, body.n);
    dw_buf_put(out, st.blob.p, st.blob.n);
    free(body.p);
    free(st.blob.p);
    free(st.keys);
    free(st.offs);
    // The parent keeps the tables; the worker need not.
    dw_ivals_free(&cu->rows);
    dw_ivals_free(&cu->funcs);
    free(cu->scopes);
    cu->scopes = NULL;
    cu->nscopes = cu->scopes_cap = 0;
    free(cu->ranges);
    cu->ranges = NULL;
    cu->nranges = cu->ranges_cap = 0;
}

static int
dw_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t k = send(fd, c, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Read exactly n bytes; timeout_ms < 0 waits forever. */
static int
dw_read_all(int fd, void *p, size_t n, int timeout_ms)
{
    char *c = p;
    while (n) {
        if (timeout_ms >= 0) {
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            int r = poll(&pfd, 1, timeout_ms);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                return -1;
        }
        ssize_t k = read(fd, c, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

static void
dw_worker_close_fds(int keep)
{
    // Keep nothing of the parent's but our socket: a copy of another
    // worker's socket would keep that worker alive after the parent exits.
#ifdef SYS_close_range
    if (keep > 3)
        syscall(SYS_close_range, 3u, (unsigned)keep - 1, 0u);
    if (syscall(SYS_close_range, (unsigned)keep + 1, ~0u, 0u) == 0)
        return;
#endif
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536)
        max = 65536;
    for (int fd = 3; fd < max; fd++)
        if (fd != keep)
            close(fd);
}

static _Noreturn void
dw_worker_main(const char *path, int sock)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1)
        _exit(0);
    dw_worker_close_fds(sock);
    signal(SIGPIPE, SIG_IGN);
    // A worker killed by a damaged file should say nothing and leave no
    // core: the parent reports the failure once, as a module warning.
    struct rlimit nocore = {0, 0};
    setrlimit(RLIMIT_CORE, &nocore);
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull >= 0) {
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(devnull, 2);
        if (devnull > 2)
            close(devnull);
    }
    dw_src_t d = {0};
    unsigned char ok = 0;
    d.fd = ht_elf_open_regular(path, NULL);
    if (d.fd >= 0) {
        Dwarf_Error err = NULL;
        int res =
            dwarf_init_b(d.fd, DW_DLC_READ, DW_GROUPNUMBER_ANY, dw_handler_cb, NULL, &d.dbg, &err);
        ok = res == DW_DLV_OK;
    }
    if (dw_write_all(sock, &ok, 1) || !ok)
        _exit(0);
    for (;;) {
        unsigned char req[9];
        if (dw_read_all(sock, req, sizeof req, -1))
            _exit(0);
        uint64_t arg;
        memcpy(&arg, req + 1, sizeof arg);
        dw_buf_t out = {0};
        if (!d.indexed)
            dw_index(&d);
        if (req[0] == 'I') {
            dw_buf_u64(&out, d.ncus);
            dw_buf_u64(&out, d.cu_index.n);
            for (size_t i = 0; i < d.cu_index.n; i++) {
                dw_buf_u64(&out, d.cu_index.v[i].lo);
                dw_buf_u64(&out, d.cu_index.v[i].hi);
                dw_buf_u64(&out, d.cu_index.v[i].a);
            }
        } else if (req[0] == 'C' && arg < d.ncus) {
            dw_worker_cu(&d, (size_t)arg, &out);
        }
        uint64_t len = out.oom ? 0 : out.n;
        if (dw_write_all(sock, &len, sizeof len) || dw_write_all(sock, out.p, (size_t)len))
            _exit(0);
        free(out.p);
    }
}

/* ---- the parent side ---- */

typedef struct dw_pcu_s {
    int8_t state;     /* 0: not fetched, 1: fetched, -1: no info */
    dw_ivals_t rows;  /* (line, file offset) */
    dw_ivals_t funcs; /* (scope) */
    dw_wscope_t *scopes;
    size_t nscopes;
    dw_range_t *ranges;
    size_t nranges;
    char *blob;
    size_t nblob;
} dw_pcu_t;

struct ht_dwarf_s {
    char *path;
    pid_t pid; /* worker, -1 when none runs */
    int sock;
    int ok_pending;  /* the worker's "opened" byte is not read yet */
    int index_sent;  /* ht_dwarf_prefetch sent 'I': its reply is not read yet */
    int failures;
    int dead; /* no more DWARF from this file */
    int indexed;
    dw_ivals_t cu_index; /* (cu number) */
    dw_pcu_t *cus;
    size_t ncus;
    uint64_t cus_parsed;
};

static void
dw_worker_stop(ht_dwarf_t *d)
{
    if (d->pid <= 0)
        return;
    close(d->sock);
    d->sock = -1;
    // The worker exits on EOF; SIGKILL covers one that is stuck in
    // libdwarf. Only our own child is signalled, by its pid.
    kill(d->pid, SIGKILL);
    while (waitpid(d->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    d->pid = -1;
    d->ok_pending = d->index_sent = 0;
}

/* Fork the worker; its first byte (did libdwarf open the file) is read by
 * dw_worker_confirm. */
static int
dw_worker_spawn(ht_dwarf_t *d)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return -errno;
    pid_t pid = fork();
    if (pid < 0) {
        int err = -errno;
        close(sv[0]);
        close(sv[1]);
        return err;
    }
    if (pid == 0) {
        close(sv[0]);
        dw_worker_main(d->path, sv[1]);
    }
    close(sv[1]);
    d->pid = pid;
    d->sock = sv[0];
    d->ok_pending = 1;
    d->index_sent = 0;
    return 0;
}

static int
dw_worker_confirm(ht_dwarf_t *d)
{
    if (!d->ok_pending)
        return 0;
    d->ok_pending = 0;
    unsigned char ok = 0;
    if (dw_read_all(d->sock, &ok, 1, DW_TIMEOUT_MS) || !ok) {
        dw_worker_stop(d);
        return -ENODATA;
    }
    return 0;
}

static int
dw_worker_start(ht_dwarf_t *d)
{
    int rc = dw_worker_spawn(d);
    return rc < 0 ? rc : dw_worker_confirm(d);
}

/* One request; the reply in *out (malloc) and *len. On failure the worker
 * is stopped and counted; the next request starts a new one. */
static int
dw_request(ht_dwarf_t *d, unsigned char op, uint64_t arg, unsigned char **out, uint64_t *len)
{
    *out = NULL;
    *len = 0;
    if (d->dead)
        return -ENODATA;
    if (d->pid <= 0) {
        int rc = dw_worker_start(d);
        if (rc < 0) {
            d->dead = 1; // it cannot even open the file: give up on it
            return rc;
        }
    }
    if (dw_worker_confirm(d) < 0) {
        d->dead = 1;
        return -ENODATA;
    }
    unsigned char req[9];
    req[0] = op;
    memcpy(req + 1, &arg, sizeof arg);
    uint64_t n = 0;
    unsigned char *p = NULL;
    // The index request may be on its way already (ht_dwarf_prefetch).
    int sent = op == 'I' && d->index_sent;
    d->index_sent = 0;
    if ((sent || dw_write_all(d->sock, req, sizeof req) == 0) &&
        dw_read_all(d->sock, &n, sizeof n, DW_TIMEOUT_MS) == 0 && n <= DW_REPLY_MAX &&
        (p = malloc(n ? (size_t)n : 1)) && dw_read_all(d->sock, p, (size_t)n, DW_TIMEOUT_MS) == 0) {
        *out = p;
        *len = n;
        return 0;
    }
    free(p);
    dw_worker_stop(d);
    if (++d->failures >= DW_MAX_FAILURES)
        d->dead = 1;
    return -EIO;
}

/* A bounds-checked reader over a reply. */
typedef struct dw_rd_s {
    const unsigned char *p;
    uint64_t left;
    int bad;
} dw_rd_t;

static uint64_t
dw_rd_u64(dw_rd_t *r)
{
    uint64_t v = 0;
    if (r->left < 8) {
        r->bad = 1;
        return 0;
    }
    memcpy(&v, r->p, 8);
    r->p += 8;
    r->left -= 8;
    return v;
}

static const void *
dw_rd_take(dw_rd_t *r, uint64_t n, uint64_t size)
{
    if (size && n > r->left / size) {
        r->bad = 1;
        return NULL;
    }
    const void *q = r->p;
    r->p += n * size;
    r->left -= n * size;
    return q;
}

static void
dw_fetch_index(ht_dwarf_t *d)
{
    d->indexed = 1;
    unsigned char *p;
    uint64_t len;
    if (dw_request(d, 'I', 0, &p, &len) < 0) {
        d->dead = 1; // no index, no lookups
        return;
    }
    dw_rd_t r = {p, len, 0};
    uint64_t ncus = dw_rd_u64(&r), n = dw_rd_u64(&r);
    const unsigned char *v = dw_rd_take(&r, n, 24);
    if (!r.bad && ncus <= DW_MAX_CUS) {
        d->cus = calloc(ncus ? (size_t)ncus : 1, sizeof *d->cus);
        if (d->cus) {
            d->ncus = (size_t)ncus;
            for (uint64_t i = 0; i < n; i++) {
                uint64_t t[3];
                memcpy(t, v + i * 24, 24);
                if (t[2] < ncus)
                    dw_ivals_push(&d->cu_index, t[0], t[1], (uint32_t)t[2], 0);
            }
            dw_ivals_seal(&d->cu_index);
        }
    }
    free(p);
}

void
ht_dwarf_prefetch(ht_dwarf_t *d)
{
    if (!d || d->dead || d->indexed || d->index_sent)
        return;
    if (d->pid <= 0 && dw_worker_spawn(d) < 0)
        return; // the first lookup tries again, and says why
    unsigned char req[9] = {'I'};
    if (dw_write_all(d->sock, req, sizeof req) == 0)
        d->index_sent = 1;
}

static void
dw_pcu_free(dw_pcu_t *c)
{
    dw_ivals_free(&c->rows);
    dw_ivals_free(&c->funcs);
    free(c->scopes);
    free(c->ranges);
    free(c->blob);
    memset(c, 0, sizeof *c);
}

/* Copy n {lo, hi, a, b} records into an interval set. */
static int
dw_load_ivals(dw_ivals_t *s, const unsigned char *v, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        uint64_t lh[2];
        uint32_t ab[2];
        memcpy(lh, v + i * 24, 16);
        memcpy(ab, v + i * 24 + 16, 8);
        if (dw_ivals_push(s, lh[0], lh[1], ab[0], ab[1]) < 0)
            return -ENOMEM;
    }
    dw_ivals_seal(s);
    return 0;
}

static void
dw_fetch_cu(ht_dwarf_t *d, size_t n)
{
    dw_pcu_t *c = &d->cus[n];
    c->state = -1;
    unsigned char *p;
    uint64_t len;
    if (dw_request(d, 'C', n, &p, &len) < 0)
        return;
    d->cus_parsed++;
    dw_rd_t r = {p, len, 0};
    uint64_t nrows = dw_rd_u64(&r), nfuncs = dw_rd_u64(&r), nscopes = dw_rd_u64(&r);
    uint64_t nranges = dw_rd_u64(&r), nblob = dw_rd_u64(&r);
    const unsigned char *rows = dw_rd_take(&r, nrows, 24);
    const unsigned char *funcs = dw_rd_take(&r, nfuncs, 24);
    const unsigned char *scopes = dw_rd_take(&r, nscopes, sizeof(dw_wscope_t));
    const unsigned char *ranges = dw_rd_take(&r, nranges, 16);
    const unsigned char *blob = dw_rd_take(&r, nblob, 1);
    if (r.bad || nscopes > INT32_MAX || nblob > UINT32_MAX)
        goto out;
    c->blob = malloc(nblob + 1);
    c->scopes = malloc((nscopes ? nscopes : 1) * sizeof *c->scopes);
    c->ranges = malloc((nranges ? nranges : 1) * sizeof *c->ranges);
    if (!c->blob || !c->scopes || !c->ranges)
        goto bad;
    memcpy(c->blob, blob, nblob);
    c->blob[nblob] = '\0'; // every offset below nblob now ends in a NUL
    c->nblob = nblob;
    memcpy(c->scopes, scopes, nscopes * sizeof *c->scopes);
    c->nscopes = nscopes;
    memcpy(c->ranges, ranges, nranges * sizeof *c->ranges);
    c->nranges = nranges;
    // The worker is our code, but it read hostile data: check every index
    // before the lookup trusts it.
    for (uint64_t i = 0; i < nscopes; i++) {
        dw_wscope_t *s = &c->scopes[i];
        if (s->rng > nranges || s->nrng > nranges - s->rng || s->child < -1 ||
            s->child >= (int64_t)nscopes || s->sibling < -1 || s->sibling >= (int64_t)nscopes)
            goto bad;
        if (s->name != DW_NONE && s->name >= nblob)
            s->name = DW_NONE;
        if (s->call_file != DW_NONE && s->call_file >= nblob)
            s->call_file = DW_NONE;
    }
    if (dw_load_ivals(&c->rows, rows, nrows) < 0 || dw_load_ivals(&c->funcs, funcs, nfuncs) < 0)
        goto bad;
    for (size_t i = 0; i < c->rows.n; i++)
        if (c->rows.v[i].b != DW_NONE && c->rows.v[i].b >= nblob)
            c->rows.v[i].b = DW_NONE;
    for (size_t i = 0; i < c->funcs.n; i++)
        if (c->funcs.v[i].a >= nscopes)
            goto bad;
    c->state = 1;
    goto out;
bad:
    dw_pcu_free(c);
    c->state = -1;
out:
    free(p);
}

int
ht_dwarf_open(const char *path, ht_dwarf_t **out)
{
    *out = NULL;
    // Fail early and cheaply on a file we cannot read; DWARF itself is
    // only touched by the worker, on the first lookup.
    int fd = ht_elf_open_regular(path, NULL);
    if (fd < 0)
        return fd;
    close(fd);
    ht_dwarf_t *d = calloc(1, sizeof *d);
    if (!d || !(d->path = strdup(path))) {
        free(d);
        return -ENOMEM;
    }
    d->pid = -1;
    d->sock = -1;
    *out = d;
    return 0;
}

void
ht_dwarf_close(ht_dwarf_t *d)
{
    if (!d)
        return;
    dw_worker_stop(d);
    for (size_t i = 0; i < d->ncus; i++)
        dw_pcu_free(&d->cus[i]);
    free(d->cus);
    dw_ivals_free(&d->cu_index);
    free(d->path);
    free(d);
}

void
ht_dwarf_suspend(ht_dwarf_t *d)
{
    if (d)
        dw_worker_stop(d);
}

int
ht_dwarf_is_running(const ht_dwarf_t *d)
{
    return d && d->pid > 0;
}

static int
dw_scope_has(const dw_pcu_t *c, const dw_wscope_t *s, uint64_t x)
{
    for (uint32_t i = 0; i < s->nrng; i++)
        if (c->ranges[s->rng + i].lo <= x && x < c->ranges[s->rng + i].hi)
            return 1;
    return 0;
}

static const char *
dw_blob_str(const dw_pcu_t *c, uint32_t off)
{
    return off == DW_NONE || off >= c->nblob ? NULL : c->blob + off;
}

int
ht_dwarf_lookup(ht_dwarf_t *d, uint64_t vaddr, ht_dwarf_frame_t *out, int max)
{
    if (max < 1 || d->dead)
        return 0;
    if (!d->indexed)
        dw_fetch_index(d);
    const dw_ival_t *ci = dw_ivals_find(&d->cu_index, vaddr);
    if (!ci || ci->a >= d->ncus)
        return 0;
    dw_pcu_t *c = &d->cus[ci->a];
    if (c->state == 0)
        dw_fetch_cu(d, ci->a);
    if (c->state < 0)
        return 0;

    const dw_ival_t *row = dw_ivals_find(&c->rows, vaddr);
    const dw_ival_t *fn = dw_ivals_find(&c->funcs, vaddr);
    if (!fn) {
        if (!row)
            return 0;
        out[0] = (ht_dwarf_frame_t){NULL, dw_blob_str(c, row->b), row->a};
        return 1;
    }
    // The chain of scopes from the real function inwards. Each step goes
    // to a child, so it cannot cycle; the sibling scan is bounded anyway.
    int32_t chain[DW_MAX_CHAIN];
    int n = 0;
    chain[n++] = (int32_t)fn->a;
    while (n < DW_MAX_CHAIN) {
        int32_t k = c->scopes[chain[n - 1]].child;
        size_t steps = 0;
        for (; k >= 0 && steps < c->nscopes; k = c->scopes[k].sibling, steps++)
            if (dw_scope_has(c, &c->scopes[k], vaddr))
                break;
        if (k < 0 || steps >= c->nscopes)
            break;
        chain[n++] = k;
    }
    // Frames innermost first. When the chain is deeper than max, keep the
    // innermost max-1 and the real function.
    int keep = n <= max ? n : max;
    for (int k = 0; k < keep; k++) {
        int idx = (k == keep - 1) ? 0 : n - 1 - k; // position in chain
        const dw_wscope_t *s = &c->scopes[chain[idx]];
        ht_dwarf_frame_t *f = &out[k];
        f->name = dw_blob_str(c, s->name);
        if (idx == n - 1) { // innermost: the line table's answer
            f->file = row ? dw_blob_str(c, row->b) : NULL;
            f->line = row ? row->a : 0;
        } else { // where the next inner scope was inlined
            const dw_wscope_t *in = &c->scopes[chain[idx + 1]];
            f->file = dw_blob_str(c, in->call_file);
            f->line = in->call_line;
        }
    }
    return keep;
}

int
ht_dwarf_failures(const ht_dwarf_t *d)
{
    return d->failures + (d->dead && !d->failures);
}

uint64_t
ht_dwarf_cus_parsed(const ht_dwarf_t *d)
{
    return d->cus_parsed;
}
