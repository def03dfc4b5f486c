/* AVX2 NTT kernels (placeholder until the vector kernels land: delegates to portable). */
#include "math/ntt.h"

void ntt_forward_avx2(const ntt_table *t, uint64_t *a) { ntt_forward_portable(t, a); }
void ntt_inverse_avx2(const ntt_table *t, uint64_t *a) { ntt_inverse_portable(t, a); }
