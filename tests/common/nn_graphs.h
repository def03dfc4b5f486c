/* Small networks for the packing tests: graph builders with random weights (test_rng), the
 * calibration the tool does (ranges from the exact run at margin 1.5, a degree-7 Chebyshev ReLU), and
 * the N = 2^12 bootstrapping test chain. Failures are CHECKs. */
#ifndef HECNN_TESTS_NN_GRAPHS_H
#define HECNN_TESTS_NN_GRAPHS_H

#include <stddef.h>
#include <stdint.h>

#include "hecnn/circuits.h"
#include "hecnn/graph.h"

double test_relu(double x, void *arg);
void test_random_fill(double *v, size_t n, double scale);
/* conv k x k (cin, cout <= 16, k <= 5), 'same' padding, weights ~ 1/sqrt(fan-in), biases ~ 0.1 */
size_t test_conv(hecnn_graph *g, size_t in, uint32_t cin, uint32_t cout, uint32_t k, uint32_t stride);
size_t test_relu_node(hecnn_graph *g, size_t in);
size_t test_add(hecnn_graph *g, size_t a, size_t b);
/* Every ReLU of g: range 1.5 x its largest input over the n images, a degree-7 ReLU polynomial. */
void test_calibrate(hecnn_graph *g, const double *images, size_t n);
/* CKKS_BOOT_TEST_N12_DEEP (insecure, six residual levels); bt may be NULL. 0 or -1. */
int test_boot_context(ckks_context **ctx, ckks_bootstrapper **bt);

#endif
