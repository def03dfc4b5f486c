#include "util/alloc.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Every block carries its size in a 64-byte header, so that free can recycle it. Large blocks
 * (key-switching scratch, ciphertext limbs) are kept in a small cache and handed out again for
 * the same size: the hot path then neither maps fresh pages nor faults them in. The cache holds at
 * most CACHE_BYTES; HECNN_ALLOC_CACHE_MB overrides it (0 disables). */
#define HEADER 64
#define CACHE_MIN_BLOCK (64 * 1024)
#define CACHE_SLOTS 64

static struct {
    pthread_mutex_t lock;
    size_t budget, held;
    size_t count;
    void *block[CACHE_SLOTS];
    size_t size[CACHE_SLOTS];
} cache = {.lock = PTHREAD_MUTEX_INITIALIZER};
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_init(void)
{
    const char *env = getenv("HECNN_ALLOC_CACHE_MB");
    cache.budget = (env && *env ? (size_t)strtoul(env, NULL, 10) : 512) << 20;
}

static size_t *size_of(void *p) { return (size_t *)((char *)p - HEADER); }

void *hecnn_alloc(size_t bytes)
{
    if (bytes == 0) bytes = 64;
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded < bytes || rounded > SIZE_MAX - HEADER) return NULL;
    if (rounded >= CACHE_MIN_BLOCK) {
        pthread_once(&cache_once, cache_init);
        pthread_mutex_lock(&cache.lock);
        for (size_t i = 0; i < cache.count; i++)
            if (cache.size[i] == rounded) {
                void *p = cache.block[i];
                cache.held -= rounded;
                cache.count--;
                cache.block[i] = cache.block[cache.count];
                cache.size[i] = cache.size[cache.count];
                pthread_mutex_unlock(&cache.lock);
                return p;
            }
        pthread_mutex_unlock(&cache.lock);
    }
    char *base = aligned_alloc(64, rounded + HEADER);
    if (!base) return NULL;
    *(size_t *)base = rounded;
    return base + HEADER;
}

void *hecnn_calloc(size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size) return NULL;
    void *p = hecnn_alloc(count * size);
    if (p) memset(p, 0, count * size);
    return p;
}

void hecnn_free(void *p)
{
    if (!p) return;
    size_t rounded = *size_of(p);
    if (rounded >= CACHE_MIN_BLOCK) {
        pthread_once(&cache_once, cache_init);
        pthread_mutex_lock(&cache.lock);
        if (cache.count < CACHE_SLOTS && cache.held + rounded <= cache.budget) {
            cache.block[cache.count] = p;
            cache.size[cache.count++] = rounded;
            cache.held += rounded;
            pthread_mutex_unlock(&cache.lock);
            return;
        }
        pthread_mutex_unlock(&cache.lock);
    }
    free(size_of(p));
}

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
    hecnn_free(p);
}

void hecnn_alloc_release_cache(void)
{
    pthread_mutex_lock(&cache.lock);
    for (size_t i = 0; i < cache.count; i++) free(size_of(cache.block[i]));
    cache.count = 0;
    cache.held = 0;
    pthread_mutex_unlock(&cache.lock);
}
