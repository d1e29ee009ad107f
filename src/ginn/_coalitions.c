/* ginn._coalitions: the predictor's value on every coalition of a block of genes, for exact Shapley
 * interactions (ginn.shapley.ExactInteractions on the CPU).
 *
 * What. For one network and individual with centred gene values x (gene value minus baseline), the
 * hidden pre-activation of coalition T (bit i set: gene i present) is base + sum_{i in T} x_i W1[:, i]
 * and its value is f(T) = sum_u w2[u] relu(pre-activation_u) (the output bias cancels in every
 * index). values() writes f for the 2^L coalitions of genes 0..L-1, genes L..M-1 fixed by ``block``
 * (bit j set: gene L+j present), for every row of x.
 *
 * Why. T splits into its genes below a = ceil(L/2) ("lo") and the rest ("hi"), so a pre-activation is
 * A[lo] + B[hi] of two small tables, and relu(A + B) = max(A, -B) + B, so
 *     f(T) = sum_u w2[u] max(A[lo, u], -B[hi, u]) + sum_u w2[u] B[hi, u],
 * one max and one fused multiply-add per coalition and hidden unit, the last sum once per hi. torch
 * formed the broadcast sum, its ReLU and the product with w2 as three passes over 2^L H values in
 * memory; here the tables stay in L1 and f of a tile of coalitions (TILE_HIGH hi x one vector of lo)
 * stays in registers while the loop runs over the hidden units, so any H needs no vector tail.
 *
 * Oracle: PredictorGame.value and the torch path of ExactInteractions.scores (kept for a GPU and for
 * a source tree without this module); tests/test_shapley.py compares them.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>
#include <string.h>

#define WIDEST_TILE 64 /* bytes of lo coalitions per tile: one vector register, 64 with AVX-512 */
#define TILE_HIGH 4     /* hi coalitions per tile: 4 independent accumulators hide the FMA latency */

/* GCC: contract w2 * max + acc into one FMA, and the lane-wise a > b ? a : b into one max
 * instruction (exact once NaN and the sign of zero are not told apart). */
#if defined(__GNUC__) && !defined(__clang__)
#define FAST_MATH __attribute__((optimize("fp-contract=fast", "no-signed-zeros", "finite-math-only")))
#else
#define FAST_MATH
#endif

struct shape {
    Py_ssize_t rows, genes, hidden, low_bits, block;
};

/* Width of the tables: 2^bits coalitions (at least TILE_HIGH) rounded up to whole vectors. */
static Py_ssize_t padded(Py_ssize_t bits, Py_ssize_t lanes)
{
    const Py_ssize_t count = ((Py_ssize_t)1 << bits) > TILE_HIGH ? (Py_ssize_t)1 << bits : TILE_HIGH;
    return (count + lanes - 1) / lanes * lanes;
}

/* NAME: the kernel for element type T and vectors of BYTES (GNU vector extension; the lane-wise
 * max only becomes one instruction at the target's native width, hence one kernel per width).
 * Scratch, in rows of ``stride``: lo (H rows) = A transposed, neg_hi (H rows) = -B transposed,
 * hi_linear (1 row) = sum_u w2[u] B[hi, u]; then the bit patterns of the lanes and w2 . W1[:, j].
 * Transposed, a tile reads one vector of lo and TILE_HIGH consecutive hi per hidden unit. */
#define DEFINE_VALUES(NAME, T, BYTES, TARGET)                                                         \
    TARGET FAST_MATH static void NAME(struct shape s, const T *x, const T *weights, const T *base,    \
                                      const T *w2, T *out, T *scratch)                                \
    {                                                                                                 \
        typedef T vec __attribute__((vector_size(BYTES), aligned(sizeof(T))));                        \
        enum { LANES = BYTES / sizeof(T), LANE_BITS = (LANES >= 2) + (LANES >= 4) + (LANES >= 8) + (LANES >= 16) }; \
        const Py_ssize_t lo_bits = (s.low_bits + 1) / 2, hi_bits = s.low_bits - lo_bits;              \
        const Py_ssize_t n_lo = (Py_ssize_t)1 << lo_bits, n_hi = (Py_ssize_t)1 << hi_bits;            \
        const Py_ssize_t stride = padded(lo_bits, LANES);                                             \
        T *lo = scratch, *neg_hi = lo + s.hidden * stride, *hi_linear = neg_hi + s.hidden * stride;   \
        T *bits = hi_linear + stride, *gene_head = bits + LANE_BITS * LANES;                          \
        for (Py_ssize_t j = 0; j < LANE_BITS; j++)                                                    \
            for (Py_ssize_t l = 0; l < LANES; l++)                                                    \
                bits[j * LANES + l] = (T)(l >> j & 1);                                                \
        for (Py_ssize_t j = 0; j < s.genes; j++) {                                                    \
            gene_head[j] = 0;                                                                         \
            for (Py_ssize_t u = 0; u < s.hidden; u++)                                                 \
                gene_head[j] += w2[u] * weights[j * s.hidden + u];                                    \
        }                                                                                             \
        for (Py_ssize_t n = 0; n < s.rows; n++, x += s.genes, out += n_lo * n_hi) {                   \
            for (Py_ssize_t u = 0; u < s.hidden; u++) {                                               \
                T start = base[u];                                                                    \
                for (Py_ssize_t j = s.low_bits; j < s.genes; j++)                                     \
                    if (s.block >> (j - s.low_bits) & 1)                                              \
                        start += x[j] * weights[j * s.hidden + u];                                    \
                /* row u of A from start (genes 0..lo_bits-1), of -B from 0 (the next hi_bits): the */ \
                /* genes within a vector by multiply-adds of bit patterns, the rest by doubling */    \
                for (int side = 0; side < 2; side++) {                                                \
                    T *row = (side ? neg_hi : lo) + u * stride;                                       \
                    const Py_ssize_t first = side ? lo_bits : 0, count = side ? hi_bits : lo_bits;    \
                    const T sign = side ? -1 : 1;                                                     \
                    vec head = (side ? 0 : start) + (vec){0};                                         \
                    for (Py_ssize_t j = 0; j < count && j < LANE_BITS; j++)                           \
                        head += sign * x[first + j] * weights[(first + j) * s.hidden + u] *           \
                                  *(const vec *)(bits + j * LANES);                                   \
                    *(vec *)row = head;                                                               \
                    for (Py_ssize_t j = LANE_BITS; j < count; j++) {                                  \
                        const T offset = sign * x[first + j] * weights[(first + j) * s.hidden + u];   \
                        const Py_ssize_t half = (Py_ssize_t)1 << j;                                   \
                        for (Py_ssize_t c = 0; c < half; c += LANES)                                  \
                            *(vec *)(row + half + c) = *(const vec *)(row + c) + offset;              \
                    }                                                                                 \
                }                                                                                     \
            }                                                                                         \
            /* sum_u w2[u] B[hi, u] = sum of x_j (w2 . W1[:, j]) over the hi genes j, by doubling */  \
            memset(hi_linear, 0, stride * sizeof(T));                                                 \
            for (Py_ssize_t j = 0; j < hi_bits; j++)                                                  \
                for (Py_ssize_t t = 0; t < (Py_ssize_t)1 << j; t++)                                   \
                    hi_linear[t + ((Py_ssize_t)1 << j)] = hi_linear[t] + x[lo_bits + j] * gene_head[lo_bits + j]; \
            for (Py_ssize_t hi = 0; hi < n_hi; hi += TILE_HIGH)                                       \
                for (Py_ssize_t l0 = 0; l0 < n_lo; l0 += LANES) {                                     \
                    vec acc[TILE_HIGH] = {{0}};                                                       \
                    for (int h = 0; h < TILE_HIGH; h++)                                               \
                        acc[h] += hi_linear[hi + h];                                                  \
                    for (Py_ssize_t u = 0; u < s.hidden; u++) {                                       \
                        const vec a = *(const vec *)(lo + u * stride + l0);                           \
                        const T *b = neg_hi + u * stride + hi;                                        \
                        for (int h = 0; h < TILE_HIGH; h++) {                                         \
                            vec z;                                                                    \
                            for (int l = 0; l < LANES; l++)                                           \
                                z[l] = a[l] > b[h] ? a[l] : b[h];                                     \
                            acc[h] += w2[u] * z;                                                      \
                        }                                                                             \
                    }                                                                                 \
                    for (Py_ssize_t h = 0; h < TILE_HIGH && hi + h < n_hi; h++)                       \
                        if (n_lo >= LANES)                                                            \
                            *(vec *)(out + (hi + h) * n_lo + l0) = acc[h];                            \
                        else                                                                          \
                            memcpy(out + (hi + h) * n_lo, &acc[h], n_lo * sizeof(T));                 \
                }                                                                                     \
        }                                                                                             \
    }

/* x86-64: AVX-512 and AVX2 kernels, picked at run time; elsewhere SSE2 or NEON width. */
#if defined(__x86_64__) && defined(__GNUC__)
DEFINE_VALUES(values_float_avx512, float, 64, __attribute__((target("avx512f"))))
DEFINE_VALUES(values_double_avx512, double, 64, __attribute__((target("avx512f"))))
DEFINE_VALUES(values_float_avx2, float, 32, __attribute__((target("avx2,fma"))))
DEFINE_VALUES(values_double_avx2, double, 32, __attribute__((target("avx2,fma"))))
#define DISPATCH(T, ...)                                                                              \
    do {                                                                                              \
        if (__builtin_cpu_supports("avx512f"))                                                        \
            values_##T##_avx512(__VA_ARGS__);                                                         \
        else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))                    \
            values_##T##_avx2(__VA_ARGS__);                                                           \
        else                                                                                          \
            values_##T##_portable(__VA_ARGS__);                                                       \
    } while (0)
#else
#define DISPATCH(T, ...) values_##T##_portable(__VA_ARGS__)
#endif
DEFINE_VALUES(values_float_portable, float, 16, )
DEFINE_VALUES(values_double_portable, double, 16, )

enum { X, WEIGHTS, BASE, W2, OUT, N_BUFFERS };
static const char *const buffer_names[N_BUFFERS] = {"x", "weights", "base", "w2", "out"};
static const int buffer_ndim[N_BUFFERS] = {2, 2, 1, 1, 2};

static void release(Py_buffer *views, int count)
{
    for (int i = 0; i < count; i++)
        PyBuffer_Release(&views[i]);
}

/* Rows, genes and hidden units from the buffers, or -1 with ValueError when they disagree. */
static int check_shapes(Py_buffer *v, struct shape *s)
{
    for (int i = 0; i < N_BUFFERS; i++)
        if (v[i].ndim != buffer_ndim[i] || strcmp(v[i].format, v[X].format) != 0) {
            PyErr_Format(PyExc_ValueError, "%s must be a %d-d array of the dtype of x", buffer_names[i],
                         buffer_ndim[i]);
            return -1;
        }
    if (strcmp(v[X].format, "f") != 0 && strcmp(v[X].format, "d") != 0) {
        PyErr_SetString(PyExc_ValueError, "x must be float32 or float64");
        return -1;
    }
    s->rows = v[X].shape[0], s->genes = v[X].shape[1], s->hidden = v[WEIGHTS].shape[1];
    if (s->low_bits < 0 || s->low_bits > s->genes || s->low_bits > 24 || s->genes - s->low_bits > 30 ||
        s->block < 0 || s->block >> (s->genes - s->low_bits) != 0) {
        PyErr_SetString(PyExc_ValueError, "low_bits must be in 0..min(M, 24) and block in 0..2^(M - low_bits) - 1");
        return -1;
    }
    if (v[WEIGHTS].shape[0] != s->genes || v[BASE].shape[0] != s->hidden || v[W2].shape[0] != s->hidden ||
        v[OUT].shape[0] != s->rows || v[OUT].shape[1] != (Py_ssize_t)1 << s->low_bits) {
        PyErr_SetString(PyExc_ValueError, "shapes must be x (n, M), weights (M, H), base (H), w2 (H), out (n, 2^low_bits)");
        return -1;
    }
    return 0;
}

static PyObject *values(PyObject *module, PyObject *args)
{
    PyObject *objects[N_BUFFERS];
    struct shape s;
    if (!PyArg_ParseTuple(args, "OOOOOnn:values", &objects[X], &objects[WEIGHTS], &objects[BASE], &objects[W2],
                          &objects[OUT], &s.block, &s.low_bits))
        return NULL;
    Py_buffer views[N_BUFFERS];
    for (int i = 0; i < N_BUFFERS; i++)
        if (PyObject_GetBuffer(objects[i], &views[i], PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (i == OUT ? PyBUF_WRITABLE : 0)) < 0) {
            release(views, i);
            PyErr_Format(PyExc_ValueError, "%s must be a C-contiguous%s array", buffer_names[i], i == OUT ? " writable" : "");
            return NULL;
        }
    if (check_shapes(views, &s) < 0) {
        release(views, N_BUFFERS);
        return NULL;
    }
    const int is_float = strcmp(views[X].format, "f") == 0;
    const size_t item = is_float ? sizeof(float) : sizeof(double);
    const size_t stride = (size_t)padded((s.low_bits + 1) / 2, WIDEST_TILE / item);
    void *scratch = malloc(((2 * s.hidden + 1) * stride + 4 * WIDEST_TILE / item + s.genes) * item);
    if (scratch == NULL) {
        release(views, N_BUFFERS);
        return PyErr_NoMemory();
    }
    Py_BEGIN_ALLOW_THREADS
    if (is_float)
        DISPATCH(float, s, views[X].buf, views[WEIGHTS].buf, views[BASE].buf, views[W2].buf, views[OUT].buf, scratch);
    else
        DISPATCH(double, s, views[X].buf, views[WEIGHTS].buf, views[BASE].buf, views[W2].buf, views[OUT].buf, scratch);
    Py_END_ALLOW_THREADS
    free(scratch);
    release(views, N_BUFFERS);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"values", values, METH_VARARGS,
     "values(x, weights, base, w2, out, block, low_bits): out[n, c] = sum_u w2[u] relu(base[u] + "
     "sum_{i in T} x[n, i] weights[i, u]) for the coalition T = c + block * 2^low_bits of the genes.\n"
     "x (n, M) centred gene values, weights (M, H) = W1.T, base (H), w2 (H), out (n, 2^low_bits): "
     "all float32 or all float64, C-contiguous. Releases the GIL."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_coalitions",
                                    "Predictor values on every coalition of genes (exact Shapley interactions).",
                                    -1, methods};

PyMODINIT_FUNC PyInit__coalitions(void) { return PyModule_Create(&module); }
