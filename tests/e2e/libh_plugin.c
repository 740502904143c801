/* A plugin that allocates on load and on request. */
#include <stdlib.h>

static void *held;

__attribute__((constructor)) static void
plugin_init(void)
{
    held = malloc(1111);
}

__attribute__((destructor)) static void
plugin_fini(void)
{
    free(held);
}

void *
plugin_make(size_t n)
{
    return malloc(n);
}
