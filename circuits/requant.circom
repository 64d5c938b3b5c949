pragma circom 2.1.0;
// zkml operator library: requantization (division by 2^SHIFT with rounding, then clamp).
// SPDX-License-Identifier: GPL-3.0-only
include "circomlib/circuits/bitify.circom";
include "circomlib/circuits/comparators.circom";

// RequantClamp(SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI)
//
// Integer formula (zkml/ops/_requant.py, requant_kernel, with N = acc + 2^(SHIFT-1) + K*2^SHIFT):
//     q   = floor(in / 2^SHIFT)
//     out = clamp(q, LO, HI) - OFF
//
// Precondition, proved by zkml's bound analysis for every instance it emits:
//     0 <= in < 2^(SHIFT + QBITS) as an integer, SHIFT + QBITS <= 252, LO, HI < 2^QBITS.
// Soundness: q and r are hints (<--) pinned by
//     in === q * 2^SHIFT + r,   r in [0, 2^SHIFT) (Num2Bits),   q in [0, 2^QBITS) (Num2Bits);
// q*2^SHIFT + r < 2^252 < p, so the field equation is an integer equation and (q, r) is
// unique. The comparators get inputs < 2^QBITS, as circomlib's LessThan requires.
// CLAMP_LO / CLAMP_HI are 0 when the bounds prove q can never cross LO / HI.
template RequantClamp(SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI) {
    assert(SHIFT >= 1);
    assert(QBITS >= 1);
    assert(SHIFT + QBITS <= 252);
    assert(LO <= HI);
    assert(OFF <= LO);
    signal input in;
    signal output out;

    signal q;
    signal r;
    q <-- in \ (2 ** SHIFT);
    r <-- in % (2 ** SHIFT);
    in === q * (2 ** SHIFT) + r;

    component rBits = Num2Bits(SHIFT);
    rBits.in <== r;
    component qBits = Num2Bits(QBITS);
    qBits.in <== q;

    // hi: clamp from above
    signal upper;
    if (CLAMP_HI == 1) {
        component above = LessThan(QBITS);      // above.out = (HI < q)
        above.in[0] <== HI;
        above.in[1] <== q;
        upper <== q + above.out * (HI - q);
    } else {
        upper <== q;
    }
    // lo: clamp from below
    if (CLAMP_LO == 1) {
        component below = LessThan(QBITS);      // below.out = (q < LO)
        below.in[0] <== q;
        below.in[1] <== LO;
        out <== upper - OFF + below.out * (LO - upper);
    } else {
        out <== upper - OFF;
    }
}
