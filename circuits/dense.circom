pragma circom 2.1.0;
// zkml operator library: dense layer (Gemm / MatMul by a constant matrix).
// SPDX-License-Identifier: GPL-3.0-only
include "requant.circom";

// Dense(ROWS, NIN, NOUT, W, WZP, B, XZP, M, K, SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI)
//
// Integer formula (zkml/ops/dense.py, kernel), for row r and output j:
//     acc[r][j] = sum_k (in[r*NIN + k] - XZP) * (W[j][k] - WZP[j]) + B[j]
//     out[r*NOUT + j] = clamp(floor((acc*M[j] + 2^(SHIFT-1)) / 2^SHIFT) + ZP, lo, 2^bits - 1)
// The weights are compile-time constants, so the accumulator is a linear combination of
// input signals (no constraint); RequantClamp gets N = acc*M[j] + 2^(SHIFT-1) + K*2^SHIFT,
// with K >= 0 chosen by the bound analysis so that N >= 0, and OFF = K - ZP.
// Inputs must be range-checked by their producer (every zkml tensor is).
// circom builds the linear combination acc symbolically, and `acc += term` copies acc each time
// (quadratic in the number of terms: minutes for a layer of 3,000-term outputs). The terms are
// therefore summed as a balanced tree (pairwise, in place): the same linear combination.
template Dense(ROWS, NIN, NOUT, W, WZP, B, XZP, M, K, SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI) {
    signal input in[ROWS * NIN];
    signal output out[ROWS * NOUT];
    component rq[ROWS * NOUT];
    for (var r = 0; r < ROWS; r++) {
        for (var j = 0; j < NOUT; j++) {
            var t[NIN];
            for (var k = 0; k < NIN; k++) {
                t[k] = (in[r * NIN + k] - XZP) * (W[j][k] - WZP[j]);
            }
            var len = NIN;
            while (len > 1) {           // pairwise tree sum (see the header)
                for (var i = 0; i < len \ 2; i++) {
                    t[i] = t[2 * i] + t[2 * i + 1];
                }
                if (len % 2 == 1) {
                    t[len \ 2] = t[len - 1];
                }
                len = (len + 1) \ 2;
            }
            var acc = B[j] + t[0];
            rq[r * NOUT + j] = RequantClamp(SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI);
            rq[r * NOUT + j].in <== acc * M[j] + 2 ** (SHIFT - 1) + K * 2 ** SHIFT;
            out[r * NOUT + j] <== rq[r * NOUT + j].out;
        }
    }
}
