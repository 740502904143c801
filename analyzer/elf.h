/*
 * analyzer/elf.h -- what the symbolizer needs from one ELF file: its
 * build-id, its .gnu_debuglink, whether it carries DWARF, and a sorted
 * table of its function symbols. Prefix ht_elf_.
 *
 * Files named by traces are untrusted: they are opened read-only, never
 * mapped (a file truncated under us must not SIGBUS the analyzer), only
 * regular files are accepted (a FIFO would block), and everything is read
 * through libelf's bounds-checked accessors. The file is read once at
 * ht_elf_open and closed again: an ht_elf_t holds no descriptor, so the
 * analyzer can keep thousands of modules without running out of fds.
 */
#ifndef HT_ANALYZER_ELF_H
#define HT_ANALYZER_ELF_H

#include <stddef.h>
#include <stdint.h>

typedef struct ht_elf_s ht_elf_t;

/* Where a symbol table came from. */
enum { HT_ELF_SYMS_NONE = 0, HT_ELF_SYMS_DYNSYM = 1, HT_ELF_SYMS_SYMTAB = 2 };

/*
 * Open PATH read-only and read its notes, debuglink, section summary and
 * function symbols (.symtab, or .dynsym when there is no .symtab). Returns
 * 0 with *out set, -errno when the file cannot be opened or read, -ENOENT
 * when it is missing, -EBADMSG when it is not a usable ELF file.
 */
int ht_elf_open(const char *path, ht_elf_t **out);

/* Free everything. NULL is a no-op. */
void ht_elf_close(ht_elf_t *e);

/* The NT_GNU_BUILD_ID bytes (owned by e), or NULL with *len 0 if none. */
const uint8_t *ht_elf_build_id(const ht_elf_t *e, size_t *len);

/* The file name in .gnu_debuglink (owned by e; never contains '/', never
 * "." or ".."), with its CRC-32 in *crc; NULL if none or malformed. */
const char *ht_elf_debuglink(const ht_elf_t *e, uint32_t *crc);

/* 1 if the file has a non-empty .debug_info (possibly compressed). */
int ht_elf_has_dwarf(const ht_elf_t *e);

/* HT_ELF_SYMS_* : which table the function symbols came from. */
int ht_elf_syms_kind(const ht_elf_t *e);

/* Number of distinct function symbols kept. */
size_t ht_elf_syms_count(const ht_elf_t *e);

/*
 * The function symbol containing ELF virtual address vaddr: sizes are
 * respected (an address past the end of the nearest symbol is not in it);
 * a symbol of size 0 covers up to the next symbol or the end of its
 * section. Of aliases at one address the least-underscored name wins
 * ("calloc" over "__libc_calloc"), then global over weak over local.
 * Returns the raw (mangled) name,
 * owned by e, and its start in *start (may be NULL); NULL if no symbol
 * contains vaddr.
 */
const char *ht_elf_sym_lookup(const ht_elf_t *e, uint64_t vaddr, uint64_t *start);

/* The lowest address of symbol NAME (exact match on the raw name of the
 * alias kept at each address) in *vaddr; 0, or -ENOENT if there is no
 * such function. Linear; for tests and tools. */
int ht_elf_sym_find(const ht_elf_t *e, const char *name, uint64_t *vaddr);

/*
 * CRC-32 (the .gnu_debuglink one, which is zlib's) of the whole file at
 * PATH in *crc. Returns 0 or -errno. Same opening rules as ht_elf_open.
 */
int ht_elf_file_crc32(const char *path, uint32_t *crc);

/*
 * Open PATH the way every analyzer read of an untrusted file should:
 * O_RDONLY, close-on-exec, no controlling tty, no blocking on a FIFO, and
 * only if it is a regular file. Returns the fd or -errno (-EINVAL for
 * anything but a regular file); *size gets the file size if not NULL.
 */
int ht_elf_open_regular(const char *path, uint64_t *size);

#endif /* HT_ANALYZER_ELF_H */
