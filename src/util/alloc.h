/* The one allocator family: 64-byte aligned, with a wiping free for secrets. */
#ifndef HECNN_UTIL_ALLOC_H
#define HECNN_UTIL_ALLOC_H

#include <stddef.h>

void *hecnn_alloc(size_t bytes);          /* aligned to 64 bytes; NULL on failure or overflow */
void *hecnn_calloc(size_t count, size_t size);
void hecnn_free(void *p);                 /* NULL is a no-op */
void hecnn_secure_wipe(void *p, size_t bytes);
void hecnn_secure_free(void *p, size_t bytes); /* wipe, then free */
/* Bytes handed out and not yet freed (cached blocks excluded), now and at most since the last
 * reset: what a computation holds, for memory plans and their tests. */
void hecnn_alloc_stats(size_t *live, size_t *peak);
void hecnn_alloc_reset_peak(void);
/* The most bytes the cache of freed blocks may keep. */
size_t hecnn_alloc_cache_limit(void);
/* Return the cached free blocks to the system (see alloc.c). */
void hecnn_alloc_release_cache(void);

#endif
