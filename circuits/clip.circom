pragma circom 2.1.0;
// zkml operator library: Clip of quantized values (a standalone Clip / ReLU6 that could not be
// fused into a preceding requantization).
// SPDX-License-Identifier: GPL-3.0-only
include "circomlib/circuits/comparators.circom";

// ClampQ(N, BITS, LO, HI, CLAMP_LO, CLAMP_HI)
//
// Integer formula (zkml/ops/clip.py, kernel): out[i] = min(max(in[i], LO), HI)
//     t   = in + (in < LO) * (LO - in)          (if CLAMP_LO, else t = in)
//     out = t + (HI < t) * (HI - t)             (if CLAMP_HI, else out = t)
// Precondition: in[i] < 2^BITS (range-checked by its producer) and LO, HI < 2^BITS; t is in
// or LO, so it is < 2^BITS too, as circomlib's LessThan(BITS) requires. The comparator bits are
// constrained (1 - a Num2Bits bit); no hint is involved.
// Cost: BITS + 2 constraints per active side per element.
template ClampQ(N, BITS, LO, HI, CLAMP_LO, CLAMP_HI) {
    assert(LO < 2 ** BITS && HI < 2 ** BITS);
    signal input in[N];
    signal output out[N];
    signal t[N];
    component below[N];
    component above[N];
    for (var i = 0; i < N; i++) {
        if (CLAMP_LO == 1) {
            below[i] = LessThan(BITS);          // below.out = (in < LO)
            below[i].in[0] <== in[i];
            below[i].in[1] <== LO;
            t[i] <== in[i] + below[i].out * (LO - in[i]);
        } else {
            t[i] <== in[i];
        }
        if (CLAMP_HI == 1) {
            above[i] = LessThan(BITS);          // above.out = (HI < t)
            above[i].in[0] <== HI;
            above[i].in[1] <== t[i];
            out[i] <== t[i] + above[i].out * (HI - t[i]);
        } else {
            out[i] <== t[i];
        }
    }
}
