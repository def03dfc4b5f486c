#include "util/alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void *hecnn_alloc(size_t bytes)
{
    if (bytes == 0) bytes = 64;
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded < bytes) return NULL;
    return aligned_alloc(64, rounded);
}

void *hecnn_calloc(size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size) return NULL;
    void *p = hecnn_alloc(count * size);
    if (p) memset(p, 0, count * size);
    return p;
}

void hecnn_free(void *p) { free(p); }

void hecnn_secure_wipe(void *p, size_t bytes)
{
    if (!p) return;
    volatile unsigned char *v = p;
    while (bytes--) *v++ = 0;
    __asm__ __volatile__("" ::"r"(p) : "memory");
}

void hecnn_secure_free(void *p, size_t bytes)
{
    hecnn_secure_wipe(p, bytes);
    free(p);
}
