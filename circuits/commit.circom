pragma circom 2.1.0;
// zkml: packing and Poseidon commitments of tensors (visibility modes public / hashed).
// SPDX-License-Identifier: GPL-3.0-only
include "circomlib/circuits/poseidon.circom";

// PackLanes(N, BITS, LANES, WORDS): word[w] = sum_i in[w*LANES + i] * 2^(BITS*i)
//
// Python: zkml/packing.py pack (lane 0 in the lowest bits). Precondition: every in[k] < 2^BITS
// (range-checked by its producer) and LANES*BITS <= 253, so each word is an integer below
// 2^253 < r and the map from lanes to words is injective. A linear combination: no constraint
// and no hint of its own.
template PackLanes(N, BITS, LANES, WORDS) {
    assert(LANES * BITS <= 253 && WORDS * LANES >= N && (WORDS - 1) * LANES < N);
    signal input in[N];
    signal output out[WORDS];
    for (var w = 0; w < WORDS; w++) {
        var acc = 0;
        for (var i = 0; i < LANES && w * LANES + i < N; i++) {
            acc += in[w * LANES + i] * (2 ** (BITS * i));
        }
        out[w] <== acc;
    }
}

// PoseidonChain(N): the commitment of N >= 1 field elements (Python: zkml/poseidon.py commit_words)
//     h_0 = N,   h_c = Poseidon(16)([h_{c-1}, in[15(c-1)], ..., in[15(c-1) + 14]]),   out = h_last
// (missing elements of the last chunk are 0; starting from N binds the length). circomlib's
// Poseidon takes at most 16 inputs, hence the chain. Every signal is a <== of circomlib's
// Poseidon: no hint. Cost: ceil(N / 15) Poseidon(16) permutations (~ 600 constraints each).
template PoseidonChain(N) {
    assert(N >= 1);
    var CH = (N + 14) \ 15;
    signal input in[N];
    signal output out;
    component h[CH];
    for (var c = 0; c < CH; c++) {
        h[c] = Poseidon(16);
        if (c == 0) {
            h[c].inputs[0] <== N;
        } else {
            h[c].inputs[0] <== h[c - 1].out;
        }
        for (var i = 0; i < 15; i++) {
            if (c * 15 + i < N) {
                h[c].inputs[i + 1] <== in[c * 15 + i];
            } else {
                h[c].inputs[i + 1] <== 0;
            }
        }
    }
    out <== h[CH - 1].out;
}

// CommitLanes(N, BITS, LANES, WORDS): PoseidonChain over PackLanes(in): the commitment of a uint
// tensor, as zkml/poseidon.py commit_values computes it.
template CommitLanes(N, BITS, LANES, WORDS) {
    signal input in[N];
    signal output out;
    component pack = PackLanes(N, BITS, LANES, WORDS);
    component chain = PoseidonChain(WORDS);
    pack.in <== in;
    chain.in <== pack.out;
    out <== chain.out;
}
