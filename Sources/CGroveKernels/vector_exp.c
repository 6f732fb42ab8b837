// exp over arrays, vectorised: softmax rows (attention, log-probs of the vocabulary) and
// SwiGLU's sigmoid. libm's expf is a scalar call per element, and at these sizes it was
// 5–6 % of a small model's training step; written as plain arithmetic the loops below
// compile to 16-wide AVX-512 (or 8-wide AVX2) code.
//
// Built once per instruction set (target_clones); the loader picks the best the CPU has.

#include "grove_kernels.h"
#include "vector16.h"
#include <math.h>
#include <string.h>

#define CLONES __attribute__((target_clones("avx512f", "avx2,fma", "default")))

// exp(x) = 2^n · exp(r), n = round(x / ln 2), r = x − n·ln 2 (ln 2 in two parts, so r is
// exact to float precision), exp(r) on |r| ≤ ln2/2 by Cephes' degree-7 polynomial:
// relative error ≤ 2 ulp against libm. Below −87.3 the result is 0 (expf gives denormals
// there), above 88 +inf (expf's overflow is at 88.72; softmax arguments are shifted to ≤ 0
// and a sigmoid does not see the difference); NaN stays NaN (a NaN logit must reach the
// step's NaN check, not vanish here).
static inline float exp_fast(float x) {
    const float c = fminf(fmaxf(x, -87.3f), 88.0f);
    const float n = floorf(c * 1.44269504088896341f + 0.5f);
    const float r = c - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    const int bits = ((int)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    float y = p * scale;
    y = x < -87.3f ? 0.0f : y;
    y = x > 88.0f ? INFINITY : y;
    return x != x ? x : y;
}

// Σ of n floats with 16 partial sums (a fixed order: the same result on every thread count).
static inline float sum16(const float *x, int n) {
    float s[16] = {0};
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) s[j] += x[i + j];
    float total = 0;
    for (; i < n; i++) total += x[i];
    for (int j = 0; j < 16; j++) total += s[j];
    return total;
}

// `out` may be `x` (softmax in place): element i reads x[i] before it writes out[i], so the
// loop is safe to vectorise, but the compiler cannot prove it and guards its vector loop
// with an overlap test that in-place calls fail — they ran scalar, ~2 ns an element, until
// `assume_safety` below (Grove never passes arrays that overlap any other way).
CLONES void grove_exp(const float *x, float shift, float *out, int n) {
#pragma clang loop vectorize(assume_safety)
    for (int i = 0; i < n; i++) out[i] = exp_fast(x[i] - shift);
}

CLONES float grove_exp_sum(const float *x, float shift, float *out, int n) {
#pragma clang loop vectorize(assume_safety)
    for (int i = 0; i < n; i++) out[i] = exp_fast(x[i] - shift);
    return sum16(out, n);
}

CLONES void grove_masked_softmax_row(float *row, int n, int limit, const _Bool *mask) {
    if (limit > n) limit = n;
    v16 m16;
    for (int j = 0; j < 16; j++) m16[j] = -INFINITY;
    int s = 0;
    if (!mask)  // causal only: the keys before `limit` are the visible ones; 16-wide max
        for (; s + 16 <= limit; s += 16) m16 = __builtin_elementwise_max(m16, LOAD16(row + s));
    float m = -INFINITY;
    for (int j = 0; j < 16; j++) m = m16[j] > m ? m16[j] : m;
    for (; s < n; s++) {
        if (s < limit && (!mask || mask[s])) m = row[s] > m ? row[s] : m;
        else row[s] = -INFINITY;  // exp(−∞) = 0
    }
    if (m == -INFINITY) {  // nothing visible: the query attends to nothing
        memset(row, 0, (size_t)n * sizeof(float));
        return;
    }
    const float inv = 1 / grove_exp_sum(row, m, row, n);
    for (int i = 0; i < n; i++) row[i] *= inv;
}

CLONES void grove_softmax_backward_row(const float *p, float *d, int n) {
    const float dot = (float)dot16(p, d, n);
    for (int i = 0; i < n; i++) d[i] = p[i] * (d[i] - dot);
}

CLONES float grove_log_sum_exp(const float *x, int n) {
    float m = -INFINITY;
    for (int i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    if (m == -INFINITY) return m;
    float chunk[256], total = 0;
    for (int i = 0; i < n; i += 256) {
        const int len = n - i < 256 ? n - i : 256;
        for (int j = 0; j < len; j++) chunk[j] = exp_fast(x[i + j] - m);
        total += sum16(chunk, len);
    }
    return m + logf(total);
}

CLONES void grove_sub_scaled_exp(float *d, const float *x, float shift, float g, int n) {
    for (int i = 0; i < n; i++) d[i] -= g * exp_fast(x[i] - shift);
}

CLONES void grove_swiglu(const float *gate, const float *up, float *out, int n) {
    for (int i = 0; i < n; i++) out[i] = gate[i] / (1.0f + exp_fast(-gate[i])) * up[i];
}

CLONES void grove_swiglu_backward(const float *gate, const float *up, const float *dy,
                                  float *dgate, float *dup, int n) {
    for (int i = 0; i < n; i++) {
        const float s = 1.0f / (1.0f + exp_fast(-gate[i])), act = gate[i] * s;
        if (dup) dup[i] += dy[i] * act;
        if (dgate) dgate[i] += dy[i] * up[i] * s * (1.0f + gate[i] * (1.0f - s));
    }
}
