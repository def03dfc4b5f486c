/* hecnn — umbrella header: privacy-preserving CNN inference on CKKS-encrypted images. */
#ifndef HECNN_H
#define HECNN_H

#include "hecnn/status.h"
#include "hecnn/ckks.h"
#include "hecnn/nn.h"
#include "hecnn/circuits.h"
#include "hecnn/graph.h"
#include "hecnn/plan.h"

#define HECNN_VERSION_MAJOR 0
#define HECNN_VERSION_MINOR 1
#define HECNN_VERSION_PATCH 0
#define HECNN_VERSION_STRING "0.1.0"

#endif
