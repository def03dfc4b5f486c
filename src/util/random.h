/* Randomness: 32-byte seeds from the OS CSPRNG, expanded by AES-256-CTR (OpenSSL).
 * A stream is named by (seed, domain, index) so that independent uses of one seed never
 * share keystream: e.g. the errors of digit j of a key are (seed, DOMAIN_ERROR, j). Uniform
 * polynomials have one stream per limb, named (seed, DOMAIN_UNIFORM, index, prime): a limb can be
 * expanded alone (in parallel, or only the limbs a lower level needs), and a limb over a given
 * prime is the same at every level. */
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
    DOMAIN_FLOOD = 6, /* decryption flooding noise */
};

typedef struct prng {
    void *cipher;                 /* EVP_CIPHER_CTX */
    uint8_t buf[8192];     /* keystream not yet consumed: buf[pos..) */
    size_t pos;
} prng;

/* 0 on success, -1 when the OS source fails. */
int random_os_seed(uint8_t seed[HECNN_SEED_BYTES]);
int prng_init(prng *p, const uint8_t seed[HECNN_SEED_BYTES], uint32_t domain, uint64_t index);
/* The stream of the limb over `prime` of the uniform polynomial (seed, index). */
int prng_init_limb(prng *p, const uint8_t seed[HECNN_SEED_BYTES], uint16_t index, uint64_t prime);
/* The first len bytes (a multiple of 16) of a stream nothing was read from yet, written straight
 * to out; reading goes on after them. */
void prng_fill_fresh(prng *p, void *out, size_t len);
void prng_bytes(prng *p, void *out, size_t len);
uint64_t prng_u64(prng *p);
void prng_free(prng *p);   /* wipes state */
/* Two independent seeds from one: [0] for public uniform data, [1] for secret data (errors). */
int prng_derive_seeds(uint8_t out[2][HECNN_SEED_BYTES], const uint8_t seed[HECNN_SEED_BYTES]);

#endif
