// The 16-float vector type the kernels are written in, and the dot product they share.
#ifndef GROVE_VECTOR16_H
#define GROVE_VECTOR16_H

#include <string.h>

// 16 floats: one AVX-512 register, two AVX2 or four SSE registers.
typedef float v16 __attribute__((vector_size(64)));

// Macros rather than functions: a 64-byte vector may not cross a call in the AVX2 and SSE
// builds (it would change the calling convention). memcpy: no alignment assumed.
#define LOAD16(p) ({ v16 v_; memcpy(&v_, (p), sizeof v_); v_; })

// Σ a[i]·b[i]: 64 float partial sums (four 16-lane accumulators, so no serial chain of adds),
// added up in double, then the tail. Inlined into each instruction-set build of its caller.
static inline __attribute__((always_inline)) double dot16(const float *a, const float *b, long n) {
    v16 s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
    long i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 += LOAD16(a + i) * LOAD16(b + i);
        s1 += LOAD16(a + i + 16) * LOAD16(b + i + 16);
        s2 += LOAD16(a + i + 32) * LOAD16(b + i + 32);
        s3 += LOAD16(a + i + 48) * LOAD16(b + i + 48);
    }
    v16 s = (s0 + s1) + (s2 + s3);
    double total = 0;
    for (int j = 0; j < 16; j++) total += s[j];
    for (; i < n; i++) total += (double)a[i] * b[i];
    return total;
}

#endif
