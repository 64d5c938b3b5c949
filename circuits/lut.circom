pragma circom 2.1.0;
// zkml operator library: exact lookup tables (Sigmoid, Tanh, HardSigmoid, HardSwish, LeakyRelu,
// PRelu: every elementwise activation zkml tabulates, see zkml/ops/activations.py).
// SPDX-License-Identifier: GPL-3.0-only
include "circomlib/circuits/bitify.circom";

// LutOne(BITS, T): out = T[in] for one input in [0, 2^BITS), T a constant table of 2^BITS values.
//
// Integer formula (zkml/ops/activations.py, kernel): out = T[in].
// Split in = hi * 2^L + lo with L = BITS \ 2 low bits and H = BITS - L high bits.
//   1. Num2Bits(BITS) decomposes in into bits b[0..BITS-1]: each bit is boolean and
//      in === sum b[i] * 2^i, so the bits are the unique binary digits of in (and in < 2^BITS;
//      BITS <= 12, far below the field size).
//   2. One-hot selectors of lo, built bit by bit from products of bits:
//          s[lo] = prod_{i < L} (b[i] if bit i of lo is set else 1 - b[i])
//      level j (j >= 1) multiplies the 2^j selectors of the bits below j by b[j]: p = s * b[j]
//      is one constraint, s * (1 - b[j]) = s - p is linear. 2^L - 2 constraints in all.
//      Exactly one s[lo] is 1 (the one for the true lo), the others 0.
//   3. Row values v[h] = sum_lo T[h * 2^L + lo] * s[lo]: linear (T is constant), v[h] = T[h, lo].
//   4. A multiplexer tree over the H high bits: at level j, v'[m] = v[2m] + b[L+j] * (v[2m+1] - v[2m]),
//      one constraint per product, 2^H - 1 in all; the last value is T[hi * 2^L + lo] = T[in].
// No hint (<--) outside circomlib's Num2Bits, whose bits are pinned by its own constraints: every
// signal here is a product of pinned signals, so out is a function of in alone.
// Cost: BITS (+1 linear) + 2^L - 2 + 2^H - 1 constraints; 37 for BITS = 8.
template LutOne(BITS, T) {
    assert(BITS >= 1 && BITS <= 12);
    var L = BITS \ 2;
    var H = BITS - L;
    signal input in;
    signal output out;

    component n2b = Num2Bits(BITS);
    n2b.in <== in;

    // 2. one-hot selectors of the low L bits
    var s[1 << L];
    s[0] = 1;
    if (L >= 1) {
        s[0] = 1 - n2b.out[0];
        s[1] = n2b.out[0];
    }
    signal sel[L >= 1 ? (1 << L) - 2 : 0];   // level j >= 1, pair m: sel[2^j - 2 + m] = s[m] * b[j]
    for (var j = 1; j < L; j++) {
        for (var m = 0; m < (1 << j); m++) {
            sel[(1 << j) - 2 + m] <== s[m] * n2b.out[j];
        }
        for (var m = 0; m < (1 << j); m++) {
            s[m + (1 << j)] = sel[(1 << j) - 2 + m];
            s[m] = s[m] - sel[(1 << j) - 2 + m];
        }
    }

    // 3. row values
    var v[1 << H];
    for (var h = 0; h < (1 << H); h++) {
        v[h] = 0;
        for (var lo = 0; lo < (1 << L); lo++) {
            v[h] += T[h * (1 << L) + lo] * s[lo];
        }
    }

    // 4. multiplexer tree over the high bits: level j halves the 2^(H-j) values
    signal mux[(1 << H) - 1];       // level j, pair m: mux[2^(H-1-j) - 1 + m]
    for (var j = 0; j < H; j++) {
        var half = 1 << (H - 1 - j);
        for (var m = 0; m < half; m++) {
            mux[half - 1 + m] <== n2b.out[L + j] * (v[2 * m + 1] - v[2 * m]);
        }
        for (var m = 0; m < half; m++) {
            v[m] = v[2 * m] + mux[half - 1 + m];
        }
    }
    out <== v[0];
}

// Lut(N, BITS, T): out[i] = T[in[i]] for N inputs in [0, 2^BITS) (range-checked by their
// producer; LutOne's Num2Bits checks it again), one constant table.
template Lut(N, BITS, T) {
    signal input in[N];
    signal output out[N];
    component lut[N];
    for (var i = 0; i < N; i++) {
        lut[i] = LutOne(BITS, T);
        lut[i].in <== in[i];
        out[i] <== lut[i].out;
    }
}

// LutMulti(N, BITS, NT, TABLES, CLS): out[i] = TABLES[CLS[i]][in[i]]: element i uses table
// CLS[i] (a compile-time constant, e.g. its channel's PRelu slope).
template LutMulti(N, BITS, NT, TABLES, CLS) {
    signal input in[N];
    signal output out[N];
    component lut[N];
    for (var i = 0; i < N; i++) {
        assert(CLS[i] < NT);
        lut[i] = LutOne(BITS, TABLES[CLS[i]]);
        lut[i].in <== in[i];
        out[i] <== lut[i].out;
    }
}
