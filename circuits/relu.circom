pragma circom 2.1.0;
// zkml operator library: ReLU in the quantized domain.
// SPDX-License-Identifier: GPL-3.0-only
include "circomlib/circuits/comparators.circom";

// ReluZp(N, BITS, ZP)
//
// Integer formula (zkml/ops/relu.py, kernel): out[i] = max(in[i] - ZP, 0)
// Inputs must be < 2^BITS (range-checked by their producer), as LessThan(BITS) requires;
// the comparator's output bit is constrained, so no hint is involved.
template ReluZp(N, BITS, ZP) {
    assert(ZP < 2 ** BITS);
    signal input in[N];
    signal output out[N];
    if (ZP == 0) {
        out <== in;
    } else {
        component pos[N];
        for (var i = 0; i < N; i++) {
            pos[i] = LessThan(BITS);          // pos.out = (ZP < in)
            pos[i].in[0] <== ZP;
            pos[i].in[1] <== in[i];
            out[i] <== pos[i].out * (in[i] - ZP);
        }
    }
}
