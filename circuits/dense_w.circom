pragma circom 2.1.0;
// zkml operator library: dense layer whose weights are signals (visibility --weights public,
// private or hashed), with plain signal x signal products.
// SPDX-License-Identifier: GPL-3.0-only
include "requant.circom";

// SignalDot(NIN, XZP, WZP): out = sum_k (x[k] - XZP) * (w[k] - WZP)
//
// One R1CS constraint per product (prod[k] <== ...): the plain encoding. This is the seam for
// a packed (stranded) dot product: a variant with the same ports and the same integer result
// can replace it layer by layer. Inputs: x[k] < 2^xbits and w[k] < 2^wbits, range-checked by
// their producers (the weights by the UintRange of main.circom on the weight inputs).
template SignalDot(NIN, XZP, WZP) {
    signal input x[NIN];
    signal input w[NIN];
    signal output out;
    signal prod[NIN];
    var acc = 0;
    for (var k = 0; k < NIN; k++) {
        prod[k] <== (x[k] - XZP) * (w[k] - WZP);
        acc += prod[k];
    }
    out <== acc;
}

// DenseW(ROWS, NIN, NOUT, WZP, B, XZP, M, K, SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI)
//
// Integer formula (zkml/ops/dense.py, kernel; the same as Dense with W taken from the signal w):
//     acc[r][j] = sum_k (in[r*NIN + k] - XZP) * (w[j*NIN + k] - WZP[j]) + B[j]
//     out[r*NOUT + j] = clamp(floor((acc*M[j] + 2^(SHIFT-1)) / 2^SHIFT) + ZP, lo, 2^bits - 1)
// Zero points, bias and multipliers stay compile-time constants. The bound analysis for this
// template (zkml/visibility.py, signal_weight_bounds) takes the worst case over EVERY weight
// in [0, 2^wbits), not the model's weights, so 0 <= N < 2^(SHIFT+QBITS) <= 2^252 holds for any
// weights a prover may put in w.
template DenseW(ROWS, NIN, NOUT, WZP, B, XZP, M, K, SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI) {
    signal input in[ROWS * NIN];
    signal input w[NOUT * NIN];
    signal output out[ROWS * NOUT];
    component dot[ROWS * NOUT];
    component rq[ROWS * NOUT];
    for (var r = 0; r < ROWS; r++) {
        for (var j = 0; j < NOUT; j++) {
            dot[r * NOUT + j] = SignalDot(NIN, XZP, WZP[j]);
            for (var k = 0; k < NIN; k++) {
                dot[r * NOUT + j].x[k] <== in[r * NIN + k];
                dot[r * NOUT + j].w[k] <== w[j * NIN + k];
            }
            rq[r * NOUT + j] = RequantClamp(SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI);
            rq[r * NOUT + j].in <== (dot[r * NOUT + j].out + B[j]) * M[j] + 2 ** (SHIFT - 1) + K * 2 ** SHIFT;
            out[r * NOUT + j] <== rq[r * NOUT + j].out;
        }
    }
}
