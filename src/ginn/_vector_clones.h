/* One build for every x86-64: a function marked VECTOR_CLONES is compiled for AVX-512, AVX2 and
   baseline x86-64, and the loader picks the widest vector unit the CPU has (GCC target_clones).
   Elsewhere it is compiled once, for the target at hand. */
#ifndef GINN_VECTOR_CLONES_H
#define GINN_VECTOR_CLONES_H

#if defined(__x86_64__) && defined(__GNUC__) && defined(__linux__)
#define VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VECTOR_CLONES
#endif

#endif
