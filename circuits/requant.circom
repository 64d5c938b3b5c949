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
// Precondition, proved by zkml's bound analysis for every instance it emits (zkml/ir.py verify,
// zkml/ops/_requant.py requant_bounds): in is built by its operator from range-checked signals
// and its integer value lies in [0, 2^(SHIFT + QBITS)), SHIFT + QBITS <= 252; LO < 2^QBITS when
// CLAMP_LO, HI < 2^QBITS when CLAMP_HI (QBITS = bits of max(q_max, active LO/HI)).
//
// Soundness: q and r are hints (<--) pinned by  in === q * 2^SHIFT + r  and  r in [0, 2^SHIFT)
// (Num2Bits(SHIFT)). Write Q = QBITS, S = SHIFT, p the BN254 order (2^253 < p), and read a field
// element x as the integer x~ in (-p/2, p/2) congruent to it.
//   * Without a clamp, Num2Bits(Q) on q gives q~ in [0, 2^Q).
//   * With a clamp, that Num2Bits is dropped: circomlib's LessThan(Q) constrains
//     Num2Bits(Q+1) of  in[0] + 2^Q - in[1], i.e. (Q+1 <= 253 bits, so no wrap) that field
//     element equals some t in [0, 2^(Q+1)).
//       above = LessThan(Q)(HI, q):  q~ = HI + 2^Q - t  in [HI - 2^Q + 1, HI + 2^Q]
//       below = LessThan(Q)(q, LO):  q~ = t + LO - 2^Q  in [LO - 2^Q, LO + 2^Q - 1]
//     With 0 <= LO, HI < 2^Q, either one gives q~ in [-2^Q, 2^(Q+1)), so q~*2^S + r lies in
//     [-2^(S+Q), 2^(S+Q+1)).
//   Either way in - (q~*2^S + r) is an integer in (-2^(S+Q+1), 2^(S+Q+1)), 2^(S+Q+1) <= 2^253 < p,
//   and it is 0 mod p: it is 0. So in = q~*2^S + r over the integers with 0 <= r < 2^S, hence
//   q = floor(in / 2^S) in [0, 2^Q) and r = in mod 2^S: unique. The comparators then see inputs
//   below 2^Q, where LessThan(Q) is exact, and out = clamp(q, LO, HI) - OFF.
// Cost (--O2): SHIFT bits for r, plus QBITS + 2 per active clamp (QBITS + 1 bits and one product),
// or plus QBITS bits for q when no clamp is active.
// CLAMP_LO / CLAMP_HI are 0 when the bounds prove q can never cross LO / HI.
// Forgery tests: tests/test_forgery.py (test_requant_*), tests/test_op_attacks.py; docs/SOUNDNESS.md.
template RequantClamp(SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI) {
    assert(SHIFT >= 1);
    assert(QBITS >= 1);
    assert(SHIFT + QBITS <= 252);
    assert(LO <= HI);
    assert(OFF <= LO);
    assert(CLAMP_LO == 0 || (0 <= LO && LO < 2 ** QBITS));   // the soundness argument needs these
    assert(CLAMP_HI == 0 || (0 <= HI && HI < 2 ** QBITS));
    signal input in;
    signal output out;

    signal q;
    signal r;
    q <-- in \ (2 ** SHIFT);
    r <-- in % (2 ** SHIFT);
    in === q * (2 ** SHIFT) + r;

    component rBits = Num2Bits(SHIFT);
    rBits.in <== r;
    if (CLAMP_LO == 0 && CLAMP_HI == 0) {
        // no comparator bounds q: range-check it directly (see the header for the clamped case)
        component qBits = Num2Bits(QBITS);
        qBits.in <== q;
    }

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
