pragma circom 2.1.0;
// zkml operator library: range checks of circuit inputs.
// SPDX-License-Identifier: GPL-3.0-only
include "circomlib/circuits/bitify.circom";

// UintRange(N, BITS): constrains every in[i] to [0, 2^BITS) (Num2Bits), out[i] = in[i].
// Applied to the model input, which the prover chooses freely: every later bound assumes it.
template UintRange(N, BITS) {
    signal input in[N];
    signal output out[N];
    component bits[N];
    for (var i = 0; i < N; i++) {
        bits[i] = Num2Bits(BITS);
        bits[i].in <== in[i];
        out[i] <== in[i];
    }
}
