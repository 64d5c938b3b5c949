pragma circom 2.1.0;
// zkml operator library: per-output affine map of a sum of inputs (Sub/Mul/Div by a constant,
// ReduceSum, ReduceMean).
// SPDX-License-Identifier: GPL-3.0-only
include "requant.circom";

// AffineRequant(NIN, NOUT, T, IDX, XZP, CLS, MULT, BIAS, K, SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI)
//
// Integer formula (zkml/ops/affine.py, Affine.kernel), for output i:
//     acc    = (sum_{t < T} (in[IDX[i*T + t]] - XZP)) * MULT[CLS[i]] + BIAS[CLS[i]]
//     out[i] = clamp(floor((acc + 2^(SHIFT-1)) / 2^SHIFT) + ZP, lo, 2^bits - 1)
// MULT and BIAS are signed compile-time constants (a negative constant flips the sign of the
// multiplier), so acc is a linear combination of input signals: no constraint. RequantClamp gets
// N = acc + 2^(SHIFT-1) + K*2^SHIFT, with K >= 0 chosen by the bound analysis (Affine.bounds)
// so that 0 <= N < 2^(SHIFT+QBITS) <= 2^252 for every input < 2^bits; OFF = K - ZP.
// Inputs must be range-checked by their producer (every zkml tensor is).
template AffineRequant(NIN, NOUT, T, IDX, XZP, CLS, MULT, BIAS, K, SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI) {
    signal input in[NIN];
    signal output out[NOUT];
    component rq[NOUT];
    for (var i = 0; i < NOUT; i++) {
        var acc = 0;
        for (var t = 0; t < T; t++) {
            acc += in[IDX[i * T + t]] - XZP;
        }
        rq[i] = RequantClamp(SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI);
        rq[i].in <== acc * MULT[CLS[i]] + BIAS[CLS[i]] + 2 ** (SHIFT - 1) + K * 2 ** SHIFT;
        out[i] <== rq[i].out;
    }
}
