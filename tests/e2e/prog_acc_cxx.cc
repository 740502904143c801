// C++ new and new[] leaks of known sizes (t_accuracy.sh).
#include <cstdio>

struct Obj {
    char payload[48];
};

static Obj *volatile keep_obj;
static int *volatile keep_arr;

__attribute__((noinline)) static void
leak_new()
{
    for (int i = 0; i < 2; i++)
        keep_obj = new Obj(); // 2 x 48
}

__attribute__((noinline)) static void
leak_new_array()
{
    keep_arr = new int[25]; // 100
}

int
main()
{
    leak_new();
    leak_new_array();
    int *tmp = new int[1000]; // freed: not a leak
    delete[] tmp;
    return 0;
}
