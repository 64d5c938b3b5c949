pragma circom 2.1.0;
// zkml operator library: ArgMax (ONNX tie rule: the first index, or the last with select_last_index).
// SPDX-License-Identifier: GPL-3.0-only
include "circomlib/circuits/bitify.circom";

// ArgMaxOne(K, BITS, LAST): out = the index of the largest of in[0..K-1] (each in [0, 2^BITS),
// range-checked by its producer); ties go to the first index (LAST = 0) or the last (LAST = 1).
//
// Integer formula (zkml/ops/argmax.py, kernel): out = min {k : in[k] = max(in)} (LAST = 0),
//                                                     max {k : in[k] = max(in)} (LAST = 1).
// The one-hot vector e is a hint (<--), pinned by
//     e[k] * (e[k] - 1) === 0          every e[k] is 0 or 1
//     sum e[k] === 1                   exactly one is 1: call its index t
//     p[k] <== e[k] * in[k];  m = sum p[k]          so m = in[t]
//     d[k] = m - in[k] - (sum_{j > k} e[j])         (LAST = 0: 1 for k < t, else 0)
//     d[k] = m - in[k] - (sum_{j < k} e[j])         (LAST = 1: 1 for k > t, else 0)
//     Num2Bits(BITS) on d[k]                        0 <= d[k] < 2^BITS
// m and in[k] are < 2^BITS, so d[k] is an integer in (-2^BITS - 1, 2^BITS); a negative one is a
// field element above p - 2^BITS - 1 >= 2^BITS, which no BITS-bit decomposition reaches
// (BITS <= 250). Hence in[k] <= m for every k, and in[k] < m strictly for every k before t
// (after t with LAST = 1): t is exactly the ONNX index. out = sum k * e[k] = t (linear).
// Cost: K * (BITS + 2) constraints per reduction after --O2 (K booleans, K products, K * BITS
// decomposition bits; the sum, the output and the recompositions are linear and substituted).
template ArgMaxOne(K, BITS, LAST) {
    assert(K >= 1 && BITS >= 1 && BITS <= 250);
    signal input in[K];
    signal output out;

    var best = 0;
    for (var k = 1; k < K; k++) {
        if (LAST == 1) {
            if (in[k] >= in[best]) { best = k; }
        } else {
            if (in[k] > in[best]) { best = k; }
        }
    }
    signal e[K];
    signal p[K];
    var total = 0;
    var m = 0;
    var idx = 0;
    for (var k = 0; k < K; k++) {
        e[k] <-- k == best ? 1 : 0;
        e[k] * (e[k] - 1) === 0;
        total += e[k];
        p[k] <== e[k] * in[k];
        m += p[k];
        idx += k * e[k];
    }
    total === 1;

    component d[K];
    for (var k = 0; k < K; k++) {
        var ahead = 0;               // 1 exactly for the indices that must be strictly smaller
        for (var j = 0; j < K; j++) {
            if ((LAST == 0 && j > k) || (LAST == 1 && j < k)) {
                ahead += e[j];
            }
        }
        d[k] = Num2Bits(BITS);
        d[k].in <== m - in[k] - ahead;
    }
    out <== idx;
}

// ArgMax(OUTER, K, INNER, BITS, LAST): in is [OUTER, K, INNER] row-major (the reduced axis in the
// middle), out[o * INNER + i] = ArgMaxOne over in[(o * K + k) * INNER + i], k = 0..K-1.
template ArgMax(OUTER, K, INNER, BITS, LAST) {
    signal input in[OUTER * K * INNER];
    signal output out[OUTER * INNER];
    component am[OUTER * INNER];
    for (var o = 0; o < OUTER; o++) {
        for (var i = 0; i < INNER; i++) {
            am[o * INNER + i] = ArgMaxOne(K, BITS, LAST);
            for (var k = 0; k < K; k++) {
                am[o * INNER + i].in[k] <== in[(o * K + k) * INNER + i];
            }
            out[o * INNER + i] <== am[o * INNER + i].out;
        }
    }
}
