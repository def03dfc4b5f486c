/* Plans, whatever the packing (include/hecnn/plan.h): what every packing shares — the units the
 * graph's nodes produce, the ReLU polynomials, the key list and the per-node records of the dry run —
 * and the operations a packing provides. src/nn/plan.c owns the public calls and dispatches to the
 * packing (src/nn/batched.c, ...), which keeps its own layout state in `impl`. */
#ifndef HECNN_NN_PLAN_INTERNAL_H
#define HECNN_NN_PLAN_INTERNAL_H

#include "hecnn/plan.h"

typedef struct packing_ops {
    const char *name;
    /* Lay the graph out for p (its shared tables filled): check that it fits, set p->impl,
     * p->slots and p->input_level, and dry-run the network to fill p->nodes, the key list,
     * p->bootstraps, p->rotations and p->classes. */
    hecnn_status (*build)(hecnn_plan *p, const hecnn_plan_options *opt);
    void (*free)(void *impl);
    size_t (*images_per_ciphertext)(const hecnn_plan *p);
    size_t (*input_ciphertexts)(const hecnn_plan *p);
    size_t (*output_ciphertexts)(const hecnn_plan *p);
    size_t (*bytes)(const hecnn_plan *p); /* encoded plaintexts (masks, diagonals) */
    hecnn_status (*encrypt)(const hecnn_plan *p, ckks_ciphertext *const *cts, const double *images, size_t n,
                            const ckks_public_key *pk, const ckks_secret_key *sk);
    /* scores[n][classes]; through ckks_decrypt_flooded when `flooded` (flood NULL: its defaults) */
    hecnn_status (*decrypt)(const hecnn_plan *p, double *scores, size_t n, ckks_ciphertext *const *cts,
                            const ckks_secret_key *sk, bool flooded, const ckks_flood_options *flood);
    /* Estimated run bytes (ciphertexts, workspaces) for chunks of `chunk` groups (0 = all) with or
     * without spilling; set that schedule when `keep`. NULL: no schedules (one fixed estimate below). */
    hecnn_status (*schedule)(hecnn_plan *p, size_t chunk, bool spill, const char *scratch, bool keep, uint64_t *run_bytes);
    size_t (*groups)(const hecnn_plan *p); /* image groups at the input (chunks divide these) */
    /* Keep checkpoints in dir for the run named run_id (dir NULL: none). NULL: not supported. */
    hecnn_status (*checkpoint)(hecnn_plan *p, const char *dir, const char *run_id);
    /* the keys are checked and `ev` holds them; stats is zeroed by the caller */
    hecnn_status (*run)(const hecnn_plan *p, const ckks_evaluator *ev, const ckks_boot_keys *boot_keys,
                        ckks_ciphertext *const *in, ckks_ciphertext *const *out, hecnn_progress_fn progress, void *user,
                        const volatile int *cancel, hecnn_run_stats *stats);
} packing_ops;

struct hecnn_plan {
    const hecnn_graph *g;
    const ckks_context *ctx;
    const ckks_bootstrapper *bt;
    const packing_ops *ops;
    hecnn_plan_layout layout;
    void *impl;               /* the packing's state */
    size_t batch, slots;
    unsigned input_level;
    double scale;             /* the context's default scale: inputs, ReLU outputs */
    double *want;             /* per node: the unit its consumers want (0 = any) */
    size_t *last_use;         /* per node: the last node reading it */
    ckks_poly **poly;         /* per RELU node, on [-1, 1] */
    ckks_key_need *keys;
    size_t n_keys, cap_keys;
    hecnn_plan_node *nodes;   /* per node, from the dry run */
    size_t bootstraps, rotations, classes;
};

/* Record that the plan uses the key for `galois` (0: relinearization) at `level`. */
hecnn_status plan_need_key(hecnn_plan *p, uint64_t galois, unsigned level);

/* Input ciphertext i of a run: at the plan's input level and scale, over its slots. */
hecnn_status plan_check_input(const hecnn_plan *p, const ckks_ciphertext *ct, size_t i);

/* The fewest slots (a power of two, at least the input's H x W) that hold every tensor of g in the
 * single layout's multiplexed packing, one ciphertext per image throughout; 0 where the single
 * packing cannot lay g out (an input side not a power of two, an operation it does not run). */
size_t single_slots_needed(const hecnn_graph *g);

extern const packing_ops batched_packing;
extern const packing_ops single_packing;
extern const packing_ops rows_packing;

#endif
