/* Randomness: 32-byte seeds from the OS CSPRNG, expanded by AES-256-CTR (OpenSSL).
 * A stream is named by (seed, domain, index) so that independent uses of one seed never
 * share keystream: e.g. the uniform half of digit j of a key is (seed, DOMAIN_KEY_A, j). */
#ifndef HECNN_UTIL_RANDOM_H
#define HECNN_UTIL_RANDOM_H

#include <stddef.h>
#include <stdint.h>

#define HECNN_SEED_BYTES 32

enum random_domain {
    DOMAIN_SECRET = 1,
    DOMAIN_ERROR = 2,
    DOMAIN_UNIFORM = 3,
    DOMAIN_EPHEMERAL = 4,
    DOMAIN_SEED_DERIVE = 5,
};

typedef struct prng {
    void *cipher;                 /* EVP_CIPHER_CTX */
    uint8_t buf[8192];     /* keystream not yet consumed: buf[pos..) */
    size_t pos;
} prng;

/* 0 on success, -1 when the OS source fails. */
int random_os_seed(uint8_t seed[HECNN_SEED_BYTES]);
int prng_init(prng *p, const uint8_t seed[HECNN_SEED_BYTES], uint32_t domain, uint64_t index);
void prng_bytes(prng *p, void *out, size_t len);
uint64_t prng_u64(prng *p);
/* Up to `max` consecutive 64-bit words of keystream, read in place; the caller consumes them by
 * passing the count it used to prng_consume. The stream is the same as repeated prng_u64 calls.
 * *count is 0 when a word straddles the buffer's end: read that one with prng_u64. */
const uint8_t *prng_words(prng *p, size_t max, size_t *count);
void prng_consume(prng *p, size_t words);
void prng_free(prng *p);   /* wipes state */

#endif
