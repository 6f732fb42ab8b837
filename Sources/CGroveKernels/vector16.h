// The 16-float vector type the GEMM kernels are written in (skinny_gemm.c, panel_gemm.c).
#ifndef GROVE_VECTOR16_H
#define GROVE_VECTOR16_H

#include <string.h>

// 16 floats: one AVX-512 register, two AVX2 or four SSE registers.
typedef float v16 __attribute__((vector_size(64)));

// Macros rather than functions: a 64-byte vector may not cross a call in the AVX2 and SSE
// builds (it would change the calling convention). memcpy: no alignment assumed.
#define LOAD16(p) ({ v16 v_; memcpy(&v_, (p), sizeof v_); v_; })

#endif
