// The optimizer's passes over every parameter, in C so that they vectorise: in Swift the AdamW
// loop stayed scalar (a divide and a square root per element, 5 % of the bench's GRPO step)
// and the gradient norm's float sum was one serial chain.
//
// Built once per instruction set (target_clones); the loader picks the best the CPU has.

#include "grove_kernels.h"
#include "vector16.h"

#include <stdint.h>
#include <string.h>

#define CLONES __attribute__((target_clones("avx512f", "avx2,fma", "default")))

// m ← β1·m + (1 − β1)·g,  v ← β2·v + (1 − β2)·g²,  w ← w·decay − lr·(m / c1) / (√(v / c2) + ε)
CLONES void grove_adamw(float *restrict w, const float *restrict g, float *restrict m, float *restrict v, long n,
                        float beta1, float beta2, float lr, float c1, float c2, float eps, float decay) {
    for (long i = 0; i < n; i++) {
        m[i] = beta1 * m[i] + (1 - beta1) * g[i];
        v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
        w[i] = w[i] * decay - lr * (m[i] / c1) / (__builtin_elementwise_sqrt(v[i] / c2) + eps);
    }
}

// The same update with m and v held as bfloat16 (the top 16 bits of a float32): loaded exactly,
// updated in float32 as above, the weights stepped with the float32 moments, then stored with
// stochastic rounding. Round-to-nearest would lose every change smaller than half a bf16 ulp
// (2⁻⁹–2⁻⁸ of the value): with β2 0.999, v ← 0.999·v never moves and v cannot decay.
//
// Stochastic rounding to 16 bits: add 16 uniform random bits below the kept ones and truncate,
// so x rounds up with probability (dropped part) / 2¹⁶, E[round(x)] = x; a value bf16 holds
// exactly has no dropped part and stays. The bits are a hash of (key + element index): `key` is
// drawn per (step, parameter) by the caller and `first` is this chunk's offset in the
// parameter, so neither the split over threads nor the number of ranks changes them. The hash
// is a 32-bit finalizer (Wellons' lowbias32: two 32-bit multiplies, which AVX2 has, where a
// 64-bit one would be emulated), a bijection, so no two elements of a parameter get the same
// bits in a step. Low half for m, high half for v. A second keyed round cost 20 % more time
// for no need: the key already changes every step. (The index is taken mod 2³²: no parameter
// comes near it.)
static inline uint32_t lowbias32(uint32_t x) {
    x ^= x >> 16; x *= 0x7feb352dU; x ^= x >> 15; x *= 0x846ca68bU; x ^= x >> 16;
    return x;
}

static inline float bf16_to_f32(uint16_t b) {
    uint32_t bits = (uint32_t)b << 16;
    float x;
    memcpy(&x, &bits, sizeof x);
    return x;
}

static inline uint16_t f32_to_bf16_stochastic(float x, uint32_t random16) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    return (uint16_t)((bits + random16) >> 16);  // a carry into the exponent is the next bf16 up
}

CLONES void grove_adamw_bf16(float *restrict w, const float *restrict g, uint16_t *restrict m, uint16_t *restrict v,
                             long n, long first, uint32_t key, float beta1, float beta2, float lr, float c1, float c2,
                             float eps, float decay) {
    // Unfused multiply-adds in every build, so the rounded moments are the same bits on any CPU.
#pragma clang fp contract(off)
    for (long i = 0; i < n; i++) {
        float mi = beta1 * bf16_to_f32(m[i]) + (1 - beta1) * g[i];
        float vi = beta2 * bf16_to_f32(v[i]) + (1 - beta2) * g[i] * g[i];
        w[i] = w[i] * decay - lr * (mi / c1) / (__builtin_elementwise_sqrt(vi / c2) + eps);
        uint32_t random = lowbias32((uint32_t)(first + i) + key);
        m[i] = f32_to_bf16_stochastic(mi, random & 0xFFFF);
        v[i] = f32_to_bf16_stochastic(vi, random >> 16);
    }
}

// Σ x²
CLONES double grove_sum_squares(const float *x, long n) { return dot16(x, x, n); }
