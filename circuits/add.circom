pragma circom 2.1.0;
// zkml operator library: elementwise addition of two tensors with broadcasting.
// SPDX-License-Identifier: GPL-3.0-only
include "requant.circom";

// AddRequant(N, NA, NB, IA, IB, AZP, BZP, MA, MB, K, SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI)
//
// Integer formula (zkml/ops/add.py, kernel), for output element i:
//     acc    = (a[IA[i]] - AZP) * MA + (b[IB[i]] - BZP) * MB
//     out[i] = clamp(floor((acc + 2^(SHIFT-1)) / 2^SHIFT) + ZP, lo, 2^bits - 1)
// IA / IB map output positions to input positions (NumPy broadcasting).
template AddRequant(N, NA, NB, IA, IB, AZP, BZP, MA, MB, K, SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI) {
    signal input a[NA];
    signal input b[NB];
    signal output out[N];
    component rq[N];
    for (var i = 0; i < N; i++) {
        rq[i] = RequantClamp(SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI);
        rq[i].in <== (a[IA[i]] - AZP) * MA + (b[IB[i]] - BZP) * MB + 2 ** (SHIFT - 1) + K * 2 ** SHIFT;
        out[i] <== rq[i].out;
    }
}
