// RMSNorm's rows (OpsNorm.swift), in C so that the row sums and products vectorise: in Swift the
// sums of squares ran as a serial chain of scalar adds, 2.4 % of the bench's GRPO step.
//
// Built once per instruction set (target_clones); the loader picks the best the CPU has.

#include "grove_kernels.h"
#include "vector16.h"

#define CLONES __attribute__((target_clones("avx512f", "avx2,fma", "default")))

// y = x · rstd · w, rstd = 1/√(mean(x²) + eps); returns rstd.
CLONES float grove_rms_norm_row(const float *x, const float *w, float *y, int C, float eps) {
    float rstd = 1 / __builtin_elementwise_sqrt((float)(dot16(x, x, C) / C) + eps);
    for (int c = 0; c < C; c++) y[c] = x[c] * rstd * w[c];
    return rstd;
}

// With n = x·rstd and dn = dy·w:  dx += rstd · (dn − n · mean(dn·n)).
CLONES void grove_rms_norm_backward_row(const float *x, const float *w, const float *dy, float rstd, float *dx,
                                        float *scratch, int C) {
    for (int c = 0; c < C; c++) scratch[c] = dy[c] * w[c];  // dn
    float mean = (float)(dot16(scratch, x, C) * rstd / C);   // mean(dn·n)
    for (int c = 0; c < C; c++) dx[c] += rstd * (scratch[c] - x[c] * rstd * mean);
}

// dw += dy · x · rstd, one row's share of the weight's gradient.
CLONES void grove_rms_norm_weight_grad_row(const float *x, const float *dy, float rstd, float *dw, int C) {
    for (int c = 0; c < C; c++) dw[c] += dy[c] * x[c] * rstd;
}
