/* tests/e2e/prog_rec_dlopen.c -- dlopen(argv[1]), call rec_plugin_work,
 * dlclose; the block it returned stays allocated. */
#include <dlfcn.h>
#include <stdio.h>
#include <unistd.h>

static void *volatile sink;

int
main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    void *h = dlopen(argv[1], RTLD_NOW);
    if (!h) {
        fprintf(stderr, "%s\n", dlerror());
        return 1;
    }
    void *(*fn)(void) = (void *(*)(void))dlsym(h, "rec_plugin_work");
    if (!fn)
        return 1;
    sink = fn();
    if (dlclose(h) != 0)
        return 1;
    (void)!write(1, "dlopen ok\n", 10);
    return 0;
}
