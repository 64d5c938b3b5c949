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
template Dense(ROWS, NIN, NOUT, W, WZP, B, XZP, M, K, SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI) {
    signal input in[ROWS * NIN];
    signal output out[ROWS * NOUT];
    component rq[ROWS * NOUT];
    for (var r = 0; r < ROWS; r++) {
        for (var j = 0; j < NOUT; j++) {
            var acc = B[j];
            for (var k = 0; k < NIN; k++) {
                acc += (in[r * NIN + k] - XZP) * (W[j][k] - WZP[j]);
            }
            rq[r * NOUT + j] = RequantClamp(SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI);
            rq[r * NOUT + j].in <== acc * M[j] + 2 ** (SHIFT - 1) + K * 2 ** SHIFT;
            out[r * NOUT + j] <== rq[r * NOUT + j].out;
        }
    }
}
