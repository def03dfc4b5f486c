/* hecnn — plans: a graph laid into ciphertexts for one parameter set and batch size, and its run.
 *
 * The batched packing (seeds 000/001): one ciphertext per channel; the slots are blocks of
 * grid x grid, one image per block at full resolution (32 images of 32 x 32 in 2^15 slots). A stride-2
 * convolution keeps its outputs on the even positions and the plan merges four groups of images into
 * one ciphertext by rotations, so a ciphertext holds 4x the images at half the resolution (128 at
 * 16 x 16, 512 at 8 x 8): at gap g, image (a, b) of a block has its pixel (r, c) at block position
 * (g r + a, g c + b).
 *
 * Every linear layer costs one level: masks encoded at scale 2^30 select the valid positions of each
 * kernel tap (stride and padding folded in), the weights multiply as integers (2^20 w), and one
 * rescale ends the layer. Every ReLU bootstraps its input, two ciphertexts at a time as one complex
 * ciphertext (ckks_bootstrap_pair), and evaluates the node's polynomial on y = x / range: inputs are
 * normalised by folding 1 / range into the producing layer's weights, so the server never needs a
 * decryption to range them. The plan is built by running the network once without ciphertexts (a dry run of the same
 * code): it knows every level, every rotation and the exact key list before any key exists.
 *
 * The single packing (src/nn/single.c, low latency): one ciphertext per image, every channel
 * multiplexed into the slots (Lee et al., ICML 2022): at gap g a block of H x W slots holds g^2
 * channels interleaved, channel a g + e of the block at (g r + a, g c + e), so a stride-2 layer keeps
 * the map dense. A convolution is hoisted rotations for its taps and channel offsets (baby steps)
 * and one rotation per giant step, with per-slot plaintext weight vectors (encoded during the run);
 * one level per linear layer, units and ReLUs as above, two images per bootstrap when the batch has
 * two. A tensor must fit the bootstrapper's slots (16 x 32 x 32 needs 2^14). */
#ifndef HECNN_PLAN_H
#define HECNN_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hecnn/circuits.h"
#include "hecnn/ckks.h"
#include "hecnn/graph.h"
#include "hecnn/nn.h"
#include "hecnn/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

/* How a graph is laid into ciphertexts. */
typedef enum hecnn_plan_layout {
    HECNN_LAYOUT_AUTO = 0, /* the plan's choice: single for a batch of 1 (and no grid) where the graph fits it, else batched */
    HECNN_LAYOUT_BATCHED,  /* one ciphertext per channel, images in slot blocks (above) */
    HECNN_LAYOUT_SINGLE,   /* one ciphertext per image, channels multiplexed in the slots (below) */
    HECNN_LAYOUT_ROWS,     /* Volley Revolver: one image per matrix row (the MNIST network, below) */
} hecnn_plan_layout;
const char *hecnn_plan_layout_name(hecnn_plan_layout layout);

typedef struct hecnn_plan_options {
    size_t batch;              /* images per run (>= 1) */
    uint32_t grid;             /* batched: side of the slot block holding one image (0 = the input's width; power of two) */
    hecnn_plan_layout layout;
    bool encrypted_weights;    /* rows: the weights will come encrypted from the model provider (such a
                                  plan runs plain weights too; its key list serves both) */
    bool replicate_images;     /* batched: a stage whose images fill only part of the slots repeats them
                                  (the layout before lanes) instead of multiplexing channels; for
                                  comparisons */
} hecnn_plan_options;

typedef struct hecnn_plan hecnn_plan;

/* Plan `g` (BATCHNORM folded, every ReLU calibrated and approximated) for ctx and `bt` (which
 * refreshes to the level the ReLUs start from; may be NULL for a graph without ReLU). The plan
 * borrows g, ctx and bt, which must outlive it; it encodes the masks it needs. */
hecnn_status hecnn_plan_new(hecnn_plan **out, const hecnn_graph *g, const ckks_context *ctx,
                            const ckks_bootstrapper *bt, const hecnn_plan_options *opt);
void hecnn_plan_free(hecnn_plan *p);

/* The slots the plan's bootstrapper should refresh (at most max_slots, the context's N/2): the
 * single layout (AUTO with a batch of one) wants the fewest that hold its largest tensor, a power of
 * two, 2^14 for ResNet-20 (a sparse bootstrap is cheaper: one EvalMod instead of two, shorter
 * transforms); the other layouts, and graphs the single packing cannot lay out, every slot. */
size_t hecnn_plan_boot_slots(const hecnn_graph *g, const hecnn_plan_options *opt, size_t max_slots);

hecnn_plan_layout hecnn_plan_layout_of(const hecnn_plan *p); /* never AUTO */
size_t hecnn_plan_batch(const hecnn_plan *p);
size_t hecnn_plan_images_per_ciphertext(const hecnn_plan *p); /* at the input (single: 1, an image may span several) */
size_t hecnn_plan_input_ciphertexts(const hecnn_plan *p);
size_t hecnn_plan_output_ciphertexts(const hecnn_plan *p);
unsigned hecnn_plan_input_level(const hecnn_plan *p);
size_t hecnn_plan_classes(const hecnn_plan *p);
/* Bootstraps per batch (each refreshes two real ciphertexts; a single-layout batch of one image
 * refreshes one) and rotations per batch. */
size_t hecnn_plan_bootstraps(const hecnn_plan *p);
size_t hecnn_plan_rotations(const hecnn_plan *p);
/* What the plan does at node `id` of the graph: the level and scale its output is at, the unit
 * its ciphertexts hold values in (value / unit), the layout (gap, groups, ciphertexts; single
 * layout: groups = the channel blocks of H x W slots, ciphertexts = one per image), and the
 * bootstraps (each of two ciphertexts) and rotations it costs per batch. */
typedef struct hecnn_plan_node {
    unsigned level;
    double scale, unit;
    uint32_t gap;
    size_t groups, ciphertexts;
    size_t bootstraps, rotations;
} hecnn_plan_node;
hecnn_status hecnn_plan_node_info(const hecnn_plan *p, size_t id, hecnn_plan_node *out);
/* Bytes of the plan's encoded masks (single layout: 0, its weight vectors are encoded during the run). */
size_t hecnn_plan_bytes(const hecnn_plan *p);

/* The network's keys (bootstrapping keys aside): the relinearization key (galois 0) at the level
 * the activations start from, and each rotation's Galois element at the highest level it is used. */
size_t hecnn_plan_key_needs(const hecnn_plan *p, ckks_key_need *out, size_t cap);
/* Exactly those keys (compact). */
hecnn_status hecnn_plan_keys_generate(ckks_eval_keys **out, const hecnn_plan *p, const ckks_secret_key *sk);
/* HECNN_ERR_MISSING_KEY naming the first missing or too-low key, else OK. */
hecnn_status hecnn_plan_check_keys(const hecnn_plan *p, const ckks_eval_keys *keys);

/* Data owner: `n` <= batch images (n x c*h*w, normalised as the graph's input) into the
 * hecnn_plan_input_ciphertexts ciphertexts (allocated by the caller); unused blocks repeat the
 * images so that every slot carries a real image. Exactly one of pk / sk. */
hecnn_status hecnn_plan_encrypt(const hecnn_plan *p, ckks_ciphertext *const *cts, const double *images, size_t n,
                                const ckks_public_key *pk, const ckks_secret_key *sk);
/* Data owner: scores[n][classes] from the output ciphertexts. */
hecnn_status hecnn_plan_decrypt(const hecnn_plan *p, double *scores, size_t n, ckks_ciphertext *const *cts,
                                const ckks_secret_key *sk);
/* The same through ckks_decrypt_flooded (flood NULL: its defaults): scores that may leave the data
 * owner (docs/SECURITY.md). */
hecnn_status hecnn_plan_decrypt_flooded(const hecnn_plan *p, double *scores, size_t n, ckks_ciphertext *const *cts,
                                        const ckks_secret_key *sk, const ckks_flood_options *flood);

/* ---- memory ------------------------------------------------------------------------------------
 * A run holds its ciphertexts on top of what the caller holds (keys, inputs, outputs) and the plan.
 * hecnn_plan_set_memory picks the fastest schedule whose estimated peak fits a budget: the whole batch
 * layer by layer; else the groups of images through each stage in chunks (the same operations, less
 * alive at once); else, with a scratch directory, the stage outputs spilled there too (the validated
 * ciphertext format, written atomically, deleted once read; a killed run's directory is never read,
 * and a later run reclaims it). The scores are bit-identical under every schedule. */
typedef struct hecnn_memory_options {
    uint64_t budget;          /* bytes for the whole process (0: no limit, the fastest schedule) */
    uint64_t held;            /* bytes the caller holds besides the plan: keys, input and output ciphertexts */
    const char *scratch_dir;  /* where stage outputs may be spilled (NULL: never) */
} hecnn_memory_options;

typedef struct hecnn_memory_schedule {
    size_t groups;            /* groups of images at the input */
    size_t chunk_groups;      /* groups that go through a stage at once (groups: all) */
    bool spill;               /* stage outputs go to the scratch directory */
    uint64_t run_bytes;       /* the run's estimated peak: its ciphertexts and workspaces (0: not estimated) */
    uint64_t fixed_bytes;     /* held + the plan's plaintexts + the bootstrapper + allocator cache + process */
    uint64_t peak_bytes;      /* fixed_bytes + run_bytes */
    uint64_t min_budget;      /* the smallest budget that some schedule fits */
} hecnn_memory_schedule;

/* Choose and keep p's schedule (out may be NULL). HECNN_ERR_NO_MEMORY, naming the smallest budget that
 * works (also in out->min_budget), when none fits; HECNN_ERR_UNSUPPORTED for a packing without schedules and a budget. */
hecnn_status hecnn_plan_set_memory(hecnn_plan *p, const hecnn_memory_options *opt, hecnn_memory_schedule *out);

typedef struct hecnn_run_stats {
    double seconds_linear;     /* convolutions, dense layers, merges, pooling */
    double seconds_activation; /* polynomial evaluation */
    double seconds_bootstrap;  /* bootstrapping, pairing included */
    double seconds_other;
    double seconds_spill;      /* writing and reading back spilled stage outputs and checkpoints */
    size_t bootstraps, rotations; /* the whole batch's, resumed chunks included */
    size_t chunks_resumed;     /* chunks read back from checkpoints (hecnn_plan_set_checkpoint) */
    double seconds_resumed;    /* what the earlier runs spent on them */
} hecnn_run_stats;

/* Checkpoints for a long run (the batched packing; HECNN_ERR_UNSUPPORTED otherwise): the run goes
 * through each stage one group of images at a time, keeps every chunk's stage outputs in `dir`
 * (created if missing; validated ciphertext files, written atomically) and marks the chunk done.
 * A later run of the same plan given the same dir and run_id (the caller's name for what is
 * computed: a digest of keys and input ciphertexts) skips the chunks marked done and reads their
 * outputs back, so a run that was killed resumes where it stopped, with the same scores to the bit.
 * A directory that holds another run's checkpoints is refused, one in use by a live run too; a run
 * that completes removes its files. dir NULL turns checkpoints off. */
hecnn_status hecnn_plan_set_checkpoint(hecnn_plan *p, const char *dir, const char *run_id);

/* Server: run one batch. `in` holds hecnn_plan_input_ciphertexts ciphertexts, `out` receives
 * hecnn_plan_output_ciphertexts (allocated by the caller). `progress` (may be NULL) is called after
 * each node; a nonzero *cancel stops the run at the next node with HECNN_ERR_CANCELLED. */
hecnn_status hecnn_plan_run(const hecnn_plan *p, const ckks_eval_keys *keys, const ckks_boot_keys *boot_keys,
                            ckks_ciphertext *const *in, ckks_ciphertext *const *out, hecnn_progress_fn progress,
                            void *user, const volatile int *cancel, hecnn_run_stats *stats);

/* ---- the rows packing and prepared weights ------------------------------------------------- *
 * HECNN_LAYOUT_ROWS lays the MNIST network of the Volley Revolver seed (hecnn_mnist_to_graph: conv
 * 4x3x3 no padding, trained cubic, dense 2704 -> 64, cubic, dense 64 -> 10) into ciphertexts of
 * one image per matrix row and runs it with the fused kernels of docs/MNIST.md; other graphs are
 * refused (HECNN_ERR_UNSUPPORTED). Its batch (hecnn_plan_batch) is the images a ciphertext holds:
 * the smallest power of two >= the batch asked, from 16 to S/32 (256 at N = 2^14), which fixes the
 * row width S / batch; more images run as several batches (hecnn_plan_run_batches). Its input is
 * hecnn_plan_input_ciphertexts column blocks, its output one ciphertext of scores; the rows after
 * the images encrypted are zero; its run stats count the first activation, fused into the
 * convolution, as linear time. Weights borrow their plan and must not outlive it.
 *
 * Weights prepared for a plan: plain (encoded from the plan's graph), or encrypted under the data
 * owner's public key by the model provider (a plan with encrypted_weights). The batched packing
 * keeps its weights in the plan and takes NULL weights only. */
typedef struct hecnn_plan_weights hecnn_plan_weights;
hecnn_status hecnn_plan_weights_plain(hecnn_plan_weights **out, const hecnn_plan *p);
hecnn_status hecnn_plan_weights_encrypt(hecnn_plan_weights **out, const hecnn_plan *p, const ckks_public_key *pk);
void hecnn_plan_weights_free(hecnn_plan_weights *w);
bool hecnn_plan_weights_encrypted(const hecnn_plan_weights *w);
size_t hecnn_plan_weights_ciphertexts(const hecnn_plan_weights *w); /* 0 for plain weights */
/* Encrypted weights only: the encrypted MNIST model file of docs/MNIST.md ("HECNNEMD", version 2,
 * every ciphertext and the whole checksummed). The loader checks the parameter id, the row width
 * against the plan and every checksum. */
hecnn_status hecnn_plan_weights_save(const hecnn_plan_weights *w, FILE *f);
hecnn_status hecnn_plan_weights_load(hecnn_plan_weights **out, const hecnn_plan *p, FILE *f);

/* hecnn_plan_run with prepared weights (NULL: the plan's plain weights, which a rows plan encodes on
 * every call: prepare them once for several batches). */
hecnn_status hecnn_plan_run_with(const hecnn_plan *p, const hecnn_plan_weights *w, const ckks_eval_keys *keys,
                                 const ckks_boot_keys *boot_keys, ckks_ciphertext *const *in, ckks_ciphertext *const *out,
                                 hecnn_progress_fn progress, void *user, const volatile int *cancel, hecnn_run_stats *stats);

/* Many batches, one after the other, the keys checked and the weights prepared once (rows,
 * encrypted weights: the FC1 tiles' giant steps rotated once for all batches). For batch b,
 * `read` fills the hecnn_plan_input_ciphertexts ciphertexts `in` and `write` takes the output
 * ciphertexts; a nonzero status from either stops the run with it. `progress` gets the fraction of
 * all batches done; stats (may be NULL) add up over the batches. */
typedef hecnn_status (*hecnn_batch_io_fn)(void *io, size_t batch, ckks_ciphertext *const *cts);
hecnn_status hecnn_plan_run_batches(const hecnn_plan *p, const hecnn_plan_weights *w, const ckks_eval_keys *keys,
                                    const ckks_boot_keys *boot_keys, size_t batches, hecnn_batch_io_fn read,
                                    hecnn_batch_io_fn write, void *io, hecnn_progress_fn progress, void *user,
                                    const volatile int *cancel, hecnn_run_stats *stats);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
