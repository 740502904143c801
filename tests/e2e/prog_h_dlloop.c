/* dlopen/dlclose a plugin that allocates, N times (argv[2], default 1000),
 * alternately with RTLD_DEEPBIND. Each round leaks one 5555-byte block
 * made by the plugin's plugin_make(). Usage: prog_h_dlloop PLUGIN.so [N] */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

int
main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    int n = argc > 2 ? atoi(argv[2]) : 1000;
    for (int i = 0; i < n; i++) {
        void *h = dlopen(argv[1], RTLD_NOW | (i % 2 ? RTLD_DEEPBIND : 0));
        if (!h) {
            fprintf(stderr, "dlopen: %s\n", dlerror());
            return 1;
        }
        void *(*make)(size_t) = (void *(*)(size_t))dlsym(h, "plugin_make");
        if (!make || !make(5555))
            return 1;
        dlclose(h);
    }
    printf("dlloop ok %d\n", n);
    return 0;
}
