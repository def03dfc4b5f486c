/* Kernels on residues below 2^60 from 30 x 30-bit products, shared by rns_avx2.c (4 lanes) and
 * rns_avx512.c (8 lanes), which define before including this file: the vector type `vec`, its
 * lane count VL, and ld, st, put (store, non-temporal when asked), set1, add, sub, mul32
 * (_mm*_mul_epu32), vand, srli, csub (a mod b for a in [0, 2b), a and b below 2^63), and the
 * multiplication by 2^-4 mod t of ip_emul (V < 8t, V < 2^63): fix_2m4_consts, fix_2m4_make(m),
 * fix_2m4(V, &consts).
 *
 * A residue a < 2^60 is a0 + a1 2^30 with a0, a1 < 2^30, so a product is four _mm*_mul_epu32
 * below 2^60 each, and sums of products are kept as three 64-bit digit sums,
 * S = D0 + D1 2^30 + D2 2^60. Montgomery reduction works digit by digit in radix 2^30:
 * m = D0 (-t^-1) mod 2^30, D0 + m t = 0 mod 2^30, the carry and m t1 go to D1, and so on; after
 * k steps the value is (S + M t) / 2^(30 k) < S / 2^(30 k) + t. */
#ifndef HECNN_RING_RNS_EMUL30_H
#define HECNN_RING_RNS_EMUL30_H

#define MASK30 (((uint64_t)1 << 30) - 1)

typedef struct vmont30 {
    vec t, t2, t0, t1, ninv, m30;
} vmont30;

static inline vmont30 mont30_make(uint64_t t, uint64_t ninv)
{
    return (vmont30){set1(t), set1(2 * t), set1(t & MASK30), set1(t >> 30), set1(ninv), set1(MASK30)};
}

/* One radix-2^30 Montgomery step: Dlo + m t = 0 mod 2^30, carried into Dhi. */
AI void mont30_step(vec *Dlo, vec *Dhi, const vmont30 *c)
{
    const vec m = vand(mul32(*Dlo, c->ninv), c->m30);
    const vec lo = add(*Dlo, mul32(m, c->t0));
    *Dhi = add(*Dhi, add(srli(lo, 30), mul32(m, c->t1)));
}

/* D += a b with a = (A0, A1), b = (B0, B1) in 30-bit pieces. */
#define MAC30(D0, D1, D2, A0, A1, B0, B1)                  \
    do {                                                   \
        D0 = add(D0, mul32(A0, B0));                       \
        D1 = add(D1, add(mul32(A0, B1), mul32(A1, B0)));   \
        D2 = add(D2, mul32(A1, B1));                       \
    } while (0)

/* S 2^-90 mod t in [0, t), t < 2^60: three steps (D3 = 0). With at most rns_bc_terms30() terms
 * no digit sum overflows, and the result is below S 2^-90 + t < 2t. */
AI vec redc90(vec D0, vec D1, vec D2, const vmont30 *c)
{
    vec D3 = set1(0);
    mont30_step(&D0, &D1, c);
    mont30_step(&D1, &D2, c);
    mont30_step(&D2, &D3, c);
    return csub(D3, c->t);
}

/* (S + M t) / 2^60 = S 2^-60 mod t, below S 2^-60 + t (not reduced). */
AI vec redc60(vec D0, vec D1, vec D2, const vmont30 *c)
{
    mont30_step(&D0, &D1, c);
    mont30_step(&D1, &D2, c);
    return D2;
}

/* a b 2^-60 mod t for a < 2^62, b = (B0, B1) < 2^60 split: below a b 2^-60 + t. */
AI vec mont30_mul(vec a, vec B0, vec B1, const vmont30 *c)
{
    vec D0 = set1(0), D1 = D0, D2 = D0;
    MAC30(D0, D1, D2, vand(a, c->m30), srli(a, 30), B0, B1);
    return redc60(D0, D1, D2, c);
}

/* A Montgomery product V = S 2^-60 mod t with V < 3t (S < 2 t^2) times R = [2^120]_t: S mod t,
 * since V R 2^-60 < 3 t^2 2^-60 + t < 4t takes two conditional subtractions. */
AI vec mont30_fix(vec V, const vec *R, const vmont30 *c)
{
    const vec r = mont30_mul(V, R[0], R[1], c);
    return csub(csub(r, c->t2), c->t);
}

/* ---------------------------------------------------------------- basis conversion */

/* Outputs for a target t < 2^60 from sources below 2^60, by 30-bit pieces (y0 = y mod 2^30,
 * y1 = y >> 30 precomputed): sums of rns_bc_terms30() terms (7..15), h_i = [Q/q_i 2^90 f]_t. */
static void bc_target_emul(uint64_t *o, const uint64_t *y0, const uint64_t *y1, size_t stride, size_t ni,
                           const uint64_t *h, size_t no, const modulus *mk, size_t lv, int nt, uint64_t y1max)
{
    const size_t terms = rns_bc_terms30(y1max, mk->q);
    const vmont30 c = mont30_make(mk->q, mk->mont_neg_inv);
    const vec z = set1(0);
    uint64_t hs[2 * RNS_MAX_LIMBS];
    for (size_t i = 0; i < ni; i++) hs[2 * i] = h[i * no] & MASK30, hs[2 * i + 1] = h[i * no] >> 30;
    for (size_t i0 = 0; i0 < ni; i0 += terms) {
        const size_t i1 = i0 + terms < ni ? i0 + terms : ni;
        const int last = i1 == ni;
        size_t x = 0;
        for (; x + 2 * VL <= lv; x += 2 * VL) {
            vec D0 = z, D1 = z, D2 = z, E0 = z, E1 = z, E2 = z;
            const uint64_t *a = y0 + i0 * stride + x, *b = y1 + i0 * stride + x;
#pragma GCC unroll 15
            for (size_t i = i0; i < i1; i++, a += stride, b += stride) {
                const vec H0 = set1(hs[2 * i]), H1 = set1(hs[2 * i + 1]);
                MAC30(D0, D1, D2, ld(a), ld(b), H0, H1);
                MAC30(E0, E1, E2, ld(a + VL), ld(b + VL), H0, H1);
            }
            vec r = redc90(D0, D1, D2, &c), s = redc90(E0, E1, E2, &c);
            if (i0) {
                r = csub(add(ld(o + x), r), c.t);
                s = csub(add(ld(o + x + VL), s), c.t);
            }
            put(o + x, r, nt && last);
            put(o + x + VL, s, nt && last);
        }
        for (; x < lv; x += VL) {
            vec D0 = z, D1 = z, D2 = z;
            for (size_t i = i0; i < i1; i++)
                MAC30(D0, D1, D2, ld(y0 + i * stride + x), ld(y1 + i * stride + x), set1(hs[2 * i]), set1(hs[2 * i + 1]));
            vec r = redc90(D0, D1, D2, &c);
            if (i0) r = csub(add(ld(o + x), r), c.t);
            put(o + x, r, nt && last);
        }
    }
}

/* ---------------------------------------------------------------- key-switching inner product */

/* t < 2^60, count <= 7: two radix-2^30 steps give V = S 2^-60 mod t with V < S 2^-60 + t < 8t
 * (S < 7 t^2); the including file's fix_2m4(V) multiplies by 2^-4 mod t into [0, t). */
static void ip_emul(uint64_t *out0, uint64_t *out1, const uint64_t *const *x, const uint64_t *const *k0,
                    const uint64_t *const *k1, unsigned count, size_t n, const modulus *m, bool accumulate)
{
    const vmont30 c = mont30_make(m->q, m->mont_neg_inv);
    const fix_2m4_consts f = fix_2m4_make(m);
    size_t i = 0;
    for (; i + VL <= n; i += VL) {
        vec A0 = set1(0), A1 = A0, A2 = A0, B0 = A0, B1 = A0, B2 = A0;
#pragma GCC unroll 7
        for (unsigned j = 0; j < count; j++) {
            const vec X = ld(x[j] + i), K = ld(k0[j] + i), L = ld(k1[j] + i);
            const vec X0 = vand(X, c.m30), X1 = srli(X, 30);
            MAC30(A0, A1, A2, X0, X1, vand(K, c.m30), srli(K, 30));
            MAC30(B0, B1, B2, X0, X1, vand(L, c.m30), srli(L, 30));
        }
        vec r0 = fix_2m4(redc60(A0, A1, A2, &c), &f), r1 = fix_2m4(redc60(B0, B1, B2, &c), &f);
        if (accumulate) {
            r0 = csub(add(ld(out0 + i), r0), c.t);
            r1 = csub(add(ld(out1 + i), r1), c.t);
        }
        st(out0 + i, r0);
        st(out1 + i, r1);
    }
    for (; i < n; i++) rns_ip_scalar(out0, out1, x, k0, k1, count, i, m, accumulate);
}

/* ---------------------------------------------------------------- products of residues */

/* Two Montgomery products: V = a b 2^-60 (< 2t for a b < t^2, < 3t for a sum of two), then
 * V [2^120]_t 2^-60 = a b mod t, below 3t before the subtractions. */
static void tensor_emul(uint64_t *d0, uint64_t *d1, uint64_t *d2, const uint64_t *a0, const uint64_t *a1,
                        const uint64_t *b0, const uint64_t *b1, size_t n, const modulus *m)
{
    const vmont30 c = mont30_make(m->q, m->mont_neg_inv);
    const uint64_t r2 = reduce128((u128)1 << 120, m);
    const vec R[2] = {set1(r2 & MASK30), set1(r2 >> 30)}, z = set1(0);
    size_t i = 0;
    for (; i + VL <= n; i += VL) {
        const vec X = ld(a0 + i), Y = ld(a1 + i), U = ld(b0 + i), W = ld(b1 + i);
        const vec X0 = vand(X, c.m30), X1 = srli(X, 30), Y0 = vand(Y, c.m30), Y1 = srli(Y, 30);
        const vec U0 = vand(U, c.m30), U1 = srli(U, 30), W0 = vand(W, c.m30), W1 = srli(W, 30);
        vec A0 = z, A1 = z, A2 = z, B0 = z, B1 = z, B2 = z, C0 = z, C1 = z, C2 = z;
        MAC30(A0, A1, A2, X0, X1, U0, U1);
        MAC30(B0, B1, B2, X0, X1, W0, W1);
        MAC30(B0, B1, B2, Y0, Y1, U0, U1);
        MAC30(C0, C1, C2, Y0, Y1, W0, W1);
        st(d0 + i, mont30_fix(redc60(A0, A1, A2, &c), R, &c));
        st(d1 + i, mont30_fix(redc60(B0, B1, B2, &c), R, &c));
        st(d2 + i, mont30_fix(redc60(C0, C1, C2, &c), R, &c));
    }
    rns_tensor_portable(d0 + i, d1 + i, d2 + i, a0 + i, a1 + i, b0 + i, b1 + i, n - i, m);
}

static void mul_emul(uint64_t *out, const uint64_t *x, const uint64_t *y, size_t n, const modulus *m)
{
    const vmont30 c = mont30_make(m->q, m->mont_neg_inv);
    const uint64_t r2 = reduce128((u128)1 << 120, m);
    const vec R[2] = {set1(r2 & MASK30), set1(r2 >> 30)};
    size_t i = 0;
    for (; i + VL <= n; i += VL) {
        const vec Y = ld(y + i);
        st(out + i, mont30_fix(mont30_mul(ld(x + i), vand(Y, c.m30), srli(Y, 30), &c), R, &c));
    }
    rns_mul_portable(out + i, x + i, y + i, n - i, m);
}

#endif
