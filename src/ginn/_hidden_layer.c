/* The two elementwise passes of ginn.model._HiddenLayer on CPU float32, each one pass over the
   (R * U, B) pre-activations: rows r * U + u, u < U, are the U hidden units of group r (one gene
   MLP or predictor of one network), and each group has one output row.

   relu_weighted_sum(pre, v, out, R, U, B), forward:
       out[r, b] = sum_u v[r, u] * relu(pre[r * U + u, b])        (sum in order u = 0, 1, ...)
   oracle: torch.bmm(v.view(R, 1, U), pre.relu().view(R, U, B)).view(R, B); pre is only read.

   relu_grad(grad_out, pre, out, R, U, B), backward:
       out[r * U + u, b] = pre[r * U + u, b] <= 0 ? 0 : grad_out[r, b]
   oracle: torch.ops.aten.threshold_backward(grad_out.view(R, 1, B).expand(R, U, B),
   pre.view(R, U, B), 0), which torch runs slowly because of the stride-0 (broadcast) input.
   out may be pre itself.

   As in torch, NaN counts as active (relu(NaN) = NaN and passes the gradient). Arguments are
   addresses (tensor.data_ptr()) of C-contiguous float32 buffers, sizes and a thread count; the
   caller checks dtype, contiguity and sizes. The GIL is released while a kernel runs.

   Threads: OpenMP over the groups r. torch is imported first and its wheel ships libgomp.so.1, so
   this module's libgomp.so.1 resolves to torch's copy: one thread pool, whose workers are already
   awake after the torch op before (a thread of our own would wait for them to stop spinning). */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#include "_vector_clones.h"

VECTOR_CLONES
static void relu_weighted_sum(const float *restrict pre, const float *restrict v, float *restrict out,
                              Py_ssize_t rows, Py_ssize_t units, Py_ssize_t width, int threads)
{
    (void)threads;
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads) schedule(static)
#endif
    for (Py_ssize_t r = 0; r < rows; r++) {
        float *restrict o = out + r * width;
        for (Py_ssize_t b = 0; b < width; b++)
            o[b] = 0.0f;
        for (Py_ssize_t u = 0; u < units; u++) {   /* one output row (L1-resident) per group */
            const float *restrict p = pre + (r * units + u) * width;
            float weight = v[r * units + u];
            for (Py_ssize_t b = 0; b < width; b++)
                o[b] += weight * (p[b] <= 0.0f ? 0.0f : p[b]);
        }
    }
}

VECTOR_CLONES
static void relu_grad(const float *restrict grad_out, const float *pre, float *out,
                      Py_ssize_t rows, Py_ssize_t units, Py_ssize_t width, int threads)
{
    (void)threads;
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads) schedule(static)
#endif
    for (Py_ssize_t r = 0; r < rows; r++) {
        const float *restrict g = grad_out + r * width;
        for (Py_ssize_t u = 0; u < units; u++) {
            Py_ssize_t offset = (r * units + u) * width;
            const float *p = pre + offset;
            float *o = out + offset;
            for (Py_ssize_t b = 0; b < width; b++)   /* a branch-free select: gcc vectorises it */
                o[b] = p[b] <= 0.0f ? 0.0f : g[b];
        }
    }
}

typedef void (*kernel)(const float *, const float *, float *, Py_ssize_t, Py_ssize_t, Py_ssize_t, int);

/* (first_ptr, second_ptr, out_ptr, rows, units, width, threads) -> kernel(...) without the GIL */
static PyObject *call(kernel run, PyObject *args)
{
    unsigned long long first, second, out;
    Py_ssize_t rows, units, width;
    int threads;
    if (!PyArg_ParseTuple(args, "KKKnnni", &first, &second, &out, &rows, &units, &width, &threads))
        return NULL;
    if (rows < 0 || units < 0 || width < 0 || threads < 1) {
        PyErr_SetString(PyExc_ValueError, "negative size or no thread");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    run((const float *)(uintptr_t)first, (const float *)(uintptr_t)second, (float *)(uintptr_t)out,
        rows, units, width, threads);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *relu_weighted_sum_py(PyObject *self, PyObject *args)
{
    (void)self;
    return call(relu_weighted_sum, args);
}

static PyObject *relu_grad_py(PyObject *self, PyObject *args)
{
    (void)self;
    return call(relu_grad, args);
}

static PyMethodDef methods[] = {
    {"relu_weighted_sum", relu_weighted_sum_py, METH_VARARGS,
     "relu_weighted_sum(pre_ptr, v_ptr, out_ptr, rows, units, width, threads): out = sum over units of "
     "v * relu(pre)."},
    {"relu_grad", relu_grad_py, METH_VARARGS,
     "relu_grad(grad_out_ptr, pre_ptr, out_ptr, rows, units, width, threads): out = pre <= 0 ? 0 : "
     "grad_out broadcast over units."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_hidden_layer",
                                    "The elementwise passes of ginn.model._HiddenLayer on CPU float32.", -1, methods};

PyMODINIT_FUNC PyInit__hidden_layer(void) { return PyModule_Create(&module); }
