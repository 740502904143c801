/* tests/unit/test_svg.c -- the SVG flame graph: well-formed XML (checked by
 * python3's parser), the expected frames, geometry and tooltips, escaping,
 * differential colors, pruning of tiny frames, and the embedded script. */
#include "formats/svg.h"
#include "tests/unit/fixture_profile.h"

#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the fixture (tests/unit/fixture_profile.h) with a hostile name ---- */

static ht_pstack_t fx_stacks[8];
static ht_profile_t fx;

static void
fx_build(double scale)
{
    static const ht_line_t odd = {"tmpl<a&b> \"q\" 'x' \xff\xfe]]> bad", "src/<p>.c", 7};
    double inuse[8] = {100300, 49400, 400, 30600, 10000, 5000, 3000, 4000};
    fx_profile_init(&fx, fx_stacks, 8, &odd);
    for (int i = 0; i < 8; i++) {
        fx_stacks[i].v[HT_M_INUSE_SPACE] = inuse[i] * scale;
        fx_stacks[i].v[HT_M_INUSE_OBJECTS] = 2 * scale;
    }
    fx.exe = "/usr/bin/app";
}

/* ---- reading the SVG back through a real XML parser ---- */

typedef struct frame_s {
    int d;
    double x, w, v;
    int r, g, b;
    char name[256];
    char title[1024];
    char text[256];
} frame_t;

static frame_t F[4096];
static int NF;
static char tmpdir[64];

// Parses the SVG with xml.dom.minidom (fails on anything not well-formed)
// and prints one tab-separated line per frame.
static const char py_frames[] =
    "import sys, xml.dom.minidom as M\n"
    "doc = M.parse(sys.argv[1])\n"
    "svg = doc.documentElement\n"
    "assert svg.tagName == 'svg' and svg.getAttribute('xmlns') == 'http://www.w3.org/2000/svg'\n"
    "assert svg.getElementsByTagName('script'), 'no script'\n"
    "fr = [g for g in svg.getElementsByTagName('g') if g.getAttribute('id') == 'frames'][0]\n"
    "for g in fr.getElementsByTagName('g'):\n"
    "    t = g.getElementsByTagName('title')[0].firstChild.data\n"
    "    r = g.getElementsByTagName('rect')[0]\n"
    "    tx = g.getElementsByTagName('text')[0]\n"
    "    txt = tx.firstChild.data if tx.firstChild else ''\n"
    "    assert abs(float(r.getAttribute('width')) - float(g.getAttribute('data-w'))) < 0.01\n"
    "    print('\\t'.join([g.getAttribute('data-d'), g.getAttribute('data-x'),\n"
    "          g.getAttribute('data-w'), g.getAttribute('data-v'),\n"
    "          r.getAttribute('fill')[4:-1], t.split('\\n')[0], t.replace('\\n', ' | '), txt]))\n";

static void
svg_parse(const char *path)
{
    char script[128], cmd[512];
    snprintf(script, sizeof script, "%s/frames.py", tmpdir);
    FILE *f = fopen(script, "w");
    ck_assert_ptr_nonnull(f);
    fputs(py_frames, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "python3 %s %s", script, path);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    char line[4096];
    NF = 0;
    while (fgets(line, sizeof line, p)) {
        ck_assert_int_lt(NF, 4096);
        frame_t *fr = &F[NF++];
        memset(fr, 0, sizeof *fr);
        char *fields[8], *save = NULL, *tok = strtok_r(line, "\t\n", &save);
        int n = 0;
        // strtok_r would merge empty fields; only the last one can be empty.
        while (tok && n < 8) {
            fields[n++] = tok;
            tok = strtok_r(NULL, "\t\n", &save);
        }
        ck_assert_int_ge(n, 7);
        fr->d = atoi(fields[0]);
        fr->x = atof(fields[1]);
        fr->w = atof(fields[2]);
        fr->v = atof(fields[3]);
        ck_assert_int_eq(sscanf(fields[4], "%d,%d,%d", &fr->r, &fr->g, &fr->b), 3);
        snprintf(fr->name, sizeof fr->name, "%s", fields[5]);
        snprintf(fr->title, sizeof fr->title, "%s", fields[6]);
        snprintf(fr->text, sizeof fr->text, "%s", n > 7 ? fields[7] : "");
    }
    ck_assert_msg(pclose(p) == 0, "the SVG is not well-formed XML (or lacks parts): %s", path);
}

static const frame_t *
find(const char *name, int depth)
{
    for (int i = 0; i < NF; i++)
        if (!strcmp(F[i].name, name) && (depth < 0 || F[i].d == depth))
            return &F[i];
    return NULL;
}

static void
write_svg(const char *path, const ht_profile_t *base, const ht_svg_opts_t *o)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    int rc = base ? ht_svg_write_diff(f, base, &fx, o) : ht_svg_write(f, &fx, o);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(fclose(f), 0);
}

static void
setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ht-test-svg.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void
teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "test_svg: could not remove %s\n", tmpdir);
}

START_TEST(test_svg_frames_and_tooltips)
{
    char path[128];
    snprintf(path, sizeof path, "%s/a.svg", tmpdir);
    fx_build(1);
    write_svg(path, NULL, NULL);
    svg_parse(path);

    const frame_t *all = find("all", 0);
    ck_assert_ptr_nonnull(all);
    ck_assert_double_eq_tol(all->v, 202700, 1e-6);
    ck_assert_double_eq_tol(all->x, 10, 1e-3);
    ck_assert_double_eq_tol(all->w, 1180, 1e-3);

    const frame_t *libc = find("__libc_start_main", 1), *mn = find("main", 2),
                  *outer = find("outer_fn", 3), *inner = find("inner_helper", 4),
                  *worker = find("worker", 3), *plug = find("libplug.so+0x3234", 3),
                  *unk = find("[unknown]", 1), *mal = find("malloc", 1);
    ck_assert(libc && mn && outer && inner && worker && plug && unk && mal);
    // Values: malloc trimmed from stack 1 (so it merges into stack 0's
    // path); operator new trimmed; the two worker sites merged.
    ck_assert_double_eq_tol(inner->v, 149700, 1e-6);
    ck_assert_double_eq_tol(outer->v, 149700, 1e-6);
    ck_assert_double_eq_tol(worker->v, 15000, 1e-6);
    ck_assert_double_eq_tol(mn->v, 195700, 1e-6);
    ck_assert_double_eq_tol(unk->v, 3000, 1e-6);
    ck_assert_double_eq_tol(mal->v, 4000, 1e-6);
    ck_assert_ptr_null(find("operator new(unsigned long)", -1));
    // Widths are proportional to values.
    ck_assert_double_eq_tol(inner->w, 1180.0 * 149700 / 202700, 0.01);
    // Children sit inside their parent, in name order; roots children too.
    ck_assert(unk->x < libc->x && libc->x < mal->x);
    ck_assert_double_eq_tol(unk->x, 10, 1e-3);
    ck_assert_double_eq_tol(mal->x + mal->w, 1190, 0.01);
    ck_assert(outer->x >= mn->x && outer->x + outer->w <= mn->x + mn->w + 0.01);
    ck_assert(plug->x < worker->x); // "libplug.." < "outer_fn" < ... < "worker"
    ck_assert(outer->x < worker->x);
    for (int i = 0; i < NF; i++)
        ck_assert(F[i].x >= 10 - 1e-3 && F[i].x + F[i].w <= 1190 + 0.01);

    // Tooltips: function, module, file:line, both figures, share.
    ck_assert_msg(strstr(inner->title, "inner_helper | module: app | at src/a.c:10 | "
                                       "inuse_space: 146 KiB (149700 bytes), 73.85% of the total | "
                                       "inuse_objects: 4"),
                  "%s", inner->title);
    ck_assert_msg(strstr(worker->title, "at src/w.c:20 and other lines"), "%s", worker->title);
    ck_assert(strstr(libc->title, "module: libc.so.6"));
    ck_assert(!strstr(libc->title, " at "));
    ck_assert(strstr(plug->title, "module: libplug.so"));
    // Labels: whole names where they fit, nothing where they do not.
    ck_assert_str_eq(inner->text, "inner_helper");
    ck_assert_str_eq(unk->text, "");
    // Colors: the program's frames warm (red high, blue low); libraries
    // get another hue.
    ck_assert_int_ge(inner->r, 205);
    ck_assert_int_le(inner->b, 55);
    ck_assert(libc->r != inner->r || libc->g != inner->g || libc->b != inner->b);
}
END_TEST

START_TEST(test_svg_escaping)
{
    char path[128];
    snprintf(path, sizeof path, "%s/e.svg", tmpdir);
    fx_build(1);
    ht_svg_opts_t o;
    ht_svg_opts_default(&o);
    o.lines = 1;
    o.title = "a <title> & \"quotes\" \x01";
    write_svg(path, NULL, &o);
    svg_parse(path); // well-formed despite <, &, quotes, ]]>, bad UTF-8
    // The hostile name comes back intact but for the two invalid bytes.
    const frame_t *h = find("tmpl<a&b> \"q\" 'x' ??]]> bad (src/<p>.c:7)", 3);
    ck_assert_msg(h != NULL, "hostile frame missing");
    ck_assert(strstr(h->title, "at src/<p>.c:7"));
    // With --lines the two worker sites are frames of their own.
    ck_assert_ptr_nonnull(find("worker (src/w.c:20)", 3));
    ck_assert_ptr_nonnull(find("worker (src/w.c:22)", 3));
    // The title is in the document, escaped.
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "python3 -c 'import sys,xml.dom.minidom as M; d=M.parse(sys.argv[1]); "
             "t=[e for e in d.getElementsByTagName(\"text\") if e.getAttribute(\"id\")==\"title\"];"
             "sys.exit(t[0].firstChild.data != \"a <title> & \\\"quotes\\\"  \")' %s",
             path);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(test_svg_diff)
{
    static ht_pstack_t base_stacks[8];
    char path[128];
    snprintf(path, sizeof path, "%s/d.svg", tmpdir);
    fx_build(1);
    memcpy(base_stacks, fx_stacks, sizeof base_stacks);
    ht_profile_t base = fx;
    base.stacks = base_stacks;
    base_stacks[0].v[HT_M_INUSE_SPACE] = 10300; // inner_helper grew by 90000
    base_stacks[4].v[HT_M_INUSE_SPACE] = 20000; // worker shrank: 25000 -> 15000
    write_svg(path, &base, NULL);
    svg_parse(path);
    const frame_t *inner = find("inner_helper", 4), *worker = find("worker", 3),
                  *mal = find("malloc", 1);
    ck_assert(inner && worker && mal);
    // Widths follow the new profile.
    ck_assert_double_eq_tol(inner->v, 149700, 1e-6);
    // Red for growth, blue for shrink, neutral for no change; the largest
    // change is the deepest color.
    ck_assert_int_eq(inner->r, 255);
    ck_assert_int_eq(inner->g, inner->b);
    ck_assert_int_lt(inner->g, 30);
    ck_assert_int_eq(worker->b, 255);
    ck_assert_int_eq(worker->r, worker->g);
    ck_assert_int_gt(worker->r, inner->g);
    ck_assert(mal->r == mal->g && mal->g == mal->b);
    ck_assert_msg(strstr(inner->title, "base inuse_space: 58.3 KiB (59700 bytes)"), "%s",
                  inner->title);
    ck_assert_msg(strstr(inner->title, "delta inuse_space: 87.9 KiB (90000 bytes) = +150.8%"),
                  "%s", inner->title);
    ck_assert_msg(strstr(worker->title, "delta inuse_space: -9.77 KiB (-10000 bytes) = -40.0%"),
                  "%s", worker->title);
}
END_TEST

START_TEST(test_svg_prunes_tiny_frames)
{
    // One heavy stack and 3000 light ones with distinct leaves: the light
    // ones are far below 0.1 px and must not bloat the file.
    enum { N = 3001 };
    static ht_line_t lines[N];
    static char names[N][16];
    static ht_location_t locs[N + 1];
    static uint32_t ids[N][2];
    static ht_pstack_t st[N];
    ht_line_t root = {"root_fn", "r.c", 1};
    locs[N] = (ht_location_t){0x1000, 0, 1, &root};
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "leaf_%d", i);
        lines[i] = (ht_line_t){names[i], NULL, 0};
        locs[i] = (ht_location_t){0x2000 + (uint64_t)i, 0, 1, &lines[i]};
        ids[i][0] = (uint32_t)i;
        ids[i][1] = N;
        st[i] = (ht_pstack_t){.nlocs = 2, .locs = ids[i]};
        st[i].v[HT_M_ALLOC_SPACE] = i == 0 ? 1e9 : 1;
    }
    ht_profile_t p = {.locs = locs, .nlocs = N + 1, .stacks = st, .nstacks = N};
    char path[128];
    snprintf(path, sizeof path, "%s/big.svg", tmpdir);
    FILE *f = fopen(path, "w");
    ht_svg_opts_t o;
    ht_svg_opts_default(&o);
    o.metric = HT_M_ALLOC_SPACE;
    ck_assert_int_eq(ht_svg_write(f, &p, &o), 0);
    fclose(f);
    svg_parse(path);
    ck_assert_int_eq(NF, 3); // all, root_fn, leaf_0
    ck_assert_ptr_nonnull(find("leaf_0", 2));
    for (int i = 0; i < NF; i++)
        ck_assert(F[i].w >= 0.1);
    // With no pruning every frame is drawn.
    o.min_px = 0;
    f = fopen(path, "w");
    ck_assert_int_eq(ht_svg_write(f, &p, &o), 0);
    fclose(f);
    svg_parse(path);
    ck_assert_int_eq(NF, N + 2);
}
END_TEST

START_TEST(test_svg_errors_and_empty)
{
    fx_build(1);
    ht_svg_opts_t o;
    ht_svg_opts_default(&o);
    o.metric = (ht_metric_t)HT_M_COUNT;
    FILE *f = fopen("/dev/null", "w");
    ck_assert_int_eq(ht_svg_write(f, &fx, &o), -EINVAL);
    fclose(f);
    f = fopen("/dev/full", "w");
    if (f) {
        ck_assert_int_eq(ht_svg_write(f, &fx, NULL), -EIO);
        fclose(f);
    }
    // A profile with nothing in the metric is still a valid, empty graph;
    // negative stacks (a profile of differences) are left out.
    char path[128];
    snprintf(path, sizeof path, "%s/empty.svg", tmpdir);
    fx_build(-1);
    write_svg(path, NULL, NULL);
    svg_parse(path);
    ck_assert_int_eq(NF, 0);
}
END_TEST

/* The embedded script, run by node against a minimal stand-in DOM built
 * from the parsed SVG: zoom places frames, search counts matched share
 * without double counting nested matches. Skipped without node. */
static const char py_dom[] =
    "import sys, json, xml.dom.minidom as M\n"
    "d = M.parse(sys.argv[1]).documentElement\n"
    "def conv(e):\n"
    "    if e.nodeType == e.TEXT_NODE or e.nodeType == e.CDATA_SECTION_NODE:\n"
    "        return {'text': e.data}\n"
    "    if e.nodeType != e.ELEMENT_NODE: return None\n"
    "    return {'tag': e.tagName, 'attrs': dict(e.attributes.items()),\n"
    "            'kids': [c for c in (conv(k) for k in e.childNodes) if c]}\n"
    "print(json.dumps(conv(d)))\n";

static const char js_harness[] =
    "const fs = require('fs');\n"
    "const tree = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));\n"
    "const byId = {};\n"
    "function El(n, parent) {\n"
    "  this.nodeName = n.tag; this.attrs = Object.assign({}, n.attrs); this.parentNode = parent;\n"
    "  this.style = {}; this.kids = []; this.cls = new Set();\n"
    "  const self = this;\n"
    "  this.classList = { add: c => self.cls.add(c), remove: c => self.cls.delete(c) };\n"
    "  this.text = '';\n"
    "  for (const k of n.kids) { if (k.tag) this.kids.push(new El(k, this)); else this.text += k.text; }\n"
    "  if (this.attrs.id) byId[this.attrs.id] = this;\n"
    "  this.firstChild = { nodeValue: this.text };\n"
    "}\n"
    "El.prototype.getAttribute = function (a) { return a in this.attrs ? this.attrs[a] : null; };\n"
    "El.prototype.setAttribute = function (a, v) { this.attrs[a] = String(v); };\n"
    "El.prototype.hasAttribute = function (a) { return a in this.attrs; };\n"
    "El.prototype.addEventListener = function () {};\n"
    "El.prototype.getElementsByTagName = function (t) {\n"
    "  let out = []; for (const k of this.kids) { if (k.nodeName === t) out.push(k);\n"
    "  out = out.concat(k.getElementsByTagName(t)); } return out; };\n"
    "Object.defineProperty(El.prototype, 'children', { get() { return this.kids; } });\n"
    "Object.defineProperty(El.prototype, 'textContent', {\n"
    "  get() { return this.text + this.kids.map(k => k.textContent).join(''); },\n"
    "  set(v) { this.text = v; this.kids = []; } });\n"
    "const root = new El(tree, null);\n"
    "global.document = { documentElement: root, getElementById: id => byId[id] };\n"
    "global.window = { addEventListener() {} };\n"
    "const code = root.getElementsByTagName('script')[0].text;\n"
    "require('vm').runInThisContext(code); // a script, as in a browser: globals stay global\n"
    "init({});\n"
    "const frames = byId.frames.kids;\n"
    "const nameOf = g => g.getElementsByTagName('title')[0].textContent.split('\\n')[0];\n"
    "const f = n => frames.find(g => nameOf(g) === n);\n"
    "const rect = g => g.getElementsByTagName('rect')[0];\n"
    "const out = [];\n"
    "zoom(f('outer_fn'));\n"
    "out.push(['zoom', rect(f('outer_fn')).attrs.x, rect(f('outer_fn')).attrs.width,\n"
    "  rect(f('inner_helper')).attrs.width, f('worker').style.display,\n"
    "  rect(f('main')).attrs.width, f('main').cls.has('parent') ? 'parent' : '-',\n"
    "  f('outer_fn').getElementsByTagName('text')[0].textContent].join(' '));\n"
    "unzoom();\n"
    "out.push(['unzoom', rect(f('outer_fn')).attrs.x, f('worker').style.display].join(' '));\n"
    "search(/_fn$|inner/);\n"
    "out.push(['search', byId.matched.textContent, rect(f('outer_fn')).attrs.fill].join(' '));\n"
    "search(null);\n"
    "out.push(['clear', rect(f('outer_fn')).attrs.fill === rect(f('outer_fn')).attrs['data-fill']].join(' '));\n"
    "console.log(out.join('\\n'));\n";

START_TEST(test_svg_script)
{
    if (system("command -v node >/dev/null 2>&1") != 0) {
        fprintf(stderr, "test_svg: node not found, skipping the script check\n");
        return;
    }
    char path[128], cmd[1024];
    snprintf(path, sizeof path, "%s/s.svg", tmpdir);
    fx_build(1);
    write_svg(path, NULL, NULL);
    char py[160], js[160], json[160];
    snprintf(py, sizeof py, "%s/dom.py", tmpdir);
    snprintf(js, sizeof js, "%s/harness.js", tmpdir);
    snprintf(json, sizeof json, "%s/s.json", tmpdir);
    FILE *f = fopen(py, "w");
    fputs(py_dom, f);
    fclose(f);
    f = fopen(js, "w");
    fputs(js_harness, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "python3 %s %s > %s && node %s %s", py, path, json, js, json);
    FILE *p = popen(cmd, "r");
    char out[4096] = "";
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    ck_assert_int_eq(pclose(p), 0);
    // Zoomed on outer_fn: it spans the width (10 .. 1190), its child too,
    // worker (not under it) hidden, main an ancestor at full width, faded.
    ck_assert_msg(strstr(out, "zoom 10.00 1180.00 1180.00 none 1180.00 parent outer_fn\n"), "%s",
                  out);
    // Unzoomed: back to the original place.
    // Unzoomed: back in place, after [unknown] (under the root) and the
    // plugin frame (under main), the siblings that sort before it.
    char want[128];
    snprintf(want, sizeof want, "unzoom %.2f \n", 10 + 1180.0 * (3000 + 30600) / 202700);
    ck_assert_msg(strstr(out, want), "want '%s' in:\n%s", want, out);
    // outer_fn and inner_helper both match, nested: counted once, 73.85%.
    snprintf(want, sizeof want, "search Matched: %.1f%% (2 frames) rgb(230,0,230)",
             100.0 * 149700 / 202700);
    ck_assert_msg(strstr(out, want), "want '%s' in:\n%s", want, out);
    ck_assert_msg(strstr(out, "clear true"), "%s", out);
}
END_TEST

Suite *
suite_svg(void)
{
    Suite *s = suite_create("svg");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_svg_frames_and_tooltips);
    tcase_add_test(tc, test_svg_escaping);
    tcase_add_test(tc, test_svg_diff);
    tcase_add_test(tc, test_svg_prunes_tiny_frames);
    tcase_add_test(tc, test_svg_errors_and_empty);
    tcase_add_test(tc, test_svg_script);
    suite_add_tcase(s, tc);
    return s;
}
