#include "util/alloc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

/* Every block carries its capacity in a 64-byte header, so that free can recycle it. Large blocks
 * (key-switching scratch, ciphertext limbs) are kept in a bounded cache and handed out again for
 * any request they fit with little slack (at most a quarter): the sizes of a computation vary with
 * its level, and the hot path then neither maps fresh pages nor faults them in. When the cache is
 * full, a newly freed block evicts the oldest ones, so the cache follows the sizes in current use.
 * The cache holds at most HECNN_ALLOC_CACHE_MB (default 256; 0 disables). */
#define HEADER 64
#define CACHE_MIN_BLOCK (64 * 1024)
#define CACHE_SLOTS 128

static struct {
    pthread_mutex_t lock;
    size_t budget, held;
    size_t count;                   /* entries [0, count), oldest first */
    void *block[CACHE_SLOTS];
} cache = {.lock = PTHREAD_MUTEX_INITIALIZER};
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static _Atomic size_t live_bytes, peak_bytes;
static void cache_init(void);

static void count_alloc(size_t capacity)
{
    const size_t now = atomic_fetch_add_explicit(&live_bytes, capacity, memory_order_relaxed) + capacity;
    size_t peak = atomic_load_explicit(&peak_bytes, memory_order_relaxed);
    while (now > peak && !atomic_compare_exchange_weak_explicit(&peak_bytes, &peak, now, memory_order_relaxed,
                                                                memory_order_relaxed)) {
    }
}

void hecnn_alloc_stats(size_t *live, size_t *peak)
{
    if (live) *live = atomic_load_explicit(&live_bytes, memory_order_relaxed);
    if (peak) *peak = atomic_load_explicit(&peak_bytes, memory_order_relaxed);
}

size_t hecnn_alloc_cache_limit(void)
{
    pthread_once(&cache_once, cache_init);
    return cache.budget;
}

void hecnn_alloc_reset_peak(void)
{
    atomic_store_explicit(&peak_bytes, atomic_load_explicit(&live_bytes, memory_order_relaxed), memory_order_relaxed);
}

static void cache_init(void)
{
    const char *env = getenv("HECNN_ALLOC_CACHE_MB");
    cache.budget = (env && *env ? (size_t)strtoul(env, NULL, 10) : 256) << 20;
}

static size_t *capacity_of(void *p) { return (size_t *)((char *)p - HEADER); }

/* Removes entry i, keeping the others in age order. Caller holds the lock. */
static void *cache_take(size_t i)
{
    void *p = cache.block[i];
    cache.held -= *capacity_of(p);
    memmove(&cache.block[i], &cache.block[i + 1], (cache.count - i - 1) * sizeof cache.block[0]);
    cache.count--;
    return p;
}

/* The smallest cached block that holds `rounded` bytes with at most a quarter to spare. */
static void *cache_get(size_t rounded)
{
    pthread_once(&cache_once, cache_init);
    pthread_mutex_lock(&cache.lock);
    size_t best = SIZE_MAX, best_capacity = rounded + rounded / 4 + 1;
    for (size_t i = 0; i < cache.count; i++) {
        const size_t c = *capacity_of(cache.block[i]);
        if (c >= rounded && c < best_capacity) best = i, best_capacity = c;
    }
    void *p = best == SIZE_MAX ? NULL : cache_take(best);
    pthread_mutex_unlock(&cache.lock);
    return p;
}

/* Keeps a freed block, evicting the oldest entries to make room; false when it cannot fit. */
static bool cache_put(void *p)
{
    const size_t capacity = *capacity_of(p);
    pthread_once(&cache_once, cache_init);
    if (capacity > cache.budget) return false;
    void *evicted[CACHE_SLOTS];
    size_t n_evicted = 0;
    pthread_mutex_lock(&cache.lock);
    while (cache.count == CACHE_SLOTS || cache.held + capacity > cache.budget) evicted[n_evicted++] = cache_take(0);
    cache.block[cache.count++] = p;
    cache.held += capacity;
    pthread_mutex_unlock(&cache.lock);
    for (size_t i = 0; i < n_evicted; i++) free(capacity_of(evicted[i]));
    return true;
}

void *hecnn_alloc(size_t bytes)
{
    if (bytes == 0) bytes = 64;
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded < bytes || rounded > SIZE_MAX - HEADER) return NULL;
    if (rounded >= CACHE_MIN_BLOCK) {
        void *p = cache_get(rounded);
        if (p) {
            count_alloc(*capacity_of(p));
            return p;
        }
    }
    char *base = aligned_alloc(64, rounded + HEADER);
    if (!base) return NULL;
    *(size_t *)base = rounded;
    count_alloc(rounded);
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
    atomic_fetch_sub_explicit(&live_bytes, *capacity_of(p), memory_order_relaxed);
    if (*capacity_of(p) >= CACHE_MIN_BLOCK && cache_put(p)) return;
    free(capacity_of(p));
}

/* OPENSSL_cleanse: a wipe the compiler cannot remove as a dead store, whatever it inlines. */
void hecnn_secure_wipe(void *p, size_t bytes)
{
    if (p && bytes) OPENSSL_cleanse(p, bytes);
}

void hecnn_secure_free(void *p, size_t bytes)
{
    hecnn_secure_wipe(p, bytes);
    hecnn_free(p);
}

void hecnn_alloc_release_cache(void)
{
    pthread_mutex_lock(&cache.lock);
    for (size_t i = 0; i < cache.count; i++) free(capacity_of(cache.block[i]));
    cache.count = 0;
    cache.held = 0;
    pthread_mutex_unlock(&cache.lock);
}
