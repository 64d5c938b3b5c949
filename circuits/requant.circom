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
// Two ways to clamp, picked from the parameters (requant_bounds chooses K, hence LO and HI, so
// that the cheaper one applies; zkml/ops/_requant.py requant_path mirrors the rule):
//   * "aligned": both clamps act, LO = 2^(QBITS-1) and HI - LO + 1 = 2^B (a power of two, e.g.
//     the 256 values of a uint8 output). Then q's own bits decide the clamp: q < LO iff bit
//     QBITS-1 of q is 0; for q >= LO, q - LO is q's low QBITS-1 bits and q > HI iff one of bits
//     B .. QBITS-2 is set. One Num2Bits(SHIFT + QBITS) of in gives r (its low SHIFT bits) and
//     q's bits (the QBITS above). Cost SHIFT + QBITS + 4 (the comparators' way: SHIFT + 2*QBITS
//     + 4); at --O1 one linear constraint for the decomposition instead of three (r's and q's
//     sums and in === q*2^SHIFT + r).
//   * "comparators": circomlib's LessThan(QBITS) for each active clamp (below).
//
// Soundness, aligned way: the only hints are Num2Bits(S+Q)'s own bits b_0 .. b_(S+Q-1) (S = SHIFT,
// Q = QBITS). They are booleans whose weighted sum equals in, and S+Q <= 252 bits cannot wrap
// below the BN254 order p > 2^253: they are the binary digits of in (which exist because in <
// 2^(S+Q)), unique. So r = sum_{i<S} b_i 2^i = in mod 2^S and q = sum_{i<Q} b_(S+i) 2^i =
// floor(in / 2^S) in [0, 2^Q), and the clamp argument below ("Aligned") applies to q's bits.
//
// Soundness, other ways: q and r are hints (<--) pinned by  in === q * 2^SHIFT + r  and
// r in [0, 2^SHIFT) (Num2Bits(SHIFT)). Write p the BN254 order (2^253 < p), and read a field
// element x as the integer x~ in (-p/2, p/2) congruent to it.
//   * Without a clamp, Num2Bits(Q) on q gives q~ in [0, 2^Q).
//   * With a comparator, that Num2Bits is dropped: circomlib's LessThan(Q) constrains
//     Num2Bits(Q+1) of  in[0] + 2^Q - in[1], i.e. (Q+1 <= 253 bits, so no wrap) that field
//     element equals some t in [0, 2^(Q+1)).
//       above = LessThan(Q)(HI, q):  q~ = HI + 2^Q - t  in [HI - 2^Q + 1, HI + 2^Q]
//       below = LessThan(Q)(q, LO):  q~ = t + LO - 2^Q  in [LO - 2^Q, LO + 2^Q - 1]
//     With 0 <= LO, HI < 2^Q, either one gives q~ in [-2^Q, 2^(Q+1)), so q~*2^S + r lies in
//     [-2^(S+Q), 2^(S+Q+1)).
//   Either way in - (q~*2^S + r) is an integer in (-2^(S+Q+1), 2^(S+Q+1)), 2^(S+Q+1) <= 2^253 < p,
//   and it is 0 mod p: it is 0. So in = q~*2^S + r over the integers with 0 <= r < 2^S, hence
//   q = floor(in / 2^S) in [0, 2^Q) and r = in mod 2^S: unique.
//   Comparators: they then see inputs below 2^Q, where LessThan(Q) is exact, and
//   out = clamp(q, LO, HI) - OFF.
//   Aligned: write b_i for q's bits (b_(S+i) of in's decomposition). z = IsZero(b_B + ...
//   + b_(Q-2)) is 1 iff those bits are all 0 (circomlib's IsZero: out = 1 - in*inv and in*out = 0
//   force out = 0 when in != 0 and out = 1 when in = 0; the sum of at most Q - 1 bits is 0 in the
//   field iff it is 0). With low = sum_{i<B} b_i 2^i:
//       c   = low + (1 - z) * (2^B - 1 - low)        = min(q - LO, HI - LO) when b_(Q-1) = 1
//       out = LO - OFF + b_(Q-1) * c
//   b_(Q-1) = 0 iff q < 2^(Q-1) = LO: out = LO - OFF. Otherwise q - LO = sum_{i<Q-1} b_i 2^i, which
//   exceeds HI - LO = 2^B - 1 iff z = 0: out = HI - OFF, else out = q - OFF. So out = clamp(q, LO,
//   HI) - OFF, and c, out are fixed by <== constraints.
// Cost (--O2): SHIFT bits for r, plus QBITS bits for q and 4 (aligned: one decomposition of
// SHIFT + QBITS bits), or QBITS + 2 per active
// clamp (QBITS + 1 bits and one product), or QBITS bits for q when no clamp is active.
// CLAMP_LO / CLAMP_HI are 0 when the bounds prove q can never cross LO / HI.
// Forgery tests: tests/test_forgery.py (test_requant_*), tests/test_op_attacks.py; docs/SOUNDNESS.md.
function requant_aligned_bits(QBITS, LO, HI, CLAMP_LO, CLAMP_HI) {
    // B when the aligned way applies (both clamps, LO = 2^(QBITS-1), HI - LO + 1 = 2^B, B <= QBITS-2), else 0
    if (CLAMP_LO == 0 || CLAMP_HI == 0 || QBITS < 2 || LO != 2 ** (QBITS - 1)) {
        return 0;
    }
    for (var b = 0; b <= QBITS - 2; b++) {
        if (HI - LO + 1 == 2 ** b) {
            return b;
        }
    }
    return 0;
}

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

    var B = requant_aligned_bits(QBITS, LO, HI, CLAMP_LO, CLAMP_HI);
    if (B > 0) {
        // aligned: one decomposition of in gives r (its low SHIFT bits) and q (the QBITS above
        // them), and the clamp is read from q's own bits
        component nBits = Num2Bits(SHIFT + QBITS);
        nBits.in <== in;
        var low = 0;
        var high = 0;
        for (var i = 0; i < QBITS - 1; i++) {
            if (i < B) {
                low += nBits.out[SHIFT + i] * 2 ** i;
            } else {
                high += nBits.out[SHIFT + i];
            }
        }
        component inRange = IsZero();           // inRange.out = (q - LO <= HI - LO), when q >= LO
        inRange.in <== high;
        signal c;                               // min(q - LO, HI - LO), when q >= LO
        c <== low + (1 - inRange.out) * (2 ** B - 1 - low);
        out <== LO - OFF + nBits.out[SHIFT + QBITS - 1] * c;
    } else {
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
}
