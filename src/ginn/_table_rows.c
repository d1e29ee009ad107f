/* Text tables for ginn's stages: columns joined into rows, and whitespace-separated files split into columns.

   format_rows(columns, sep, na_rep) joins typed columns into the body of a separated text file, each value as
   Python's %-formatting writes it (what ginn.files.write_tsv wrote row by row before):
       ("text", list of str)              the strings as they are; None and NaN as na_rep
       ("int", int64 buffer)              decimal
       ("bool", one byte per row)         True / False
       ("float", float64 buffer, code, precision)   '%.<precision><code>' as Python's PyOS_double_to_string
                                          writes it (%g by a fast exact path where it can); NaN as na_rep
   and returns the UTF-8 bytes, or None when a text value holds the separator, a quote or a line break
   (a field to_csv would quote) or is neither str nor missing: the caller lets pandas write such a table.

   split_columns(text, n_columns) splits a PLINK text file (.bim, .fam) as [line.split() for line in
   text.splitlines()] would, blank lines skipped, into n_columns lists of str; a row of another width raises
   ValueError("<width>"). Lines of ASCII take a byte-level path; any other line is split by Python's own
   str.splitlines and str.split.

   The oracles are the Python expressions above, in tests/test_table_rows.py. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A growing byte buffer for the formatted rows. */
typedef struct {
    char *data;
    size_t len, cap;
} text_buffer;

static int buffer_reserve(text_buffer *buffer, size_t extra)
{
    if (buffer->len + extra <= buffer->cap)
        return 0;
    size_t cap = buffer->cap ? buffer->cap : 1 << 16;
    while (cap < buffer->len + extra)
        cap *= 2;
    char *data = PyMem_Realloc(buffer->data, cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    buffer->data = data;
    buffer->cap = cap;
    return 0;
}

static int buffer_append(text_buffer *buffer, const char *bytes, size_t n)
{
    if (buffer_reserve(buffer, n) < 0)
        return -1;
    memcpy(buffer->data + buffer->len, bytes, n);
    buffer->len += n;
    return 0;
}

enum column_kind { TEXT, INT, BOOL, FLOAT };

typedef struct {
    enum column_kind kind;
    PyObject *texts;  /* TEXT: the list */
    Py_buffer values; /* INT, BOOL, FLOAT */
    char code;        /* FLOAT: e, f, g, E, F or G */
    int precision;
} column;

static int parse_column(PyObject *spec, column *col, Py_ssize_t *n_rows)
{
    const char *kind;
    PyObject *values;
    const char *code = "g";
    col->precision = 6;
    if (!PyArg_ParseTuple(spec, "sO|si", &kind, &values, &code, &col->precision))
        return -1;
    Py_ssize_t rows, itemsize;
    if (strcmp(kind, "text") == 0) {
        if (!PyList_Check(values)) {
            PyErr_SetString(PyExc_TypeError, "a text column is a list of str");
            return -1;
        }
        col->kind = TEXT;
        col->texts = values;
        rows = PyList_GET_SIZE(values);
    } else {
        if (strcmp(kind, "int") == 0)
            col->kind = INT, itemsize = 8;
        else if (strcmp(kind, "bool") == 0)
            col->kind = BOOL, itemsize = 1;
        else if (strcmp(kind, "float") == 0)
            col->kind = FLOAT, itemsize = 8;
        else {
            PyErr_Format(PyExc_ValueError, "unknown column kind %s", kind);
            return -1;
        }
        if (col->kind == FLOAT && (strlen(code) != 1 || !strchr("efgEFG", code[0]) || col->precision < 0)) {
            PyErr_SetString(PyExc_ValueError, "a float column's format is one of e f g E F G and a precision >= 0");
            return -1;
        }
        col->code = code[0];
        if (PyObject_GetBuffer(values, &col->values, PyBUF_C_CONTIGUOUS) < 0)
            return -1;
        if (col->values.len % itemsize) {
            PyBuffer_Release(&col->values);
            PyErr_Format(PyExc_ValueError, "a %s column needs %zd bytes per value", kind, itemsize);
            return -1;
        }
        rows = col->values.len / itemsize;
    }
    if (*n_rows >= 0 && rows != *n_rows) {
        if (col->kind != TEXT)
            PyBuffer_Release(&col->values);
        PyErr_SetString(PyExc_ValueError, "columns of different lengths");
        return -1;
    }
    *n_rows = rows;
    return 0;
}

/* The last count decimal digits of value, zero-padded, two at a time (a chain of half as many divisions). */
static void write_digits(uint64_t value, int count, char *text)
{
    static const char pairs[] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                                "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                                "8081828384858687888990919293949596979899";
    int at = count;
    while (at >= 2) {
        unsigned pair = (unsigned)(value % 100);
        value /= 100;
        text[--at] = pairs[2 * pair + 1];
        text[--at] = pairs[2 * pair];
    }
    if (at)
        text[0] = (char)('0' + value % 10);
}

/* '%.<precision>g' of a double as Python writes it, for the common case, without a big-number conversion:
   the value scaled to <precision> digits by one exact power of ten (one rounding, relative error below
   2^-52) rounds to the same integer as the exact value unless it lies within that error of a half. Zero,
   infinities, scales beyond 10^22, precisions outside 1..15 and near-halves return 0: the caller then uses
   PyOS_double_to_string (the tests compare both over many doubles). Returns the length written to out. */
static int format_g_fast(double value, int precision, char *out)
{
    static const double powers[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    if (precision < 1 || precision > 15 || value == 0 || isinf(value))
        return 0;
    double magnitude = fabs(value);
    int binary_exponent;
    frexp(magnitude, &binary_exponent); /* magnitude in [2^(b-1), 2^b): its decade from b, to within one */
    int exponent = (int)floor((binary_exponent - 1) * 0.30102999566398120);
    uint64_t digits = 0;
    for (int attempt = 0; attempt < 3; attempt++) { /* the estimate may be one decade low */
        int scale = precision - 1 - exponent;
        if (scale > 22 || scale < -22)
            return 0;
        double scaled = scale >= 0 ? magnitude * powers[scale] : magnitude / powers[-scale];
        double whole = floor(scaled), fraction = scaled - whole;
        if (fabs(fraction - 0.5) <= scaled * 4.5e-16 + 1e-300)
            return 0;
        digits = (uint64_t)whole + (fraction > 0.5);
        if (digits < (uint64_t)powers[precision - 1])
            exponent--;
        else if (digits > (uint64_t)powers[precision])
            exponent++;
        else
            break;
        if (attempt == 2)
            return 0;
    }
    if (digits == (uint64_t)powers[precision]) { /* rounded up into the next decade: 1 and zeros */
        digits /= 10;
        exponent++;
    }
    char text[16];
    write_digits(digits, precision, text);
    int kept = precision; /* significant digits without trailing zeros */
    while (kept > 1 && text[kept - 1] == '0')
        kept--;
    char *at = out;
    if (value < 0)
        *at++ = '-';
    if (exponent >= -4 && exponent < precision) {
        if (exponent < 0) {
            *at++ = '0';
            *at++ = '.';
            for (int i = 0; i < -exponent - 1; i++)
                *at++ = '0';
            memcpy(at, text, (size_t)kept);
            at += kept;
        } else {
            memcpy(at, text, (size_t)exponent + 1);
            at += exponent + 1;
            if (kept > exponent + 1) {
                *at++ = '.';
                memcpy(at, text + exponent + 1, (size_t)(kept - exponent - 1));
                at += kept - exponent - 1;
            }
        }
    } else {
        *at++ = text[0];
        if (kept > 1) {
            *at++ = '.';
            memcpy(at, text + 1, (size_t)kept - 1);
            at += kept - 1;
        }
        *at++ = 'e';
        *at++ = exponent < 0 ? '-' : '+';
        int power = abs(exponent);
        if (power >= 100)
            *at++ = (char)('0' + power / 100);
        *at++ = (char)('0' + power / 10 % 10);
        *at++ = (char)('0' + power % 10);
    }
    return (int)(at - out);
}

/* Append one value; 1 if it is text that needs quoting, -1 on error. */
static int append_value(text_buffer *buffer, const column *col, Py_ssize_t row, const char *sep, size_t sep_len,
                        const char *na_rep, size_t na_len)
{
    char digits[32];
    switch (col->kind) {
    case TEXT: {
        PyObject *item = PyList_GET_ITEM(col->texts, row);
        if (item == Py_None || (PyFloat_Check(item) && isnan(PyFloat_AS_DOUBLE(item))))
            return buffer_append(buffer, na_rep, na_len);
        if (!PyUnicode_Check(item))
            return 1; /* neither text nor missing: to_csv decides how it looks */
        Py_ssize_t size;
        const char *text = PyUnicode_AsUTF8AndSize(item, &size);
        if (text == NULL)
            return -1;
        for (Py_ssize_t i = 0; i < size; i++) {
            char c = text[i];
            if (c == '"' || c == '\n' || c == '\r' || (c == sep[0] && (sep_len == 1 ||
                (size - i >= (Py_ssize_t)sep_len && memcmp(text + i, sep, sep_len) == 0))))
                return 1;
        }
        return buffer_append(buffer, text, (size_t)size);
    }
    case INT: { /* decimal digits from the end (snprintf's format parsing costs more than the digits) */
        int64_t value = ((const int64_t *)col->values.buf)[row];
        uint64_t magnitude = value < 0 ? 0 - (uint64_t)value : (uint64_t)value;
        char *end = digits + sizeof digits, *at = end;
        do {
            *--at = (char)('0' + magnitude % 10);
            magnitude /= 10;
        } while (magnitude);
        if (value < 0)
            *--at = '-';
        return buffer_append(buffer, at, (size_t)(end - at));
    }
    case BOOL:
        return ((const unsigned char *)col->values.buf)[row] ? buffer_append(buffer, "True", 4)
                                                             : buffer_append(buffer, "False", 5);
    case FLOAT: {
        double value = ((const double *)col->values.buf)[row];
        if (value != value)
            return buffer_append(buffer, na_rep, na_len);
        if (col->code == 'g' && buffer_reserve(buffer, 32) == 0) {
            int n = format_g_fast(value, col->precision, buffer->data + buffer->len);
            if (n > 0) {
                buffer->len += (size_t)n;
                return 0;
            }
        }
        char *text = PyOS_double_to_string(value, col->code, col->precision, 0, NULL);
        if (text == NULL)
            return -1;
        int status = buffer_append(buffer, text, strlen(text));
        PyMem_Free(text);
        return status;
    }
    }
    return -1;
}

static PyObject *format_rows(PyObject *self, PyObject *args)
{
    PyObject *specs;
    const char *sep, *na_rep;
    Py_ssize_t sep_len, na_len;
    if (!PyArg_ParseTuple(args, "O!s#s#", &PyList_Type, &specs, &sep, &sep_len, &na_rep, &na_len))
        return NULL;
    if (sep_len < 1) {
        PyErr_SetString(PyExc_ValueError, "the separator is empty");
        return NULL;
    }
    Py_ssize_t n_columns = PyList_GET_SIZE(specs), n_rows = -1, parsed = 0;
    column *columns = PyMem_Calloc((size_t)(n_columns ? n_columns : 1), sizeof(column));
    text_buffer buffer = {NULL, 0, 0};
    PyObject *result = NULL;
    if (columns == NULL)
        return PyErr_NoMemory();
    for (; parsed < n_columns; parsed++)
        if (parse_column(PyList_GET_ITEM(specs, parsed), &columns[parsed], &n_rows) < 0)
            goto done;
    for (Py_ssize_t row = 0; row < n_rows && n_columns; row++) {
        for (Py_ssize_t c = 0; c < n_columns; c++) {
            if (c && buffer_append(&buffer, sep, (size_t)sep_len) < 0)
                goto done;
            int status = append_value(&buffer, &columns[c], row, sep, (size_t)sep_len, na_rep, (size_t)na_len);
            if (status < 0)
                goto done;
            if (status > 0) {
                result = Py_NewRef(Py_None);
                goto done;
            }
        }
        if (buffer_append(&buffer, "\n", 1) < 0)
            goto done;
    }
    result = PyBytes_FromStringAndSize(buffer.data ? buffer.data : "", (Py_ssize_t)buffer.len);
done:
    for (Py_ssize_t c = 0; c < parsed; c++)
        if (columns[c].kind != TEXT)
            PyBuffer_Release(&columns[c].values);
    PyMem_Free(columns);
    PyMem_Free(buffer.data);
    return result;
}

/* ASCII characters that end a line for str.splitlines, and those that separate fields for str.split. */
static int is_line_break(unsigned char c)
{
    return c == '\n' || c == '\r' || c == '\v' || c == '\f' || c == 0x1c || c == 0x1d || c == 0x1e;
}

static int is_field_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == 0x1f || is_line_break(c);
}

/* Append one row's fields to the columns; -1 with ValueError("<width>") for a row of another width. */
static int add_row(PyObject *fields, PyObject *columns, Py_ssize_t n_columns)
{
    Py_ssize_t width = PyList_GET_SIZE(fields);
    if (width == 0)
        return 0;
    if (width != n_columns) {
        PyErr_Format(PyExc_ValueError, "%zd", width);
        return -1;
    }
    for (Py_ssize_t c = 0; c < n_columns; c++)
        if (PyList_Append(PyList_GET_ITEM(columns, c), PyList_GET_ITEM(fields, c)) < 0)
            return -1;
    return 0;
}

/* A line with non-ASCII characters: Python's own splitlines and split (Unicode line breaks and spaces). */
static int add_unicode_line(PyObject *text, Py_ssize_t start, Py_ssize_t stop, PyObject *columns,
                            Py_ssize_t n_columns)
{
    PyObject *line = PyUnicode_Substring(text, start, stop);
    PyObject *parts = line ? PyUnicode_Splitlines(line, 0) : NULL;
    Py_XDECREF(line);
    if (parts == NULL)
        return -1;
    int status = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(parts) && status == 0; i++) {
        PyObject *fields = PyUnicode_Split(PyList_GET_ITEM(parts, i), NULL, -1);
        status = fields ? add_row(fields, columns, n_columns) : -1;
        Py_XDECREF(fields);
    }
    Py_DECREF(parts);
    return status;
}

static PyObject *split_columns(PyObject *self, PyObject *args)
{
    PyObject *text;
    Py_ssize_t n_columns;
    if (!PyArg_ParseTuple(args, "Un", &text, &n_columns))
        return NULL;
    if (n_columns < 1) {
        PyErr_SetString(PyExc_ValueError, "n_columns must be positive");
        return NULL;
    }
    PyObject *columns = PyList_New(n_columns);
    PyObject *fields = PyList_New(n_columns);
    if (columns == NULL || fields == NULL)
        goto fail;
    for (Py_ssize_t c = 0; c < n_columns; c++) {
        PyObject *values = PyList_New(0);
        if (values == NULL)
            goto fail;
        PyList_SET_ITEM(columns, c, values);
    }
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t length = PyUnicode_GET_LENGTH(text), start = 0;
    while (start < length) {
        /* One ASCII-delimited line: up to an ASCII line break, noting any non-ASCII character. */
        Py_ssize_t stop = start;
        int ascii = 1;
        for (; stop < length; stop++) {
            Py_UCS4 c = PyUnicode_READ(kind, data, stop);
            if (c >= 0x80)
                ascii = 0;
            else if (is_line_break((unsigned char)c))
                break;
        }
        if (!ascii) {
            if (add_unicode_line(text, start, stop, columns, n_columns) < 0)
                goto fail;
        } else {
            Py_ssize_t width = 0, at = start;
            while (at < stop) {
                while (at < stop && is_field_space((unsigned char)PyUnicode_READ(kind, data, at)))
                    at++;
                if (at == stop)
                    break;
                Py_ssize_t end = at;
                while (end < stop && !is_field_space((unsigned char)PyUnicode_READ(kind, data, end)))
                    end++;
                if (width < n_columns) {
                    PyObject *field = PyUnicode_Substring(text, at, end);
                    if (field == NULL || PyList_SetItem(fields, width, field) < 0)
                        goto fail;
                }
                width++;
                at = end;
            }
            if (width && width != n_columns) {
                PyErr_Format(PyExc_ValueError, "%zd", width);
                goto fail;
            }
            for (Py_ssize_t c = 0; c < width; c++)
                if (PyList_Append(PyList_GET_ITEM(columns, c), PyList_GET_ITEM(fields, c)) < 0)
                    goto fail;
        }
        start = stop + 1;
    }
    Py_DECREF(fields);
    return columns;
fail:
    Py_XDECREF(fields);
    Py_XDECREF(columns);
    return NULL;
}

static PyMethodDef methods[] = {
    {"format_rows", format_rows, METH_VARARGS,
     "format_rows(columns, sep, na_rep): the rows of typed columns as UTF-8 bytes, one line each, or None if a "
     "text value needs quoting (see the C source)."},
    {"split_columns", split_columns, METH_VARARGS,
     "split_columns(text, n_columns): the whitespace-separated fields of the text's non-blank lines as "
     "n_columns lists of str; ValueError(width) for a line of another width."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_table_rows",
                                    "Text tables: typed columns to rows and back (see the C source).", -1, methods};

PyMODINIT_FUNC PyInit__table_rows(void)
{
    return PyModule_Create(&module);
}
