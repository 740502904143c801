#!/bin/bash
# The layer rules of STYLE.md, checked over the #include lines:
#  - formats/trace*  include libc headers and formats/trace*.h only;
#  - libheaptrace    includes itself and formats/trace*.h only;
#  - analyzer        never includes libheaptrace/;
#  - writers (formats/pprof|svg|collapsed) include the analyzer's profile only.
set -u
cd "$TOP"
bad=0
check() { # file pattern-of-allowed-project-includes
    local f=$1 allowed=$2
    while read -r inc; do
        [[ "$inc" =~ $allowed ]] && continue
        echo "layer violation: $f includes \"$inc\""; bad=1
    done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
}
for f in formats/trace*.[ch]; do check "$f" '^formats/trace(file)?\.h$'; done
for f in libheaptrace/*.[ch]; do check "$f" '^(libheaptrace/|formats/trace(file)?\.h$|include/heaptrace\.h$)'; done
for f in analyzer/*.[ch]; do check "$f" '^(analyzer/|formats/)'; done
for f in formats/pprof.[ch] formats/svg.[ch] formats/collapsed.[ch]; do
    [ -f "$f" ] && check "$f" '^(formats/(pprof|svg|collapsed)\.h|analyzer/(profile|diff)\.h)$'
done
# The shim must export nothing but the interposed family and heaptrace_*.
if [ -f "$BUILD/libheaptrace.so" ]; then
    extra=$(nm -D --defined-only "$BUILD/libheaptrace.so" | awk '{print $3}' |
        grep -Ev '^(malloc|free|calloc|realloc|reallocarray|posix_memalign|aligned_alloc|memalign|valloc|pvalloc|dlopen|dlclose|_exit|_Exit|heaptrace_.*)$' |
        grep -Ev '^(_init|_fini|_edata|_end|__bss_start)$' || true)
    [ -n "$extra" ] && { echo "shim exports internal symbols: $extra"; bad=1; }
fi
[ $bad -eq 0 ] && echo "layers ok"
exit $bad
