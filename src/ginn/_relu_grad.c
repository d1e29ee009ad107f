/* The masked ReLU gradient of ginn.model._HiddenLayer's backward, broadcast over hidden units.

   For float32 buffers grad_out (R, B) and act, out (R * U, B), all C-contiguous:

       out[r * U + u, b] = act[r * U + u, b] <= 0 ? 0 : grad_out[r, b]

   Oracle: torch.ops.aten.threshold_backward(grad_out.view(R, 1, B).expand(R, U, B),
   act.view(R, U, B), 0), which torch runs slowly because of the stride-0 (broadcast) input.
   NaN in act passes the gradient, as in the oracle. out may be act itself.

   relu_grad(grad_out_ptr, act_ptr, out_ptr, R, U, B): addresses (tensor.data_ptr()) and sizes;
   the caller checks dtype, contiguity and sizes. The GIL is released while it runs. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#if defined(__x86_64__) && defined(__GNUC__) && defined(__linux__)
/* one build for every x86-64: the loader picks the widest vector unit the CPU has */
#define VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VECTOR_CLONES
#endif

VECTOR_CLONES
static void relu_grad(const float *restrict grad_out, const float *act, float *out,
                      Py_ssize_t rows, Py_ssize_t units, Py_ssize_t width)
{
    for (Py_ssize_t r = 0; r < rows; r++) {
        const float *restrict g = grad_out + r * width;
        for (Py_ssize_t u = 0; u < units; u++) {
            Py_ssize_t offset = (r * units + u) * width;
            const float *a = act + offset;
            float *o = out + offset;
            for (Py_ssize_t b = 0; b < width; b++)   /* a branch-free select: gcc vectorises it */
                o[b] = a[b] <= 0.0f ? 0.0f : g[b];
        }
    }
}

static PyObject *relu_grad_py(PyObject *self, PyObject *args)
{
    unsigned long long grad_out, act, out;
    Py_ssize_t rows, units, width;
    (void)self;
    if (!PyArg_ParseTuple(args, "KKKnnn", &grad_out, &act, &out, &rows, &units, &width))
        return NULL;
    if (rows < 0 || units < 0 || width < 0) {
        PyErr_SetString(PyExc_ValueError, "negative size");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    relu_grad((const float *)(uintptr_t)grad_out, (const float *)(uintptr_t)act, (float *)(uintptr_t)out,
              rows, units, width);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"relu_grad", relu_grad_py, METH_VARARGS,
     "relu_grad(grad_out_ptr, act_ptr, out_ptr, rows, units, width): out = act <= 0 ? 0 : grad_out "
     "broadcast over units (float32, C-contiguous)."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_relu_grad",
                                    "The masked ReLU gradient of ginn.model._HiddenLayer.", -1, methods};

PyMODINIT_FUNC PyInit__relu_grad(void) { return PyModule_Create(&module); }
