/* Signed 64-bit coefficients -> residues mod q, vectorized (AVX-512F/DQ): the quotient from a
 * double-precision estimate, then two corrections. Bit-identical to the scalar reduction. */
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

void lt_reduce_signed_avx512(uint64_t *dst, const int64_t *src, size_t count, uint64_t q);

void lt_reduce_signed_avx512(uint64_t *dst, const int64_t *src, size_t count, uint64_t q)
{
    /* |src| < 2^62, q < 2^61: the estimate floor(x / q) is off by at most one either way */
    const __m512d qinv = _mm512_set1_pd(1.0 / (double)q);
    const __m512i vq = _mm512_set1_epi64((long long)q), zero = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 8 <= count; i += 8) {
        __m512i x = _mm512_loadu_si512((const void *)(src + i));
        __m512d xd = _mm512_cvtepi64_pd(x);
        __m512i k = _mm512_cvt_roundpd_epi64(_mm512_mul_pd(xd, qinv), _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
        __m512i r = _mm512_sub_epi64(x, _mm512_mullo_epi64(k, vq));
        r = _mm512_mask_add_epi64(r, _mm512_cmplt_epi64_mask(r, zero), r, vq);
        r = _mm512_mask_sub_epi64(r, _mm512_cmpge_epi64_mask(r, vq), r, vq);
        r = _mm512_mask_add_epi64(r, _mm512_cmplt_epi64_mask(r, zero), r, vq);
        _mm512_storeu_si512((void *)(dst + i), r);
    }
    for (; i < count; i++) {
        int64_t x = src[i];
        int64_t k = (int64_t)__builtin_floor((double)x / (double)q);
        int64_t r = x - k * (int64_t)q;
        if (r < 0) r += (int64_t)q;
        if (r >= (int64_t)q) r -= (int64_t)q;
        if (r < 0) r += (int64_t)q;
        dst[i] = (uint64_t)r;
    }
}
