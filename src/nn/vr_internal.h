/* Helpers shared by the Volley Revolver primitives and the MNIST network. */
#ifndef HECNN_NN_VR_INTERNAL_H
#define HECNN_NN_VR_INTERNAL_H

#include "hecnn/nn.h"

/* The i-th ciphertext prime as a double (the scale a mask or weight is encoded at so that the
 * following rescale restores the other operand's scale exactly). */
double vr_q(const ckks_context *ctx, unsigned level);

/* Encode S slot values at `level`, `scale` into a fresh plaintext. */
hecnn_status vr_encode_new(const ckks_context *ctx, ckks_plaintext **out, const double *values, unsigned level,
                           double scale);
/* out = rescale(in * mask), mask given as S values encoded at in's level with scale q_level. */
hecnn_status vr_mul_mask(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *in, const double *mask);
/* out += in, or out = in when *first is set (clears it). */
hecnn_status vr_accumulate(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *in, bool *first);
/* out = in * op, without rescale (relinearized when op is a ciphertext). Values are encoded at in's
 * level with scale q_level. */
hecnn_status vr_mul_operand(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *in,
                            const hecnn_vr_operand *op);
/* out = in + op (plaintext, ciphertext or values at in's scale). */
hecnn_status vr_add_operand(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *in,
                            const hecnn_vr_operand *op);
/* Allocate `count` ciphertexts (NULL-initialised array on failure paths). */
hecnn_status vr_ct_array_new(const ckks_context *ctx, ckks_ciphertext ***out, size_t count);
void vr_ct_array_free(ckks_ciphertext **arr, size_t count);

#endif
