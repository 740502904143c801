/* tests/e2e/librec_plugin.c -- loaded and unloaded by prog_rec_dlopen:
 * 4 allocations of 5001 bytes from inside the plugin, one kept. */
#include <stdlib.h>

void *
rec_plugin_work(void)
{
    void *p[4];
    for (int i = 0; i < 4; i++)
        p[i] = malloc(5001);
    for (int i = 1; i < 4; i++)
        free(p[i]);
    return p[0];
}
