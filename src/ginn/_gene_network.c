/* One training step's gradients (and the predictions) of many small gene interaction networks on
   CPU float32, each network's forward and backward fused in registers and cache.

   Why: with tens of SNPs per gene, torch runs a step as a dozen batched products with inner
   dimensions of 11-24 that stream activation-sized tensors through memory (~20% of the machine's
   matmul rate). Here a network works on 32 samples at a time, its activations never leave L1/L2,
   and every product is a register-tiled loop of broadcast FMAs.

   The network (ginn.model.GeneNetworkEnsemble, gene_layer "mlp", GENE_HIDDEN = 10, H % 10 = 0),
   for one sample with centred genotypes x:
       gene i:     pre1[i, j] = b1[i, j] + sum_c w1[i, c, j] x[rows[i] + c]      (c < sizes[i], j < 10)
                   g[i] = b2[i] + sum_j w2[i, j] relu(pre1[i, j])
       predictor:  pre2[k] = b1p[k] + sum_i W1p[k, i] g[i]                          (k < H, i < M)
                   out = b2p + sum_k w2p[k] relu(pre2[k])
       or for H = 0 (the main-effect network) the linear out = bp + sum_i wp[i] g[i].
   and the loss scale sum_t weight[t] (out[t] - y[t])^2, where network n reads its y and weight from
   rows columns[n][0] of y and columns[n][1] of weight (one target per permuted dataset, one mask
   per fold: the trainer passes its batch's columns once for all networks) and scale = 1 / count.

   Parameters are numbered in ginn.model's canonical per-network order: gene after gene (w1 [c][j],
   b1 [j], w2 [j], b2), then W1p [k][i], b1p [k], w2p [k], b2p (H = 0: wp [i], bp). They are read in place from the
   model's tensors: parameter q of network n is the float at address params[q] + n * strides[q].
   gradients() ADDS d loss / d params at grads[q] + n * strides[q] (micro-batches accumulate),
   with l1 (K, 2) the L1 penalty's subgradient l1[n][0] sign(w) on gene MLP weights and l1[n][1]
   sign(w) on predictor weights (none where l1 is 0).

   x is tile-major float32, (n_cols / 32, x_rows, 32): sample t of row r at [t / 32][r][t % 32],
   so the 32 samples a tile reads of every row are one contiguous block (a feature-major matrix
   would cost an L1 miss per row and tile). n_cols is a multiple of 32; the caller pads samples
   with weight 0. rows holds 2 M row numbers: each gene's first SNP (its SNPs are consecutive rows)
   and then each gene's row of ones, whose weight is b1. The oracle is torch autograd over
   GeneNetworkEnsemble (tests/test_fused.py). relu and its gradient treat NaN as torch does (active).

   Threads: OpenMP over networks; each network's arithmetic, and so its result, does not depend on
   the thread count or on which other networks share the call. libgomp resolves to torch's copy
   (see _hidden_layer.c). Vector code: GCC vector extensions of 16 floats, built for AVX-512, AVX2
   and baseline x86-64 (picked at load time), plain C elsewhere. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_vector_clones.h"
#define INLINE static inline __attribute__((always_inline))
/* 64-byte vectors are passed only between always-inline helpers, so their ABI never matters */
#pragma GCC diagnostic ignored "-Wpsabi"
/* a * b + c as one FMA: -std=c11 turns contraction off, and the products here are all multiply-adds */
#pragma GCC optimize("fp-contract=fast")

#define HG 10      /* gene MLP hidden units */
#define KB 10      /* predictor hidden units per register block (forward) */
#define GB 10      /* genes per register block (predictor backward, dW1p) */
#define TILE 32    /* samples per register tile: two vectors */
#define CHUNK 256  /* samples whose unit gradients are kept for the weight-gradient products */

typedef float v16 __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4)));

#define LOAD(p) (*(const v16u *)(p))
#define STORE(p, v) (*(v16u *)(p) = (v))

INLINE v16 splat(float a) { return (v16){0} + a; }
INLINE v16i active(v16 pre) { return ~(pre <= (v16){0}); }          /* NaN counts as active */
INLINE v16 relu(v16 pre) { return (v16)((v16i)pre & active(pre)); }
INLINE v16 where_active(v16 pre, v16 value) { return (v16)((v16i)value & active(pre)); }

typedef float v8 __attribute__((vector_size(32)));
typedef float v4 __attribute__((vector_size(16)));

INLINE float hsum(v16 v)
{
    union { v16 whole; v8 half[2]; } a = {v};
    union { v8 whole; v4 half[2]; } b = {a.half[0] + a.half[1]};
    v4 q = b.half[0] + b.half[1];
    return (q[0] + q[2]) + (q[1] + q[3]);
}

typedef struct {
    Py_ssize_t genes, padded_genes, hidden, params, predictor; /* predictor: offset of W1p */
    const int64_t *rows, *ones, *sizes;  /* x rows of each gene's first SNP and of its constant 1; SNPs */
    Py_ssize_t tile_floats;              /* x rows * TILE: one tile of samples */
    Py_ssize_t *offsets;                                       /* offset of each gene's w1 */
} layout;

/* Per-thread buffers; gval's rows past the last gene stay zero (the dW1p blocks read them). */
typedef struct {
    float *pre1, *pre2, *gtile;   /* one tile: [M*HG][TILE], [H][TILE], [Mpad][TILE] */
    float *unit1, *unit2, *gval;  /* one chunk: masked gradients [M*HG][CHUNK], [H][CHUNK]; g [Mpad][CHUNK] */
    float *scaled;                /* W1p[k][i] * w2p[k], [H][Mpad] */
    v16 *acc;                     /* [params] per-lane gradient sums, reduced once per call */
    void *block;
} scratch;

static int scratch_alloc(scratch *s, const layout *L)
{
    Py_ssize_t m = L->genes, mp = L->padded_genes, h = L->hidden;
    Py_ssize_t rows = h > 0 ? h : 1;                    /* H = 0: unit2 keeps d, scaled the weights wp */
    Py_ssize_t floats[7] = {m * HG * TILE, h * TILE, mp * TILE, m * HG * CHUNK, rows * CHUNK, mp * CHUNK, rows * mp};
    Py_ssize_t total = L->params * 16;
    for (int b = 0; b < 7; b++)
        total += (floats[b] + 15) / 16 * 16;
    s->block = aligned_alloc(64, (size_t)total * sizeof(float));
    if (!s->block)
        return -1;
    memset(s->block, 0, (size_t)total * sizeof(float));
    float *p = s->block;
    s->acc = (v16 *)p;
    p += L->params * 16;
    float **slot[7] = {&s->pre1, &s->pre2, &s->gtile, &s->unit1, &s->unit2, &s->gval, &s->scaled};
    for (int b = 0; b < 7; b++) {
        *slot[b] = p;
        p += (floats[b] + 15) / 16 * 16;
    }
    return 0;
}

/* Forward of samples t0 .. t0 + 31: pre-activations into s->pre1 / s->pre2, gene values into
   s->gtile, predictions into out[0..1]. */
INLINE void forward_tile(const layout *L, const scratch *s, const float *p, const float *x, Py_ssize_t t0, v16 out[2])
{
    for (Py_ssize_t i = 0; i < L->genes; i++) {
        const float *w1 = p + L->offsets[i];
        Py_ssize_t n = L->sizes[i];
        const float *b1 = w1 + n * HG, *w2 = b1 + HG;
        const float *xr = x + t0 / TILE * L->tile_floats + L->rows[i] * TILE;
        v16 a0[HG], a1[HG];
        for (int j = 0; j < HG; j++)
            a0[j] = a1[j] = splat(b1[j]);
        for (Py_ssize_t c = 0; c < n; c++) {
            v16 xa = LOAD(xr + c * TILE), xb = LOAD(xr + c * TILE + 16);
            const float *wc = w1 + c * HG;
            for (int j = 0; j < HG; j++) {
                a0[j] += wc[j] * xa;
                a1[j] += wc[j] * xb;
            }
        }
        v16 g0 = splat(w2[HG]), g1 = g0;
        float *pre = s->pre1 + i * HG * TILE;
        for (int j = 0; j < HG; j++) {
            STORE(pre + j * TILE, a0[j]);
            STORE(pre + j * TILE + 16, a1[j]);
            g0 += w2[j] * relu(a0[j]);
            g1 += w2[j] * relu(a1[j]);
        }
        STORE(s->gtile + i * TILE, g0);
        STORE(s->gtile + i * TILE + 16, g1);
    }
    Py_ssize_t m = L->genes, h = L->hidden;
    if (h == 0) {                                                            /* linear predictor */
        const float *w = p + L->predictor;
        v16 o0 = splat(w[m]), o1 = o0;
        for (Py_ssize_t i = 0; i < m; i++) {
            o0 += w[i] * LOAD(s->gtile + i * TILE);
            o1 += w[i] * LOAD(s->gtile + i * TILE + 16);
        }
        out[0] = o0;
        out[1] = o1;
        return;
    }
    const float *W1 = p + L->predictor, *b1 = W1 + h * m, *w2 = b1 + h;
    v16 o0 = splat(w2[h]), o1 = o0;
    for (Py_ssize_t k0 = 0; k0 < h; k0 += KB) {
        v16 a0[KB], a1[KB];
        for (int k = 0; k < KB; k++)
            a0[k] = a1[k] = splat(b1[k0 + k]);
        for (Py_ssize_t i = 0; i < m; i++) {
            v16 ga = LOAD(s->gtile + i * TILE), gb = LOAD(s->gtile + i * TILE + 16);
            for (int k = 0; k < KB; k++) {
                float w = W1[(k0 + k) * m + i];
                a0[k] += w * ga;
                a1[k] += w * gb;
            }
        }
        for (int k = 0; k < KB; k++) {
            STORE(s->pre2 + (k0 + k) * TILE, a0[k]);
            STORE(s->pre2 + (k0 + k) * TILE + 16, a1[k]);
            o0 += w2[k0 + k] * relu(a0[k]);
            o1 += w2[k0 + k] * relu(a1[k]);
        }
    }
    out[0] = o0;
    out[1] = o1;
}

/* Gene i's value gradient e (two vectors) onto its b2 sum and its unit gradients in the chunk. */
INLINE void gene_units(const layout *L, scratch *s, Py_ssize_t i, v16 e0, v16 e1, Py_ssize_t t)
{
    const float *pre = s->pre1 + i * HG * TILE;
    float *unit = s->unit1 + i * HG * CHUNK + t;
    s->acc[L->offsets[i] + (L->sizes[i] + 2) * HG] += e0 + e1;              /* b2 */
    for (int j = 0; j < HG; j++) {
        STORE(unit + j * CHUNK, where_active(LOAD(pre + j * TILE), e0));
        STORE(unit + j * CHUNK + 16, where_active(LOAD(pre + j * TILE + 16), e1));
    }
}

/* Back-propagates the tile's output gradient d (two vectors) to the chunk's unit gradients, kept
   without their output weight's factor: unit2[k] = relu'(pre2[k]) d and unit1[i][j] = relu'(pre1[i][j]) dg[i].
   The weight and bias gradients follow from them in chunk_products and network_gradients. t: the
   tile's column within the chunk. */
INLINE void backward_tile(const layout *L, scratch *s, v16 d0, v16 d1, Py_ssize_t t)
{
    Py_ssize_t m = L->genes, mp = L->padded_genes, h = L->hidden;
    v16 *acc = s->acc;
    if (h == 0) {                   /* linear predictor: unit2 row 0 keeps d for wp's sums; bp sums d */
        acc[L->predictor + m] += d0 + d1;
        STORE(s->unit2 + t, d0);
        STORE(s->unit2 + t + 16, d1);
        const float *w = s->scaled;
        for (Py_ssize_t i = 0; i < m; i++)
            gene_units(L, s, i, w[i] * d0, w[i] * d1, t);
        return;
    }
    acc[L->predictor + h * m + 2 * h] += d0 + d1;                          /* b2p */
    for (Py_ssize_t i0 = 0; i0 < mp; i0 += GB) {
        v16 g0[GB] = {{0}}, g1[GB] = {{0}};
        for (Py_ssize_t k = 0; k < h; k++) {
            v16 pa = LOAD(s->pre2 + k * TILE), pb = LOAD(s->pre2 + k * TILE + 16);
            v16 ua = where_active(pa, d0), ub = where_active(pb, d1);
            if (i0 == 0) {
                STORE(s->unit2 + k * CHUNK + t, ua);
                STORE(s->unit2 + k * CHUNK + t + 16, ub);
            }
            const float *w = s->scaled + k * mp + i0;
            for (int i = 0; i < GB; i++) {
                g0[i] += w[i] * ua;
                g1[i] += w[i] * ub;
            }
        }
        for (Py_ssize_t i = i0; i < i0 + GB && i < m; i++)
            gene_units(L, s, i, g0[i - i0], g1[i - i0], t);
    }
}

/* unit2[k + r] . g[i0 + i] onto W1p[k + r][i0 + i] for r < units (4 or 2; 1 for H = 0, where row 0
   is d and W1p is wp), i < 5 (rows of gval past the last gene are zero and not added), and with
   sums, unit2[k + r] . 1 onto b1p[k + r]. */
INLINE void predictor_products(const layout *L, scratch *s, Py_ssize_t k, const int units, Py_ssize_t i0,
                               const int sums, Py_ssize_t n)
{
    Py_ssize_t m = L->genes, base = L->predictor;
    v16 a[4][5] = {{{0}}}, sum[4] = {{0}};
    for (Py_ssize_t t = 0; t < n; t += 16) {
        v16 u[4];
        for (int r = 0; r < units; r++) {
            u[r] = LOAD(s->unit2 + (k + r) * CHUNK + t);
            if (sums)
                sum[r] += u[r];
        }
        for (int i = 0; i < 5; i++) {
            v16 g = LOAD(s->gval + (i0 + i) * CHUNK + t);
            for (int r = 0; r < units; r++)
                a[r][i] += u[r] * g;
        }
    }
    for (int r = 0; r < units; r++) {
        for (Py_ssize_t i = i0; i < i0 + 5 && i < m; i++)
            s->acc[base + (k + r) * m + i] += a[r][i - i0];
        if (sums)
            s->acc[base + L->hidden * m + k + r] += sum[r];
    }
}

/* unit1[i][j0 + j] . x[c + q] onto w1[i][c + q][j0 + j] for j < 5, q < cols (at most 4), where
   column sizes[i] is the gene's constant 1 and lands on b1[i][j0 + j]. */
INLINE void gene_products(const layout *L, scratch *s, const float *tiles, Py_ssize_t i, Py_ssize_t c, const int cols,
                          Py_ssize_t j0, Py_ssize_t n)
{
    const float *row[4], *unit = s->unit1 + (i * HG + j0) * CHUNK;
    for (int q = 0; q < cols; q++)
        row[q] = tiles + (c + q < L->sizes[i] ? L->rows[i] + c + q : L->ones[i]) * TILE;
    v16 a[4][5] = {{{0}}};
    for (Py_ssize_t t = 0; t < n; t += 16) {
        Py_ssize_t at = t / TILE * L->tile_floats + t % TILE;
        v16 u[5];
        for (int j = 0; j < 5; j++)
            u[j] = LOAD(unit + j * CHUNK + t);
        for (int q = 0; q < cols; q++) {
            v16 xq = LOAD(row[q] + at);
            for (int j = 0; j < 5; j++)
                a[q][j] += u[j] * xq;
        }
    }
    for (int q = 0; q < cols; q++)
        for (int j = 0; j < 5; j++)
            s->acc[L->offsets[i] + (c + q) * HG + j0 + j] += a[q][j];
}

/* The chunk's sums over its n samples (per lane; reduced once per call): unit1[i][j] . x[c] for
   every SNP c of gene i and for the constant 1 (c = sizes[i], which lands on b1[j] in the canonical
   order); unit2[k] . g[i] on W1p[k][i], and unit2[k] . 1 on b1p[k] (predictor_products). */
INLINE void chunk_products(const layout *L, scratch *s, const float *x, Py_ssize_t c0, Py_ssize_t n)
{
    const float *tiles = x + c0 / TILE * L->tile_floats;
    for (Py_ssize_t i = 0; i < L->genes; i++) {
        Py_ssize_t columns = L->sizes[i] + 1, c = 0;                       /* the SNPs and the constant */
        for (; c + 4 <= columns; c += 4) {
            gene_products(L, s, tiles, i, c, 4, 0, n);
            gene_products(L, s, tiles, i, c, 4, 5, n);
        }
        for (int j0 = 0; j0 < HG; j0 += 5)
            switch (columns - c) {
            case 3: gene_products(L, s, tiles, i, c, 3, j0, n); break;
            case 2: gene_products(L, s, tiles, i, c, 2, j0, n); break;
            case 1: gene_products(L, s, tiles, i, c, 1, j0, n); break;
            }
    }
    if (L->hidden == 0) {                                                   /* d . g[i] onto wp[i] */
        for (Py_ssize_t i0 = 0; i0 < L->genes; i0 += 5)
            predictor_products(L, s, 0, 1, i0, 0, n);
        return;
    }
    Py_ssize_t k = 0;
    for (; k + 4 <= L->hidden; k += 4) {
        predictor_products(L, s, k, 4, 0, 1, n);                            /* with the b1p sums */
        for (Py_ssize_t i0 = 5; i0 < L->genes; i0 += 5)
            predictor_products(L, s, k, 4, i0, 0, n);
    }
    if (k < L->hidden) {                                                    /* H % 4 == 2 */
        predictor_products(L, s, k, 2, 0, 1, n);
        for (Py_ssize_t i0 = 5; i0 < L->genes; i0 += 5)
            predictor_products(L, s, k, 2, i0, 0, n);
    }
}

/* Adds network p's gradient over samples 0 .. n_cols - 1 to grad. */
VECTOR_CLONES
static void network_gradients(const layout *L, scratch *s, const float *p, float *grad, const float *x,
                              Py_ssize_t n_cols, const float *y, const float *weight, float scale)
{
    Py_ssize_t m = L->genes, mp = L->padded_genes, h = L->hidden, base = L->predictor;
    const float *W1 = p + base, *w2p = W1 + h * m + h;
    memset(s->acc, 0, (size_t)L->params * sizeof(v16));
    for (Py_ssize_t k = 0; k < h; k++)
        for (Py_ssize_t i = 0; i < mp; i++)
            s->scaled[k * mp + i] = i < m ? W1[k * m + i] * w2p[k] : 0.0f;
    if (h == 0)                                                             /* the linear weights wp */
        memcpy(s->scaled, p + base, (size_t)m * sizeof(float));
    for (Py_ssize_t c0 = 0; c0 < n_cols; c0 += CHUNK) {
        Py_ssize_t n = n_cols - c0 < CHUNK ? n_cols - c0 : CHUNK;
        for (Py_ssize_t t = 0; t < n; t += TILE) {
            v16 out[2];
            forward_tile(L, s, p, x, c0 + t, out);
            for (Py_ssize_t i = 0; i < m; i++) {
                STORE(s->gval + i * CHUNK + t, LOAD(s->gtile + i * TILE));
                STORE(s->gval + i * CHUNK + t + 16, LOAD(s->gtile + i * TILE + 16));
            }
            Py_ssize_t at = c0 + t;
            v16 d0 = (2.0f * scale) * (out[0] - LOAD(y + at)) * LOAD(weight + at);
            v16 d1 = (2.0f * scale) * (out[1] - LOAD(y + at + 16)) * LOAD(weight + at + 16);
            backward_tile(L, s, d0, d1, t);
        }
        chunk_products(L, s, x, c0, n);
    }
    /* per-lane sums -> gradients. With the bias as a constant input, pre = W [x; 1] exactly, so the
       output weight's gradient sum_t d relu(pre) = sum_t unit pre = W . (unit [x; 1]^T) needs no
       pass of its own, and the unit sums times the output weight give the W and b gradients. */
    for (Py_ssize_t i = 0; i < m; i++) {
        Py_ssize_t w1 = L->offsets[i], snps = L->sizes[i], w2 = w1 + (snps + 1) * HG;
        for (int j = 0; j < HG; j++) {
            float output_grad = 0.0f;
            for (Py_ssize_t c = 0; c <= snps; c++) {                       /* c = snps: b1 */
                float sum = hsum(s->acc[w1 + c * HG + j]);
                grad[w1 + c * HG + j] += p[w2 + j] * sum;
                output_grad += p[w1 + c * HG + j] * sum;
            }
            grad[w2 + j] += output_grad;
        }
        grad[w2 + HG] += hsum(s->acc[w2 + HG]);
    }
    if (h == 0) {
        for (Py_ssize_t i = 0; i <= m; i++)                                 /* wp, then bp */
            grad[base + i] += hsum(s->acc[base + i]);
        return;
    }
    for (Py_ssize_t k = 0; k < h; k++) {
        float output_grad = 0.0f;
        for (Py_ssize_t i = 0; i < m; i++) {
            float sum = hsum(s->acc[base + k * m + i]);
            grad[base + k * m + i] += w2p[k] * sum;
            output_grad += W1[k * m + i] * sum;
        }
        float sum = hsum(s->acc[base + h * m + k]);
        grad[base + h * m + k] += w2p[k] * sum;
        grad[base + h * m + h + k] += output_grad + W1[h * m + k] * sum;
    }
    grad[base + h * m + 2 * h] += hsum(s->acc[base + h * m + 2 * h]);
}

VECTOR_CLONES
static void network_predictions(const layout *L, scratch *s, const float *p, const float *x, Py_ssize_t n_cols,
                                float *out)
{
    for (Py_ssize_t t = 0; t < n_cols; t += TILE) {
        v16 o[2];
        forward_tile(L, s, p, x, t, o);
        STORE(out + t, o[0]);
        STORE(out + t + 16, o[1]);
    }
}

/* Shared argument handling of both entry points. */
typedef struct {
    unsigned long long x, rows, sizes, params, strides, grads, l1, out, y, weight, columns, scales;
    Py_ssize_t x_rows, n_cols, genes, hidden, networks, n_params, ldy, y_rows, weight_rows;
    int threads;
} call_args;

static int make_layout(layout *L, const call_args *a)
{
    if (a->x_rows < 1 || a->n_cols % TILE || a->genes < 1 || a->hidden < 0 || a->hidden % KB ||
        a->networks < 0 || a->threads < 1 || a->ldy < a->n_cols) {
        PyErr_SetString(PyExc_ValueError, "unsupported sizes: samples a multiple of 32, hidden 0 or a multiple of 10");
        return -1;
    }
    L->genes = a->genes;
    L->padded_genes = (a->genes + GB - 1) / GB * GB;
    L->hidden = a->hidden;
    L->rows = (const int64_t *)(uintptr_t)a->rows;
    L->ones = L->rows + a->genes;
    L->sizes = (const int64_t *)(uintptr_t)a->sizes;
    L->tile_floats = a->x_rows * TILE;
    L->offsets = PyMem_Malloc((size_t)a->genes * sizeof(Py_ssize_t));
    if (!L->offsets) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t offset = 0;
    for (Py_ssize_t i = 0; i < a->genes; i++) {
        if (L->sizes[i] < 1 || L->rows[i] < 0 || L->rows[i] + L->sizes[i] > a->x_rows || L->ones[i] < 0 ||
            L->ones[i] >= a->x_rows) {
            PyMem_Free(L->offsets);
            PyErr_SetString(PyExc_ValueError, "a gene without SNPs or outside x");
            return -1;
        }
        L->offsets[i] = offset;
        offset += L->sizes[i] * HG + 2 * HG + 1;
    }
    L->predictor = offset;
    L->params = offset + (a->hidden > 0 ? a->hidden * a->genes + 2 * a->hidden + 1 : a->genes + 1);
    if (L->params != a->n_params) {
        PyMem_Free(L->offsets);
        PyErr_Format(PyExc_ValueError, "%zd parameters per network, expected %zd", a->n_params, L->params);
        return -1;
    }
    return 0;
}

/* grad += l1 * sign(w) for every weight (not bias) of the gene MLPs (l1[0]) and the predictor
   (l1[1]): the subgradient torch's |w| gives, 0 at w = 0. */
static void add_l1(const layout *L, const float *p, float *grad, const float l1[2])
{
    Py_ssize_t h = L->hidden, m = L->genes, base = L->predictor;
#define L1_TERM(q, strength) grad[q] += (strength) * (float)((p[q] > 0.0f) - (p[q] < 0.0f))
    for (Py_ssize_t i = 0; i < m; i++) {
        Py_ssize_t w1 = L->offsets[i], w2 = w1 + (L->sizes[i] + 1) * HG;
        for (Py_ssize_t q = w1; q < w1 + L->sizes[i] * HG; q++)
            L1_TERM(q, l1[0]);
        for (Py_ssize_t q = w2; q < w2 + HG; q++)
            L1_TERM(q, l1[0]);
    }
    for (Py_ssize_t q = base; q < base + (h > 0 ? h * m : m); q++)        /* W1p, or wp */
        L1_TERM(q, l1[1]);
    for (Py_ssize_t q = base + h * m + h; q < base + h * m + 2 * h; q++)   /* w2p */
        L1_TERM(q, l1[1]);
#undef L1_TERM
}

/* Runs every network on OpenMP threads, each with its own scratch; returns -1 if memory ran out.
   Network n's canonical parameter q is the float at address params[q] + n * strides[q] (one
   tensor per parameter of the model, read in place), and its gradient is added at grads[q] + n * strides[q]. */
static int run_networks(const layout *L, const call_args *a, int gradients)
{
    const int64_t *params = (const int64_t *)(uintptr_t)a->params, *strides = (const int64_t *)(uintptr_t)a->strides;
    const int64_t *grads = (const int64_t *)(uintptr_t)a->grads;
    const float *x = (const float *)(uintptr_t)a->x, *l1 = (const float *)(uintptr_t)a->l1;
    const float *y = (const float *)(uintptr_t)a->y, *weight = (const float *)(uintptr_t)a->weight;
    float *out = (float *)(uintptr_t)a->out;
    const int64_t *columns = (const int64_t *)(uintptr_t)a->columns;
    const float *scales = (const float *)(uintptr_t)a->scales;
    Py_ssize_t q_count = L->params;
    int failed = 0;
#ifdef _OPENMP
#pragma omp parallel num_threads(a->threads) reduction(| : failed)
#endif
    {
        scratch s;
        float *local = malloc(2 * (size_t)q_count * sizeof(float));   /* parameters, then gradients */
        if (!local || scratch_alloc(&s, L)) {
            failed = 1;
            free(local);
        } else {
            float *p = local, *g = local + q_count;
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
            for (Py_ssize_t n = 0; n < a->networks; n++) {
                for (Py_ssize_t q = 0; q < q_count; q++)
                    p[q] = *(const float *)(uintptr_t)(params[q] + n * strides[q]);
                if (gradients) {
                    memset(g, 0, (size_t)q_count * sizeof(float));
                    network_gradients(L, &s, p, g, x, a->n_cols, y + columns[2 * n] * a->ldy,
                                      weight + columns[2 * n + 1] * a->ldy, scales[n]);
                    if (l1)
                        add_l1(L, p, g, l1 + 2 * n);
                    for (Py_ssize_t q = 0; q < q_count; q++)
                        *(float *)(uintptr_t)(grads[q] + n * strides[q]) += g[q];
                } else {
                    network_predictions(L, &s, p, x, a->n_cols, out + n * a->ldy);
                }
            }
            free(s.block);
            free(local);
        }
    }
    return failed ? -1 : 0;
}

static PyObject *entry(PyObject *args, int gradients)
{
    call_args a = {0};
    int ok = gradients
        ? PyArg_ParseTuple(args, "KnnKKnnKKnKKKnKnnKKni", &a.x, &a.x_rows, &a.n_cols, &a.rows, &a.sizes, &a.genes,
                           &a.hidden, &a.params, &a.strides, &a.n_params, &a.grads, &a.l1, &a.y, &a.y_rows, &a.weight,
                           &a.weight_rows, &a.ldy, &a.columns, &a.scales, &a.networks, &a.threads)
        : PyArg_ParseTuple(args, "KnnKKnnKKnKnni", &a.x, &a.x_rows, &a.n_cols, &a.rows, &a.sizes, &a.genes,
                           &a.hidden, &a.params, &a.strides, &a.n_params, &a.out, &a.ldy, &a.networks, &a.threads);
    if (!ok)
        return NULL;
    if (gradients)
        for (Py_ssize_t n = 0; n < a.networks; n++) {
            const int64_t *c = (const int64_t *)(uintptr_t)a.columns + 2 * n;
            if (c[0] < 0 || c[0] >= a.y_rows || c[1] < 0 || c[1] >= a.weight_rows) {
                PyErr_SetString(PyExc_ValueError, "a network's target or weight row is out of range");
                return NULL;
            }
        }
    layout L;
    if (make_layout(&L, &a))
        return NULL;
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = run_networks(&L, &a, gradients);
    Py_END_ALLOW_THREADS
    PyMem_Free(L.offsets);
    if (status)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* tiles(genotypes, n_genotypes, columns, rows, n_rows, mean, out, threads): the tile-major x of the given rows of
   int8 genotypes (n_genotypes, columns): out[t / 32][r][t % 32] = g < 0 ? 0 : g - mean[r] with
   g = genotypes[rows[t]][r], and 0 for the samples that pad the last tile. Oracle:
   ginn.fused.tiles(GenotypeBatcher.padded_t(rows)). */
static PyObject *tiles_py(PyObject *self, PyObject *args)
{
    (void)self;
    unsigned long long genotypes_ptr, rows_ptr, mean_ptr, out_ptr;
    Py_ssize_t n_genotypes, columns, n_rows;
    int threads;
    if (!PyArg_ParseTuple(args, "KnnKnKKi", &genotypes_ptr, &n_genotypes, &columns, &rows_ptr, &n_rows, &mean_ptr,
                          &out_ptr, &threads))
        return NULL;
    if (threads < 1) {
        PyErr_SetString(PyExc_ValueError, "no thread");
        return NULL;
    }
    const int8_t *genotypes = (const int8_t *)(uintptr_t)genotypes_ptr;
    const int64_t *rows = (const int64_t *)(uintptr_t)rows_ptr;
    const float *mean = (const float *)(uintptr_t)mean_ptr;
    float *out = (float *)(uintptr_t)out_ptr;
    for (Py_ssize_t t = 0; t < n_rows; t++)
        if (rows[t] < 0 || rows[t] >= n_genotypes) {
            PyErr_SetString(PyExc_IndexError, "a row outside the genotypes");
            return NULL;
        }
    Py_BEGIN_ALLOW_THREADS
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads) schedule(static)
#endif
    for (Py_ssize_t t0 = 0; t0 < n_rows; t0 += TILE) {
        float *tile = out + t0 * columns;
        const int8_t *g[TILE];                    /* the tile's 32 rows (7.7 KB at 240 columns) stay in L1 */
        int lanes = n_rows - t0 < TILE ? (int)(n_rows - t0) : TILE;
        for (int lane = 0; lane < lanes; lane++)
            g[lane] = genotypes + rows[t0 + lane] * columns;
        for (Py_ssize_t r = 0; r < columns; r++) {  /* one contiguous 32-float store per row */
            float *o = tile + r * TILE;
            for (int lane = 0; lane < lanes; lane++)
                o[lane] = g[lane][r] < 0 ? 0.0f : (float)g[lane][r] - mean[r];
            for (int lane = lanes; lane < TILE; lane++)
                o[lane] = 0.0f;
        }
    }
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *gradients_py(PyObject *self, PyObject *args)
{
    (void)self;
    return entry(args, 1);
}

static PyObject *predictions_py(PyObject *self, PyObject *args)
{
    (void)self;
    return entry(args, 0);
}

static PyMethodDef methods[] = {
    {"gradients", gradients_py, METH_VARARGS,
     "gradients(x, x_rows, n_cols, rows, sizes, genes, hidden, params, strides, n_params, grads, l1, y, y_rows, "
     "weight, weight_rows, ldy, columns, scales, networks, threads): grads += d/d params of scale sum_t weight "
     "(out - y)^2 (+ the L1 penalty), per network, y and weight rows as columns[n] says."},
    {"predictions", predictions_py, METH_VARARGS,
     "predictions(x, x_rows, n_cols, rows, sizes, genes, hidden, params, strides, n_params, out, ldy, networks, "
     "threads): out[n, t] = network n's prediction of sample t."},
    {"tiles", tiles_py, METH_VARARGS,
     "tiles(genotypes, n_genotypes, columns, rows, n_rows, mean, out, threads): centred tile-major float32 x of int8 "
     "genotype rows."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_gene_network",
                                    "Fused forward and backward of small gene interaction networks on CPU float32.",
                                    -1, methods};

PyMODINIT_FUNC PyInit__gene_network(void) { return PyModule_Create(&module); }
