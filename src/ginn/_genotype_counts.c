/* Counting and testing PLINK 1 .bed genotypes for `ginn qc`, straight from the packed 2-bit codes.

   A .bed row holds one variant, four samples a byte, low bits first: 00 hom A1 (two copies of the
   counted allele), 01 missing, 10 het, 11 hom A2. Counts are taken 32 samples at a time from 64-bit
   words, with one popcount per genotype class (as plink2 does), over the samples a 0/1 mask keeps.

   count_genotypes(rows, n_samples, keep, counts)        per variant: 0, 1, 2 copies of A1, missing
   add_missing_per_sample(rows, n_samples, missing)      per sample: missing calls added to int64 totals
   hwe_exact_pvalues(hom_a, het, hom_b, log_fact, p)     plink2's two-sided HWE exact test per variant

   The oracles are numpy computations in tests/test_genotype_counts.py; the GIL is released in every loop. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define LOW_BITS 0x5555555555555555ULL

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define POPCOUNT_DISPATCH __attribute__((target_clones("popcnt", "default")))
#else
#define POPCOUNT_DISPATCH
#endif

/* Up to 8 bytes as a little-endian word (x86-64 and aarch64 Linux are little-endian); missing bytes are 0. */
static inline uint64_t load_word(const unsigned char *bytes, size_t n_bytes)
{
    uint64_t word = 0;
    memcpy(&word, bytes, n_bytes);
    return word;
}

/* Per-sample low bits (01 at each kept sample's 2-bit slot), one byte per 4 samples, padded to whole words. */
static unsigned char *keep_mask(const unsigned char *keep, Py_ssize_t n_samples, Py_ssize_t n_words)
{
    unsigned char *mask = PyMem_Calloc((size_t)n_words, 8);
    if (mask == NULL)
        return NULL;
    for (Py_ssize_t sample = 0; sample < n_samples; sample++)
        if (keep[sample])
            mask[sample / 4] |= (unsigned char)(1u << (2 * (sample % 4)));
    return mask;
}

static inline void count_word(uint64_t word, uint64_t mask, int64_t *missing, int64_t *het, int64_t *hom_a2)
{
    uint64_t low = word & mask, high = (word >> 1) & mask;
    *missing += __builtin_popcountll(low & ~high);
    *het += __builtin_popcountll(high & ~low);
    *hom_a2 += __builtin_popcountll(low & high);
}

POPCOUNT_DISPATCH
static void count_rows(const unsigned char *rows, Py_ssize_t n_rows, Py_ssize_t row_bytes, const uint64_t *mask,
                       int64_t n_kept, int64_t *counts)
{
    Py_ssize_t full_words = row_bytes / 8;
    size_t tail_bytes = (size_t)(row_bytes % 8);
    for (Py_ssize_t row = 0; row < n_rows; row++) {
        const unsigned char *bytes = rows + row * row_bytes;
        int64_t missing = 0, het = 0, hom_a2 = 0;
        for (Py_ssize_t w = 0; w < full_words; w++)
            count_word(load_word(bytes + 8 * w, 8), mask[w], &missing, &het, &hom_a2);
        if (tail_bytes)
            count_word(load_word(bytes + 8 * full_words, tail_bytes), mask[full_words], &missing, &het, &hom_a2);
        int64_t *out = counts + 4 * row;
        out[0] = hom_a2;
        out[1] = het;
        out[2] = n_kept - missing - het - hom_a2;
        out[3] = missing;
    }
}

static int check_rows(Py_buffer *rows, Py_ssize_t n_samples, Py_ssize_t *row_bytes, Py_ssize_t *n_rows)
{
    if (n_samples < 1) {
        PyErr_SetString(PyExc_ValueError, "n_samples must be positive");
        return -1;
    }
    *row_bytes = (n_samples + 3) / 4;
    if (rows->len % *row_bytes) {
        PyErr_SetString(PyExc_ValueError, "rows are not whole .bed rows of n_samples");
        return -1;
    }
    *n_rows = rows->len / *row_bytes;
    return 0;
}

static PyObject *count_genotypes(PyObject *self, PyObject *args)
{
    Py_buffer rows, keep, counts;
    Py_ssize_t n_samples, row_bytes, n_rows;
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "y*ny*w*", &rows, &n_samples, &keep, &counts))
        return NULL;
    if (check_rows(&rows, n_samples, &row_bytes, &n_rows) < 0)
        goto done;
    if (keep.len != n_samples || counts.len != n_rows * 4 * (Py_ssize_t)sizeof(int64_t)) {
        PyErr_SetString(PyExc_ValueError, "keep needs one byte per sample, counts 4 int64 per row");
        goto done;
    }
    Py_ssize_t n_words = (row_bytes + 7) / 8;
    unsigned char *mask = keep_mask(keep.buf, n_samples, n_words);
    if (mask == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    int64_t n_kept = 0;
    for (Py_ssize_t sample = 0; sample < n_samples; sample++)
        n_kept += ((const unsigned char *)keep.buf)[sample] != 0;
    Py_BEGIN_ALLOW_THREADS
    count_rows(rows.buf, n_rows, row_bytes, (const uint64_t *)mask, n_kept, counts.buf);
    Py_END_ALLOW_THREADS
    PyMem_Free(mask);
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&rows);
    PyBuffer_Release(&keep);
    PyBuffer_Release(&counts);
    return result;
}

/* Missing calls per sample: each .bed byte adds its four samples' missing flags, looked up as four byte
   counters in one 32-bit word, to byte counters that are flushed into the int64 totals before they overflow. */
static void add_missing_rows(const unsigned char *rows, Py_ssize_t n_rows, Py_ssize_t n_samples, Py_ssize_t row_bytes,
                             uint32_t *counters, int64_t *missing)
{
    uint32_t flags[256];
    for (unsigned byte = 0; byte < 256; byte++) {
        uint32_t word = 0;
        for (unsigned slot = 0; slot < 4; slot++)
            word |= (uint32_t)(((byte >> (2 * slot)) & 3) == 1) << (8 * slot);
        flags[byte] = word;
    }
    for (Py_ssize_t start = 0; start < n_rows; start += 255) {
        Py_ssize_t stop = start + 255 < n_rows ? start + 255 : n_rows;
        for (Py_ssize_t row = start; row < stop; row++) {
            const unsigned char *bytes = rows + row * row_bytes;
            for (Py_ssize_t b = 0; b < row_bytes; b++)
                counters[b] += flags[bytes[b]];
        }
        for (Py_ssize_t sample = 0; sample < n_samples; sample++)
            missing[sample] += (counters[sample / 4] >> (8 * (sample % 4))) & 0xFF; /* padding slots dropped */
        memset(counters, 0, (size_t)row_bytes * sizeof(uint32_t));
    }
}

static PyObject *add_missing_per_sample(PyObject *self, PyObject *args)
{
    Py_buffer rows, missing;
    Py_ssize_t n_samples, row_bytes, n_rows;
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "y*nw*", &rows, &n_samples, &missing))
        return NULL;
    if (check_rows(&rows, n_samples, &row_bytes, &n_rows) < 0)
        goto done;
    if (missing.len != n_samples * (Py_ssize_t)sizeof(int64_t)) {
        PyErr_SetString(PyExc_ValueError, "missing needs one int64 per sample");
        goto done;
    }
    uint32_t *counters = PyMem_Calloc((size_t)row_bytes, sizeof(uint32_t));
    if (counters == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    add_missing_rows(rows.buf, n_rows, n_samples, row_bytes, counters, missing.buf);
    Py_END_ALLOW_THREADS
    PyMem_Free(counters);
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&rows);
    PyBuffer_Release(&missing);
    return result;
}

/* The HWE exact test (Wigginton, Cutler & Abecasis 2005) as plink2 reports it, one variant at a time.

   The heterozygote count's null distribution is unimodal; the p-value (mass of the counts no more likely
   than the observed one, within a relative tie margin) is 1 minus the central mass more likely than it,
   with the exact normaliser from log factorials. Where that is below 1e-3 (its cancellation would show in
   6 digits) the tails are summed instead, walking until terms are below 1e-17 of the mode and of the
   observed probability. Probabilities are relative to the mode's; the walk is the paper's recurrence. */

#define HWE_TIE_TOLERANCE 1e-7

typedef struct {
    double walked; /* the terms walked (central: those kept going; tails: all) */
    double tail;   /* tails: the terms at most the threshold */
} walk_sums;

typedef struct {
    int direction; /* +1: more heterozygotes, -1: fewer */
    double het, twice_rare_hom, twice_common_hom, prob;
    walk_sums sums;
} hwe_walker;

/* One step of the recurrence outwards; whether the walk goes on. */
static inline int hwe_step(hwe_walker *w, double threshold, double negligible, int tails)
{
    int valid;
    if (w->direction > 0) {
        valid = w->twice_rare_hom >= 2 && w->twice_common_hom >= 2;
        w->prob = w->prob * (w->twice_rare_hom * w->twice_common_hom) / ((w->het + 1) * (w->het + 2));
    } else {
        valid = w->het >= 2;
        w->prob = w->prob * (w->het * (w->het - 1)) / ((w->twice_rare_hom + 2) * (w->twice_common_hom + 2));
    }
    w->het += 2 * w->direction;
    w->twice_rare_hom -= 2 * w->direction;
    w->twice_common_hom -= 2 * w->direction;
    if (!valid)
        return 0;
    if (tails) {
        w->sums.walked += w->prob;
        if (w->prob <= threshold)
            w->sums.tail += w->prob;
        return w->prob > negligible;
    }
    if (!(w->prob > threshold))
        return 0;
    w->sums.walked += w->prob;
    return 1;
}

/* Both directions from the mode, stepped in turn while both go on: two independent chains of divisions
   that the CPU overlaps. */
static walk_sums hwe_walk(double mode, double rare, double n, double threshold, double negligible, int tails)
{
    hwe_walker up = {1, mode, rare - mode, 2 * n - rare - mode, 1.0, {0.0, 0.0}};
    hwe_walker down = {-1, mode, rare - mode, 2 * n - rare - mode, 1.0, {0.0, 0.0}};
    int up_going = 1, down_going = 1;
    while (up_going && down_going) {
        up_going = hwe_step(&up, threshold, negligible, tails);
        down_going = hwe_step(&down, threshold, negligible, tails);
    }
    while (up_going)
        up_going = hwe_step(&up, threshold, negligible, tails);
    while (down_going)
        down_going = hwe_step(&down, threshold, negligible, tails);
    return (walk_sums){up.sums.walked + down.sums.walked, up.sums.tail + down.sums.tail};
}

static double hwe_pvalue(int64_t hom_a, int64_t het_count, int64_t hom_b, const double *log_fact)
{
    double n = (double)(hom_a + het_count + hom_b);
    if (n <= 0)
        return 1.0; /* no hard call at all: plink2 reports p = 1 */
    double obs_het = (double)het_count;
    double rare = fmin(2.0 * hom_a + obs_het, 2.0 * hom_b + obs_het);
    double mode = floor(rare * (2 * n - rare) / (2 * n));
    if (fmod(mode, 2) != fmod(rare, 2))
        mode += 1;
    mode = fmin(mode, rare);
#define LF(k) log_fact[(int64_t)(k)]
#define LOG_PROB(het)                                                                                      \
    ((het) * log(2.0) - LF((rare - (het)) / 2) - LF(het) - LF(n - (het) - (rare - (het)) / 2) + LF(n) + LF(rare) \
     + LF(2 * n - rare) - LF(2 * n))
    double log_prob_mode = LOG_PROB(mode);
    double obs = exp(LOG_PROB(obs_het) - log_prob_mode);
#undef LOG_PROB
#undef LF
    double threshold = obs * (1 + HWE_TIE_TOLERANCE);
    double central = hwe_walk(mode, rare, n, threshold, 0.0, 0).walked + (threshold < 1.0);
    double p = fmin(fmax(1 - central * exp(log_prob_mode), 0.0), 1.0);
    if (p < 1e-3) {
        walk_sums sums = hwe_walk(mode, rare, n, threshold, 1e-17 * fmin(1.0, obs), 1);
        p = fmin(1.0, (sums.tail + (threshold >= 1.0)) / (sums.walked + 1.0));
    }
    return p;
}

static PyObject *hwe_exact_pvalues(PyObject *self, PyObject *args)
{
    Py_buffer hom_a, het, hom_b, log_fact, p;
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "y*y*y*y*w*", &hom_a, &het, &hom_b, &log_fact, &p))
        return NULL;
    Py_ssize_t n = hom_a.len / (Py_ssize_t)sizeof(int64_t);
    if (het.len != hom_a.len || hom_b.len != hom_a.len || p.len != n * (Py_ssize_t)sizeof(double)) {
        PyErr_SetString(PyExc_ValueError, "hom_a, het, hom_b (int64) and p (float64) need one value per variant");
        goto done;
    }
    const int64_t *a = hom_a.buf, *h = het.buf, *b = hom_b.buf;
    Py_ssize_t n_fact = log_fact.len / (Py_ssize_t)sizeof(double);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (a[i] < 0 || h[i] < 0 || b[i] < 0 || 2 * (a[i] + h[i] + b[i]) >= n_fact) {
            PyErr_SetString(PyExc_ValueError, "genotype counts must be non-negative, log factorials reach 2n");
            goto done;
        }
    }
    double *out = p.buf;
    const double *table = log_fact.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++)
        out[i] = hwe_pvalue(a[i], h[i], b[i], table);
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&hom_a);
    PyBuffer_Release(&het);
    PyBuffer_Release(&hom_b);
    PyBuffer_Release(&log_fact);
    PyBuffer_Release(&p);
    return result;
}

static PyMethodDef methods[] = {
    {"count_genotypes", count_genotypes, METH_VARARGS,
     "count_genotypes(rows, n_samples, keep, counts): per .bed row, the kept samples with 0, 1, 2 copies of A1 "
     "and missing, into int64 counts (rows x 4)."},
    {"add_missing_per_sample", add_missing_per_sample, METH_VARARGS,
     "add_missing_per_sample(rows, n_samples, missing): add each sample's missing calls in the .bed rows to "
     "int64 missing (one per sample)."},
    {"hwe_exact_pvalues", hwe_exact_pvalues, METH_VARARGS,
     "hwe_exact_pvalues(hom_a, het, hom_b, log_factorials, p): plink2's HWE exact p per variant (int64 counts, "
     "log(k!) for k = 0..2n at least) into float64 p."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_genotype_counts",
                                    "Counting and testing PLINK 1 .bed genotypes (see the C source).", -1, methods};

PyMODINIT_FUNC PyInit__genotype_counts(void)
{
    return PyModule_Create(&module);
}
