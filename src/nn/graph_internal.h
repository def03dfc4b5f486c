/* The graph object, shared by the builders (graph.c) and the model file (graph_file.c). */
#ifndef HECNN_NN_GRAPH_INTERNAL_H
#define HECNN_NN_GRAPH_INTERNAL_H

#include <stddef.h>

#include "hecnn/graph.h"

struct hecnn_graph {
    hecnn_node *nodes; /* [cap]; nodes[0] is the input */
    size_t n, cap;
    double *mean, *std; /* input normalisation, one per input channel */
    size_t scalars;     /* weights + biases + coefficients held: <= HECNN_GRAPH_MAX_WEIGHTS */
};

#endif
