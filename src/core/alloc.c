#include "core/alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { LINE = 64 };

void *rn_alloc_lines(size_t count, size_t size)
{
    if (size && count > (SIZE_MAX - LINE) / size) return NULL;
    size_t bytes = count * size;
    bytes = bytes ? (bytes + LINE - 1) / LINE * LINE : LINE; /* aligned_alloc wants a multiple */
    return aligned_alloc(LINE, bytes);
}

void *rn_alloc_lines_zero(size_t count, size_t size)
{
    void *p = rn_alloc_lines(count, size);
    if (p) memset(p, 0, count * size);
    return p;
}
