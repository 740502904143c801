// tests/e2e/prog_rec_cxx.cc -- C++ allocation: new[]/delete[] of 6001
// bytes (10, 9 deleted), new/delete of a 6008-byte object (5, all deleted),
// a std::vector<char> that reserves 6016 bytes (freed at exit of scope).
#include <unistd.h>
#include <vector>

struct Big {
    char b[6008];
};

static char *volatile keep;

int
main()
{
    char *a[10];
    for (int i = 0; i < 10; i++)
        a[i] = new char[6001];
    keep = a[0];
    for (int i = 1; i < 10; i++)
        delete[] a[i];
    Big *b[5];
    for (int i = 0; i < 5; i++)
        b[i] = new Big;
    for (int i = 0; i < 5; i++)
        delete b[i];
    {
        std::vector<char> v;
        v.reserve(6016);
        v.push_back('x');
    }
    if (write(1, "cxx ok\n", 7) != 7)
        return 1;
    return 0;
}
