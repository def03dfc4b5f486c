#include "util/random.h"

#include <errno.h>
#include <openssl/evp.h>
#include <string.h>
#include <sys/random.h>

#include "util/alloc.h"

int random_os_seed(uint8_t seed[HECNN_SEED_BYTES])
{
    size_t got = 0;
    while (got < HECNN_SEED_BYTES) {
        ssize_t r = getrandom(seed + got, HECNN_SEED_BYTES - got, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

static void refill(prng *p)
{
    static const uint8_t zeros[sizeof p->buf];
    int outl = 0;
    EVP_EncryptUpdate(p->cipher, p->buf, &outl, zeros, (int)sizeof p->buf);
    p->pos = 0;
}

/* The counter block is the IV incremented as a 128-bit big-endian number: it starts at 0 in the
 * last 4 bytes, 2^32 blocks (64 GiB) before it could reach the name in the first 12. */
static int init_iv(prng *p, const uint8_t seed[HECNN_SEED_BYTES], const uint8_t iv[16])
{
    p->cipher = EVP_CIPHER_CTX_new();
    if (!p->cipher || EVP_EncryptInit_ex(p->cipher, EVP_aes_256_ctr(), NULL, seed, iv) != 1) {
        EVP_CIPHER_CTX_free(p->cipher);
        p->cipher = NULL;
        return -1;
    }
    p->pos = sizeof p->buf; /* empty: filled on first read */
    return 0;
}

/* IV: domain (4 bytes LE) | index (8 LE) | counter (4). */
int prng_init(prng *p, const uint8_t seed[HECNN_SEED_BYTES], uint32_t domain, uint64_t index)
{
    uint8_t iv[16] = {0};
    for (int i = 0; i < 4; i++) iv[i] = (uint8_t)(domain >> (8 * i));
    for (int i = 0; i < 8; i++) iv[4 + i] = (uint8_t)(index >> (8 * i));
    return init_iv(p, seed, iv);
}

/* IV: DOMAIN_UNIFORM (2 bytes LE) | index (2 LE) | prime (8 LE) | counter (4). The first byte is
 * DOMAIN_UNIFORM, which no other domain's IV starts with. */
int prng_init_limb(prng *p, const uint8_t seed[HECNN_SEED_BYTES], uint16_t index, uint64_t prime)
{
    uint8_t iv[16] = {0};
    iv[0] = DOMAIN_UNIFORM;
    iv[2] = (uint8_t)index;
    iv[3] = (uint8_t)(index >> 8);
    for (int i = 0; i < 8; i++) iv[4 + i] = (uint8_t)(prime >> (8 * i));
    return init_iv(p, seed, iv);
}

void prng_fill_fresh(prng *p, void *out, size_t len)
{
    int outl = 0;
    memset(out, 0, len);
    EVP_EncryptUpdate(p->cipher, out, &outl, out, (int)len);
}

void prng_bytes(prng *p, void *out, size_t len)
{
    uint8_t *o = out;
    while (len) {
        if (p->pos == sizeof p->buf) refill(p);
        size_t take = sizeof p->buf - p->pos;
        if (take > len) take = len;
        memcpy(o, p->buf + p->pos, take);
        p->pos += take;
        o += take;
        len -= take;
    }
}

uint64_t prng_u64(prng *p)
{
    uint64_t v;
    if (p->pos + 8 <= sizeof p->buf) {
        memcpy(&v, p->buf + p->pos, 8);
        p->pos += 8;
        return v;
    }
    prng_bytes(p, &v, 8);
    return v;
}

int prng_derive_seeds(uint8_t out[2][HECNN_SEED_BYTES], const uint8_t seed[HECNN_SEED_BYTES])
{
    prng p;
    if (prng_init(&p, seed, DOMAIN_SEED_DERIVE, 0)) return -1;
    prng_bytes(&p, out, 2 * HECNN_SEED_BYTES);
    prng_free(&p);
    return 0;
}

void prng_free(prng *p)
{
    if (!p) return;
    EVP_CIPHER_CTX_free(p->cipher);
    hecnn_secure_wipe(p->buf, sizeof p->buf);
    p->cipher = NULL;
}
