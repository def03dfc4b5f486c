/* RNS polynomials: `limbs` residue polynomials of n coefficients, limb-major, limb k reduced
 * modulo tab[k]->mod.q. A basis is an array of NTT tables, one per limb, so any subset of the
 * context's primes (Q_l, P, Q_l ∪ P) is described without copies. */
#ifndef HECNN_RING_RNS_H
#define HECNN_RING_RNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "math/ntt.h"
#include "util/random.h"

#define RNS_MAX_LIMBS 128

typedef struct rns_basis {
    size_t limbs;
    size_t n;
    const ntt_table *tab[RNS_MAX_LIMBS];
} rns_basis;

/* Limb-wise operations; inputs and outputs in [0, q); out may alias inputs. */
void rns_ntt(const rns_basis *b, uint64_t *a);
void rns_intt(const rns_basis *b, uint64_t *a);
void rns_add(const rns_basis *b, uint64_t *out, const uint64_t *x, const uint64_t *y);
void rns_sub(const rns_basis *b, uint64_t *out, const uint64_t *x, const uint64_t *y);
void rns_neg(const rns_basis *b, uint64_t *out, const uint64_t *x);
void rns_mul(const rns_basis *b, uint64_t *out, const uint64_t *x, const uint64_t *y);
void rns_mul_add(const rns_basis *b, uint64_t *acc, const uint64_t *x, const uint64_t *y);
/* out = x * c[k] in limb k (c[k] < q_k). */
void rns_mul_scalar(const rns_basis *b, uint64_t *out, const uint64_t *x, const uint64_t *c);
/* out = x + c[k] in every coefficient of limb k (adds a constant in NTT form). */
void rns_add_scalar(const rns_basis *b, uint64_t *out, const uint64_t *x, const uint64_t *c);
/* Small signed coefficients to RNS (coefficient form). */
void rns_from_small(const rns_basis *b, uint64_t *out, const int8_t *small);
/* True when every coefficient of limb k is below q_k. */
bool rns_in_range(const rns_basis *b, const uint64_t *a);

/* Fast basis conversion (approximate, no correction): for x with residues over `in`,
 * out_k = sum_i [x_i * (Q/q_i)^-1]_{q_i} * (Q/q_i) mod t_k, i.e. x + u*Q for a small u >= 0. */
typedef struct baseconv {
    rns_basis in, out;
    uint64_t *hat_inv;        /* [(Q/q_i)^-1]_{q_i}, in.limbs */
    uint64_t *hat_inv_shoup;
    uint64_t *hat_mod;        /* [Q/q_i * 2^64 * f]_{t_k} at [i * out.limbs + k], f = 1 or 2^64 */
} baseconv;

/* times_r: outputs are multiplied by 2^64 mod t_k (Montgomery form, for key switching). */
int baseconv_init(baseconv *bc, const rns_basis *in, const rns_basis *out, bool times_r);
void baseconv_free(baseconv *bc);
/* in: in.limbs limbs (coefficient form); out: out.limbs limbs (coefficient form). */
void baseconv_apply(const baseconv *bc, uint64_t *out, const uint64_t *in);
/* Only the first n_out output limbs (a prefix of the output basis). */
void baseconv_apply_prefix(const baseconv *bc, uint64_t *out, const uint64_t *in, size_t n_out);

/* Galois automorphism X -> X^g (g odd) in NTT (bit-reversed) form: out[i] = in[perm[i]]. */
void galois_ntt_permutation(size_t *perm, unsigned log_n, uint64_t g);
void rns_permute(const rns_basis *b, uint64_t *out, const uint64_t *in, const size_t *perm);

/* Samplers. Small outputs are coefficient vectors of n signed values. */
void sample_ternary(prng *p, int8_t *out, size_t n);
void sample_sparse_ternary(prng *p, int8_t *out, size_t n, size_t h);
/* Discrete Gaussian of std-dev sigma by a cumulative table, tail cut at ceil(6 sigma) (<= 127). */
void sample_gaussian(prng *p, int8_t *out, size_t n, double sigma);
/* Uniform residues (valid in either domain). The limb over tab's prime of the uniform polynomial
 * (seed, index): words of its stream (prng_init_limb) masked to the bits of q, kept when below q.
 * -1 when AES-CTR cannot be set up. */
int sample_uniform_limb(const uint8_t seed[HECNN_SEED_BYTES], uint16_t index, const ntt_table *tab, size_t n,
                        uint64_t *out);
/* The uniform polynomial (seed, index) over b: limb k from the stream (seed, index, q_k).
 * -1 when AES-CTR cannot be set up. */
int sample_uniform(const uint8_t seed[HECNN_SEED_BYTES], uint16_t index, const rns_basis *b, uint64_t *out);

#endif
