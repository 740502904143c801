/*
 * formats/svg.c -- interactive SVG flame graph; see svg.h.
 */
#include "formats/svg.h"

#include "formats/collapsed.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// Metric names and units straight from the table, so this writer links
// without the analyzer's profile.c.
static const char *const svg_metric_names[] = {
#define SVG_NAME(e, name, unit) name,
    HT_PROF_METRICS(SVG_NAME)
#undef SVG_NAME
};
static const char *const svg_metric_units[] = {
#define SVG_UNIT(e, name, unit) unit,
    HT_PROF_METRICS(SVG_UNIT)
#undef SVG_UNIT
};

/* The metric counting the same allocations in the other unit (bytes <->
 * objects), shown beside the width metric in tooltips. */
static ht_metric_t
svg_companion(ht_metric_t m)
{
    switch (m) {
    case HT_M_ALLOC_OBJECTS: return HT_M_ALLOC_SPACE;
    case HT_M_ALLOC_SPACE: return HT_M_ALLOC_OBJECTS;
    case HT_M_INUSE_OBJECTS: return HT_M_INUSE_SPACE;
    case HT_M_INUSE_SPACE: return HT_M_INUSE_OBJECTS;
    case HT_M_LEAKED_OBJECTS: return HT_M_LEAKED_SPACE;
    case HT_M_LEAKED_SPACE: return HT_M_LEAKED_OBJECTS;
    case HT_M_PEAK_OBJECTS: return HT_M_PEAK_SPACE;
    case HT_M_PEAK_SPACE: return HT_M_PEAK_OBJECTS;
    case HT_M_TEMP_OBJECTS: return HT_M_TEMP_SPACE;
    case HT_M_TEMP_SPACE: return HT_M_TEMP_OBJECTS;
    default: return m;
    }
}

enum {
    SVG_FRAME_H = 16,  // pixels per stack level
    SVG_FONT = 12,     // font size of frame labels
    SVG_PAD = 10,      // left and right margin
    SVG_TOP = 60,      // title, subtitle, buttons
    SVG_BOTTOM = 34,   // details line
};
// Average glyph width of Verdana at SVG_FONT, the same figure the script
// uses to fit labels.
#define SVG_CHAR_W (0.59 * SVG_FONT)

/* ---- the tree ---- */

typedef struct svg_node_s {
    char *name;                  // clean UTF-8 frame text (owned)
    uint32_t parent, child, next; // 0 = none; node 0 is the root "all"
    uint32_t depth;
    const ht_line_t *line;       // first frame merged here (for file:line)
    const ht_mapping_t *map;     // its module
    bool mixed;                  // frames from several file:lines merged here
    double v[2][2];              // [0 base, 1 new][0 width metric, 1 companion]
    double x;                    // layout, in pixels
} svg_node_t;

typedef struct svg_tree_s {
    svg_node_t *n;
    uint32_t count, cap;
    uint32_t *slots; // node index; 0 = empty (the root is never looked up)
    size_t nslots;
} svg_tree_t;

static uint64_t
svg_hash(uint32_t parent, const char *s)
{
    uint64_t h = 1469598103934665603ull ^ parent;
    h *= 1099511628211ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int
svg_tree_rehash(svg_tree_t *t)
{
    size_t ns = t->nslots ? t->nslots * 2 : 4096;
    uint32_t *sl = calloc(ns, sizeof *sl);
    if (!sl)
        return -ENOMEM;
    for (uint32_t i = 1; i < t->count; i++) {
        size_t h = svg_hash(t->n[i].parent, t->n[i].name) & (ns - 1);
        while (sl[h])
            h = (h + 1) & (ns - 1);
        sl[h] = i;
    }
    free(t->slots);
    t->slots = sl;
    t->nslots = ns;
    return 0;
}

/* Copy s as valid UTF-8 without control characters: a flame graph label
 * must survive any XML parser, whatever bytes a symbol table held. */
static char *
svg_clean(const char *s)
{
    size_t n = strlen(s);
    char *d = malloc(n + 1), *o = d;
    if (!d)
        return NULL;
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        unsigned c = *p;
        size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
                                   : (c & 0xf8) == 0xf0 ? 4 : 0;
        bool ok = len && (size_t)(end - p) >= len;
        for (size_t k = 1; ok && k < len; k++)
            ok = (p[k] & 0xc0) == 0x80;
        if (ok && len == 2)
            ok = c >= 0xc2; // overlong
        if (ok && len == 3) {
            unsigned cp = (c & 0x0f) << 12 | (p[1] & 0x3f) << 6 | (p[2] & 0x3f);
            ok = cp >= 0x800 && !(cp >= 0xd800 && cp <= 0xdfff) && cp != 0xfffe && cp != 0xffff;
        }
        if (ok && len == 4) {
            unsigned cp = (c & 0x07) << 18 | (p[1] & 0x3f) << 12 | (p[2] & 0x3f) << 6 |
                          (p[3] & 0x3f);
            ok = cp >= 0x10000 && cp <= 0x10ffff;
        }
        if (!ok) {
            *o++ = '?';
            p++;
        } else if (len == 1) {
            *o++ = c < 0x20 || c == 0x7f ? ' ' : (char)c;
            p++;
        } else {
            memcpy(o, p, len);
            o += len;
            p += len;
        }
    }
    *o = '\0';
    return d;
}

/* The child of `parent` named `name`, created when missing. Returns its
 * index, or 0 on ENOMEM. */
static uint32_t
svg_tree_child(svg_tree_t *t, uint32_t parent, const char *name)
{
    if ((size_t)t->count * 2 >= t->nslots && svg_tree_rehash(t))
        return 0;
    size_t h = svg_hash(parent, name) & (t->nslots - 1);
    while (t->slots[h]) {
        svg_node_t *c = &t->n[t->slots[h]];
        if (c->parent == parent && !strcmp(c->name, name))
            return t->slots[h];
        h = (h + 1) & (t->nslots - 1);
    }
    if (t->count == t->cap) {
        uint32_t nc = t->cap ? t->cap * 2 : 1024;
        svg_node_t *nn = realloc(t->n, nc * sizeof *nn);
        if (!nn)
            return 0;
        t->n = nn;
        t->cap = nc;
    }
    char *copy = strdup(name);
    if (!copy)
        return 0;
    uint32_t i = t->count++;
    svg_node_t *c = &t->n[i];
    memset(c, 0, sizeof *c);
    c->name = copy;
    c->parent = parent;
    c->depth = t->n[parent].depth + 1;
    c->next = t->n[parent].child; // order is fixed later, by name
    t->n[parent].child = i;
    t->slots[h] = i;
    return i;
}

static void
svg_tree_free(svg_tree_t *t)
{
    for (uint32_t i = 0; i < t->count; i++)
        free(t->n[i].name);
    free(t->n);
    free(t->slots);
    memset(t, 0, sizeof *t);
}

static bool
svg_same_site(const ht_line_t *a, const ht_line_t *b)
{
    if (a->line != b->line)
        return false;
    if (!a->file || !b->file)
        return a->file == b->file;
    return !strcmp(a->file, b->file);
}

/* Add every stack of p to the tree, on side `side` (0 base, 1 new). */
static int
svg_tree_add(svg_tree_t *t, const ht_profile_t *p, int side, ht_metric_t m, int lines)
{
    ht_metric_t comp = svg_companion(m);
    ht_cframe_t *fr = NULL;
    size_t frcap = 0, len = 0, cap = 0;
    char *buf = NULL;
    ht_cscratch_t sc = {0};
    int rc = 0;
    for (uint32_t i = 0; i < p->nstacks && !rc; i++) {
        const ht_pstack_t *s = &p->stacks[i];
        double v = s->v[m], vc = s->v[comp];
        // Widths need positive values; a base only colors, so it may
        // bring any value.
        if (isnan(v) || (side == 1 && v <= 0) || (side == 0 && v == 0))
            continue;
        int n = ht_collapsed_frames(p, s, &fr, &frcap, &sc);
        if (n < 0) {
            rc = n;
            break;
        }
        t->n[0].v[side][0] += v;
        t->n[0].v[side][1] += vc;
        uint32_t cur = 0;
        static const ht_line_t unknown = {"[unknown]", NULL, 0};
        ht_cframe_t none = {&unknown, NULL, NULL};
        for (int j = 0; j < (n ? n : 1) && !rc; j++) {
            const ht_cframe_t *f = n ? &fr[j] : &none;
            len = 0;
            if (!buf || cap == 0) {
                buf = malloc(256);
                if (!buf) {
                    rc = -ENOMEM;
                    break;
                }
                cap = 256;
            }
            buf[0] = '\0';
            if ((rc = ht_collapsed_frame_text(f, lines, &buf, &len, &cap)))
                break;
            char *clean = svg_clean(buf);
            if (!clean) {
                rc = -ENOMEM;
                break;
            }
            uint32_t c = svg_tree_child(t, cur, clean);
            free(clean);
            if (!c) {
                rc = -ENOMEM;
                break;
            }
            svg_node_t *nd = &t->n[c];
            // Keep only lines the profile owns: a synthetic one (no line
            // info: "module+0xoff", "[unknown]") lives in scratch, and its
            // text is already the name.
            const ht_line_t *ln = f->loc && f->loc->nlines ? f->line : NULL;
            if (ln && !nd->line)
                nd->line = ln;
            else if (ln && !svg_same_site(nd->line, ln))
                nd->mixed = true;
            if (!nd->map)
                nd->map = f->map;
            nd->v[side][0] += v;
            nd->v[side][1] += vc;
            cur = c;
        }
    }
    free(fr);
    free(buf);
    ht_collapsed_scratch_free(&sc);
    return rc;
}

static int
svg_node_cmp(const void *a, const void *b, void *arg)
{
    const svg_node_t *n = arg;
    const svg_node_t *x = &n[*(const uint32_t *)a], *y = &n[*(const uint32_t *)b];
    if (x->parent != y->parent)
        return x->parent < y->parent ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Relink every sibling list in name order (flamegraph.pl's order, which
 * keeps two graphs of one program comparable). */
static int
svg_tree_sort(svg_tree_t *t)
{
    if (t->count < 2)
        return 0;
    uint32_t *idx = malloc((t->count - 1) * sizeof *idx);
    if (!idx)
        return -ENOMEM;
    for (uint32_t i = 1; i < t->count; i++)
        idx[i - 1] = i;
    qsort_r(idx, t->count - 1, sizeof *idx, svg_node_cmp, t->n);
    for (uint32_t i = 0; i < t->count; i++)
        t->n[i].child = 0;
    for (uint32_t k = t->count - 1; k-- > 0;) {
        svg_node_t *c = &t->n[idx[k]];
        c->next = t->n[c->parent].child;
        t->n[c->parent].child = idx[k];
    }
    free(idx);
    return 0;
}

/* ---- output helpers ---- */

/* Write s XML-escaped. s is clean UTF-8 (svg_clean) except for the
 * newlines a tooltip uses; in an attribute those become &#10;. */
static void
svg_esc(FILE *f, const char *s, bool attr)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        case '\n': fputs(attr ? "&#10;" : "\n", f); break;
        default: fputc(*s, f);
        }
    }
}

/* "1.5 MiB" style; exact bytes are in the tooltip beside it. */
static void
svg_human(char *out, size_t n, double v, const char *unit)
{
    bool bytes = !strcmp(unit, "bytes");
    double a = fabs(v);
    if (!bytes || a < 1024) {
        snprintf(out, n, "%.0f%s", v, bytes ? " B" : "");
        return;
    }
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
    int k = 0;
    a /= 1024;
    while (a >= 1024 && k < 4) {
        a /= 1024;
        k++;
    }
    snprintf(out, n, "%s%.*f %s", v < 0 ? "-" : "", a < 10 ? 2 : a < 100 ? 1 : 0, a, units[k]);
}

/* One "name: 1.5 MiB (1572864 bytes)" line. */
static void
svg_value_line(char *out, size_t n, ht_metric_t m, double v)
{
    char h[48];
    const char *unit = svg_metric_units[m];
    svg_human(h, sizeof h, v, unit);
    if (!strcmp(unit, "bytes") && fabs(v) >= 1024)
        snprintf(out, n, "%s: %s (%.0f bytes)", svg_metric_names[m], h, v);
    else
        snprintf(out, n, "%s: %s", svg_metric_names[m], h);
}

static uint32_t
svg_name_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static const char *
svg_basename(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static void
svg_hsl(double h, double s, double l, int *r, int *g, int *b)
{
    double c = (1 - fabs(2 * l - 1)) * s, hp = fmod(h, 360) / 60,
           x = c * (1 - fabs(fmod(hp, 2) - 1)), m = l - c / 2, rr = 0, gg = 0, bb = 0;
    if (hp < 1)
        rr = c, gg = x;
    else if (hp < 2)
        rr = x, gg = c;
    else if (hp < 3)
        gg = c, bb = x;
    else if (hp < 4)
        gg = x, bb = c;
    else if (hp < 5)
        rr = x, bb = c;
    else
        rr = c, bb = x;
    *r = (int)lround((rr + m) * 255);
    *g = (int)lround((gg + m) * 255);
    *b = (int)lround((bb + m) * 255);
}

static void
svg_color(const svg_tree_t *t, const svg_node_t *nd, const ht_mapping_t *main_map, bool diff,
          double maxdelta, char *out, size_t n)
{
    int r, g, b;
    if (diff) {
        double d = nd->v[1][0] - nd->v[0][0];
        double k = maxdelta > 0 ? fabs(d) / maxdelta : 0;
        int fade = (int)lround(220 * (1 - k));
        if (d > 0)
            r = 255, g = b = fade;
        else if (d < 0)
            b = 255, r = g = fade;
        else
            r = g = b = 225;
    } else if (nd == &t->n[0]) {
        r = g = b = 200;
    } else {
        uint32_t h = svg_name_hash(nd->name);
        double v1 = (h & 0xff) / 255.0, v2 = ((h >> 8) & 0xff) / 255.0;
        if (!nd->map || !nd->map->path) {
            r = g = b = 170 + (int)(40 * v1);
        } else if (nd->map == main_map) {
            // flamegraph.pl's "hot" palette: the program's own code.
            r = 205 + (int)(50 * v2);
            g = (int)(230 * v1);
            b = (int)(55 * v2);
        } else {
            double hue = (svg_name_hash(svg_basename(nd->map->path)) % 12) * 30.0 + 15;
            svg_hsl(hue, 0.55, 0.62 + 0.12 * v1, &r, &g, &b);
        }
    }
    snprintf(out, n, "rgb(%d,%d,%d)", r, g, b);
}

/* Characters of s that fit in w pixels, as the script computes them:
 * the whole name, or a prefix with "..", or nothing. Counts code points. */
static void
svg_fit(FILE *f, const char *s, double w)
{
    long fit = (long)floor((w - 6) / SVG_CHAR_W);
    if (fit < 3)
        return;
    long ncp = 0;
    for (const char *p = s; *p; p++)
        ncp += ((unsigned char)*p & 0xc0) != 0x80;
    if (ncp <= fit) {
        svg_esc(f, s, false);
        return;
    }
    // A prefix of fit - 2 code points, then "..".
    char buf[1024];
    long cp = 0;
    size_t i = 0;
    for (; s[i] && i < sizeof buf - 1; i++) {
        if (((unsigned char)s[i] & 0xc0) != 0x80 && cp++ == fit - 2)
            break;
        buf[i] = s[i];
    }
    if (s[i] && i == sizeof buf - 1) // out of room: back up to a whole sequence
        while (i > 0 && ((unsigned char)s[i] & 0xc0) == 0x80)
            i--;
    buf[i] = '\0';
    svg_esc(f, buf, false);
    fputs("..", f);
}

/* The script: zoom, search, details. Kept free of "]]>" (it sits in a
 * CDATA section) and of any dependency. */
static const char svg_script[] =
    "\"use strict\";\n"
    "var frames, details, matchedtxt, unzoombtn, W, PAD, CW, total, zoomed = null, lastre = null;\n"
    "function init(evt) {\n"
    "  var svg = document.documentElement;\n"
    "  frames = document.getElementById('frames');\n"
    "  details = document.getElementById('details').firstChild;\n"
    "  matchedtxt = document.getElementById('matched');\n"
    "  unzoombtn = document.getElementById('unzoom');\n"
    "  W = +svg.getAttribute('width'); PAD = +svg.getAttribute('data-pad');\n"
    "  CW = +svg.getAttribute('data-cw'); total = +svg.getAttribute('data-total');\n"
    "  frames.addEventListener('click', function (e) { var g = frameof(e.target); if (g) zoom(g); });\n"
    "  frames.addEventListener('mouseover', function (e) {\n"
    "    var g = frameof(e.target); if (g) details.nodeValue = info(g); });\n"
    "  frames.addEventListener('mouseout', function () { details.nodeValue = ' '; });\n"
    "  unzoombtn.addEventListener('click', unzoom);\n"
    "  document.getElementById('search').addEventListener('click', searchprompt);\n"
    "  window.addEventListener('keydown', function (e) {\n"
    "    if (e.keyCode === 114 || ((e.ctrlKey || e.metaKey) && e.keyCode === 70)) {\n"
    "      e.preventDefault(); searchprompt();\n"
    "    } else if (e.keyCode === 27) { unzoom(); search(null); }\n"
    "  });\n"
    "}\n"
    "function frameof(n) {\n"
    "  while (n && n !== frames) { if (n.nodeName === 'g') return n; n = n.parentNode; }\n"
    "  return null;\n"
    "}\n"
    "function title(g) { return g.getElementsByTagName('title')[0].textContent; }\n"
    "function fname(g) { var t = title(g), i = t.indexOf('\\n'); return i < 0 ? t : t.substring(0, i); }\n"
    "function info(g) { return title(g).split('\\n').join('  |  '); }\n"
    "function num(g, a) { return +g.getAttribute(a); }\n"
    "function fit(g) {\n"
    "  var r = g.getElementsByTagName('rect')[0], t = g.getElementsByTagName('text')[0];\n"
    "  var x = +r.getAttribute('x'), w = +r.getAttribute('width');\n"
    "  t.setAttribute('x', (x + 3).toFixed(2));\n"
    "  var s = fname(g), n = Math.floor((w - 6) / CW);\n"
    "  if (n < 3) t.textContent = '';\n"
    "  else t.textContent = s.length <= n ? s : s.substring(0, n - 2) + '..';\n"
    "}\n"
    "function place(g, x, w) {\n"
    "  var r = g.getElementsByTagName('rect')[0];\n"
    "  r.setAttribute('x', x.toFixed(2)); r.setAttribute('width', w.toFixed(2)); fit(g);\n"
    "}\n"
    "function zoom(z) {\n"
    "  var zx = num(z, 'data-x'), zw = num(z, 'data-w'), zd = num(z, 'data-d');\n"
    "  var ratio = (W - 2 * PAD) / zw, fs = frames.children, eps = 0.01;\n"
    "  for (var i = 0; i < fs.length; i++) {\n"
    "    var g = fs[i], x = num(g, 'data-x'), w = num(g, 'data-w'), d = num(g, 'data-d');\n"
    "    if (d >= zd && x >= zx - eps && x + w <= zx + zw + eps) {\n"
    "      g.style.display = ''; g.classList.remove('parent');\n"
    "      place(g, PAD + (x - zx) * ratio, w * ratio);\n"
    "    } else if (d < zd && x <= zx + eps && x + w >= zx + zw - eps) {\n"
    "      g.style.display = ''; g.classList.add('parent'); place(g, PAD, W - 2 * PAD);\n"
    "    } else {\n"
    "      g.style.display = 'none';\n"
    "    }\n"
    "  }\n"
    "  zoomed = z; unzoombtn.style.visibility = 'visible';\n"
    "}\n"
    "function unzoom() {\n"
    "  var fs = frames.children;\n"
    "  for (var i = 0; i < fs.length; i++) {\n"
    "    var g = fs[i]; g.style.display = ''; g.classList.remove('parent');\n"
    "    place(g, num(g, 'data-x'), num(g, 'data-w'));\n"
    "  }\n"
    "  zoomed = null; unzoombtn.style.visibility = 'hidden';\n"
    "}\n"
    "function searchprompt() {\n"
    "  var term = prompt('Search for a function (regular expression; empty to clear):',\n"
    "                    lastre ? lastre.source : '');\n"
    "  if (term === null) return;\n"
    "  if (term === '') { search(null); return; }\n"
    "  try { search(new RegExp(term)); } catch (e) { alert('Bad regular expression: ' + e.message); }\n"
    "}\n"
    "function search(re) {\n"
    "  var fs = frames.children, m = [];\n"
    "  lastre = re;\n"
    "  for (var i = 0; i < fs.length; i++) {\n"
    "    var g = fs[i], r = g.getElementsByTagName('rect')[0];\n"
    "    if (!r.hasAttribute('data-fill')) r.setAttribute('data-fill', r.getAttribute('fill'));\n"
    "    if (re && num(g, 'data-d') > 0 && re.test(fname(g))) {\n"
    "      r.setAttribute('fill', 'rgb(230,0,230)'); m.push(g);\n"
    "    } else {\n"
    "      r.setAttribute('fill', r.getAttribute('data-fill'));\n"
    "    }\n"
    "  }\n"
    "  if (!re) { matchedtxt.textContent = ''; return; }\n"
    "  // A match inside another match is already counted in it.\n"
    "  m.sort(function (a, b) { return num(a, 'data-x') - num(b, 'data-x') || num(a, 'data-d') - num(b, 'data-d'); });\n"
    "  var sum = 0, end = -1;\n"
    "  for (var j = 0; j < m.length; j++) {\n"
    "    var x = num(m[j], 'data-x');\n"
    "    if (x >= end - 0.01) { sum += num(m[j], 'data-v'); end = x + num(m[j], 'data-w'); }\n"
    "  }\n"
    "  var pct = total > 0 ? 100 * sum / total : 0;\n"
    "  matchedtxt.textContent = 'Matched: ' + pct.toFixed(1) + '% (' + m.length + ' frames)';\n"
    "}\n";

typedef struct svg_ctx_s {
    const ht_profile_t *p;
    const ht_svg_opts_t *o;
    svg_tree_t t;
    bool diff;
    double scale, maxdelta; // pixels per unit of value
    const ht_mapping_t *main_map;
} svg_ctx_t;

static void
svg_tooltip(svg_ctx_t *c, const svg_node_t *nd, char *out, size_t n)
{
    ht_metric_t m = c->o->metric, comp = svg_companion(m);
    size_t k = 0;
#define SVG_ADD(...)                                                                               \
    do {                                                                                           \
        if (k < n)                                                                                 \
            k += (size_t)snprintf(out + k, n - k, __VA_ARGS__);                                    \
    } while (0)
    SVG_ADD("%s", nd->name);
    if (nd->map && nd->map->path)
        SVG_ADD("\nmodule: %s", svg_basename(nd->map->path));
    if (nd->line && nd->line->file && nd->line->file[0]) {
        if (nd->line->line)
            SVG_ADD("\nat %s:%" PRIu32, nd->line->file, nd->line->line);
        else
            SVG_ADD("\nat %s", nd->line->file);
        if (nd->mixed)
            SVG_ADD(" and other lines");
    }
    double total = c->t.n[0].v[1][0];
    char a[160], b[160];
    if (!c->diff) {
        svg_value_line(a, sizeof a, m, nd->v[1][0]);
        svg_value_line(b, sizeof b, comp, nd->v[1][1]);
        SVG_ADD("\n%s, %.2f%% of the total\n%s", a, total > 0 ? 100 * nd->v[1][0] / total : 0, b);
    } else {
        double d = nd->v[1][0] - nd->v[0][0], dc = nd->v[1][1] - nd->v[0][1];
        svg_value_line(a, sizeof a, m, nd->v[0][0]);
        svg_value_line(b, sizeof b, comp, nd->v[0][1]);
        SVG_ADD("\nbase %s, %s", a, b);
        svg_value_line(a, sizeof a, m, nd->v[1][0]);
        svg_value_line(b, sizeof b, comp, nd->v[1][1]);
        SVG_ADD("\nnew %s, %s", a, b);
        svg_value_line(a, sizeof a, m, d);
        svg_value_line(b, sizeof b, comp, dc);
        char pct[32] = "";
        if (d != 0 && nd->v[0][0] != 0)
            snprintf(pct, sizeof pct, " = %+.1f%%", 100 * d / fabs(nd->v[0][0]));
        else if (d != 0)
            snprintf(pct, sizeof pct, " (not in base)");
        SVG_ADD("\ndelta %s%s, %s", a, pct, b);
    }
    if (c->p->sampled && !strcmp(svg_metric_units[m], "bytes")) {
        // The standard error of a sampled estimate of B bytes is about
        // sqrt(B * rate) (see DESIGN.md, sampling).
        svg_human(a, sizeof a, sqrt(fabs(nd->v[1][0]) * (double)c->p->sample_rate), "bytes");
        SVG_ADD("\nsampled: an estimate, +/- about %s", a);
    }
#undef SVG_ADD
    if (k >= n && n > 4) {
        // snprintf cut the text: end it on a whole UTF-8 sequence.
        size_t e = n - 4;
        while (e > 0 && ((unsigned char)out[e] & 0xc0) == 0x80)
            e--;
        memcpy(out + e, "...", 4);
    }
}

static void
svg_frame(svg_ctx_t *c, FILE *f, uint32_t i, double height)
{
    const svg_node_t *nd = &c->t.n[i];
    double w = nd->v[1][0] * c->scale;
    double y = height - SVG_BOTTOM - (nd->depth + 1) * (double)SVG_FRAME_H;
    char color[32], tip[8192];
    svg_color(&c->t, nd, c->main_map, c->diff, c->maxdelta, color, sizeof color);
    svg_tooltip(c, nd, tip, sizeof tip);
    fprintf(f, "<g data-x=\"%.3f\" data-w=\"%.3f\" data-d=\"%" PRIu32 "\" data-v=\"%.17g\">",
            nd->x, w, nd->depth, nd->v[1][0]);
    fputs("<title>", f);
    svg_esc(f, tip, false);
    fprintf(f, "</title><rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%d\" fill=\"%s\" "
               "rx=\"2\" ry=\"2\"/><text x=\"%.2f\" y=\"%.1f\">",
            nd->x, y, w, SVG_FRAME_H - 1, color, nd->x + 3, y + SVG_FRAME_H - 4.5);
    svg_fit(f, nd->name, w);
    fputs("</text></g>\n", f);
}

static int
svg_write_impl(FILE *f, const ht_profile_t *base, const ht_profile_t *p, const ht_svg_opts_t *o)
{
    ht_svg_opts_t def;
    if (!o) {
        ht_svg_opts_default(&def);
        o = &def;
    }
    if ((int)o->metric < 0 || o->metric >= HT_M_COUNT)
        return -EINVAL;
    svg_ctx_t c = {.p = p, .o = o, .diff = base != NULL};
    int width = o->width >= 200 ? o->width : 200;
    double min_px = o->min_px > 0 ? o->min_px : 0;
    int rc = 0;

    // Node 0: the root, "all".
    c.t.n = calloc(1024, sizeof *c.t.n);
    if (!c.t.n)
        return -ENOMEM;
    c.t.cap = 1024;
    c.t.count = 1;
    c.t.n[0].name = strdup("all");
    if (!c.t.n[0].name || svg_tree_rehash(&c.t)) {
        rc = -ENOMEM;
        goto out;
    }
    if (base && (rc = svg_tree_add(&c.t, base, 0, o->metric, o->lines)))
        goto out;
    if ((rc = svg_tree_add(&c.t, p, 1, o->metric, o->lines)))
        goto out;
    if ((rc = svg_tree_sort(&c.t)))
        goto out;

    for (uint32_t i = 0; i < p->nmaps && !c.main_map; i++)
        if (p->exe && p->maps[i].path && !strcmp(p->maps[i].path, p->exe))
            c.main_map = &p->maps[i];
    if (!c.main_map && p->nmaps)
        c.main_map = &p->maps[0]; // the analyzer lists the executable first

    // Layout: a parent's index is below its children's, so one pass in
    // index order places every parent before its children.
    double total = c.t.n[0].v[1][0];
    c.scale = total > 0 ? (width - 2.0 * SVG_PAD) / total : 0;
    c.t.n[0].x = SVG_PAD;
    uint32_t maxdepth = 0;
    for (uint32_t i = 0; i < c.t.count; i++) {
        svg_node_t *nd = &c.t.n[i];
        double x = nd->x;
        for (uint32_t k = nd->child; k; k = c.t.n[k].next) {
            c.t.n[k].x = x;
            if (c.t.n[k].v[1][0] > 0)
                x += c.t.n[k].v[1][0] * c.scale;
        }
        if (nd->v[1][0] > 0 && nd->v[1][0] * c.scale >= min_px) {
            if (nd->depth > maxdepth)
                maxdepth = nd->depth;
            double d = fabs(nd->v[1][0] - nd->v[0][0]);
            if (i && d > c.maxdelta)
                c.maxdelta = d;
        }
    }
    double height = SVG_TOP + (maxdepth + 1) * (double)SVG_FRAME_H + SVG_BOTTOM;

    // Header, style, script.
    fprintf(f, "<?xml version=\"1.0\" standalone=\"no\"?>\n"
               "<svg version=\"1.1\" width=\"%d\" height=\"%.0f\" viewBox=\"0 0 %d %.0f\" "
               "onload=\"init(evt)\" xmlns=\"http://www.w3.org/2000/svg\" "
               "data-pad=\"%d\" data-cw=\"%.3f\" data-total=\"%.17g\">\n",
            width, height, width, height, SVG_PAD, SVG_CHAR_W, total);
    fprintf(f, "<style type=\"text/css\">\n"
               "text { font-family: Verdana, sans-serif; font-size: %dpx; fill: rgb(0,0,0); }\n"
               "#frames text { pointer-events: none; }\n"
               "#frames g { cursor: pointer; }\n"
               "#frames g:hover rect { stroke: rgb(0,0,0); stroke-width: 0.5; }\n"
               ".parent { opacity: 0.5; }\n"
               "#title { font-size: 17px; text-anchor: middle; }\n"
               "#subtitle { text-anchor: middle; fill: rgb(80,80,80); }\n"
               "#unzoom { cursor: pointer; visibility: hidden; }\n"
               "#search { cursor: pointer; text-anchor: end; }\n"
               "#matched { text-anchor: end; }\n"
               "</style>\n",
            SVG_FONT);
    fprintf(f, "<script type=\"text/ecmascript\"><![CDATA[\n%s]]></script>\n", svg_script);
    fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%.0f\" fill=\"rgb(248,248,248)\"/>\n",
            width, height);

    // Title and subtitle.
    char buf[1024], h[48];
    if (o->title)
        snprintf(buf, sizeof buf, "%s", o->title);
    else
        snprintf(buf, sizeof buf, "%s flame graph: %s", c.diff ? "Differential heap" : "Heap",
                 svg_metric_names[o->metric]);
    char *clean = svg_clean(buf);
    if (!clean) {
        rc = -ENOMEM;
        goto out;
    }
    fprintf(f, "<text id=\"title\" x=\"%.1f\" y=\"24\">", width / 2.0);
    svg_esc(f, clean, false);
    free(clean);
    fputs("</text>\n", f);
    svg_human(h, sizeof h, total, svg_metric_units[o->metric]);
    int k = snprintf(buf, sizeof buf, "%s%stotal %s", p->exe && p->exe[0] ? p->exe : "",
                     p->exe && p->exe[0] ? ": " : "", h);
    if (c.diff) {
        char hb[48];
        svg_human(hb, sizeof hb, c.t.n[0].v[0][0], svg_metric_units[o->metric]);
        k += snprintf(buf + k, sizeof buf - (size_t)k, " (base %s); red grew, blue shrank", hb);
    }
    if ((size_t)k < sizeof buf)
        snprintf(buf + k, sizeof buf - (size_t)k, "%s",
                 p->sampled ? "; sampled, figures are estimates" : "; exact");
    clean = svg_clean(buf);
    if (!clean) {
        rc = -ENOMEM;
        goto out;
    }
    fprintf(f, "<text id=\"subtitle\" x=\"%.1f\" y=\"44\">", width / 2.0);
    svg_esc(f, clean, false);
    free(clean);
    fputs("</text>\n", f);
    fprintf(f, "<text id=\"unzoom\" x=\"%d\" y=\"24\">Reset Zoom</text>\n", SVG_PAD);
    fprintf(f, "<text id=\"search\" x=\"%d\" y=\"24\">Search</text>\n", width - SVG_PAD);
    fprintf(f, "<text id=\"details\" x=\"%d\" y=\"%.0f\"> </text>\n", SVG_PAD, height - 12);
    fprintf(f, "<text id=\"matched\" x=\"%d\" y=\"%.0f\"></text>\n", width - SVG_PAD,
            height - 12);

    // Frames, parents before children.
    fputs("<g id=\"frames\">\n", f);
    if (total > 0)
        for (uint32_t i = 0; i < c.t.count; i++) {
            const svg_node_t *nd = &c.t.n[i];
            if (nd->v[1][0] > 0 && nd->v[1][0] * c.scale >= min_px)
                svg_frame(&c, f, i, height);
        }
    fputs("</g>\n</svg>\n", f);
    if (fflush(f) == EOF || ferror(f))
        rc = -EIO;
out:
    svg_tree_free(&c.t);
    return rc;
}

void
ht_svg_opts_default(ht_svg_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->metric = HT_M_INUSE_SPACE;
    o->width = 1200;
    o->min_px = 0.1;
}

int
ht_svg_write(FILE *f, const ht_profile_t *p, const ht_svg_opts_t *o)
{
    return svg_write_impl(f, NULL, p, o);
}

int
ht_svg_write_diff(FILE *f, const ht_profile_t *base, const ht_profile_t *cur,
                  const ht_svg_opts_t *o)
{
    return svg_write_impl(f, base, cur, o);
}
