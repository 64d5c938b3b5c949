pragma circom 2.1.0;
// zkml operator library: transposed convolution (ConvTranspose 1-D/2-D) as zero insertion
// followed by a convolution with the flipped kernel.
// SPDX-License-Identifier: GPL-3.0-only
include "layout.circom";
include "conv.circom";

// ConvTranspose2D(NIN, NUP, UPIDX, N, C, H, W, OH, OW, KH, KW, SH, SW, PT, PL, DH, DW, CO, G, WT, WZP,
//                 B, XZP, MULT, K, SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI)
//
// Integer formula (zkml/ops/convtranspose.py, ConvTranspose.kernel):
//     u[j]  = in[UPIDX[j]]  if UPIDX[j] >= 0,   u[j] = XZP  otherwise      (j < NUP = N*C*H*W)
//     out   = Conv2D(u)   (the formula of circuits/conv.circom, geometry N, C, H, W, ... over u)
// The inserted zeros and the padding are XZP, the quantized real 0: their Conv terms
// (XZP - XZP) * w vanish. u is made of equalities (IndexMap: no constraint after --O2); every
// u[j] is an input value or the constant XZP, so u[j] < 2^bits holds because in[] is
// range-checked by its producer, which is Conv2D's precondition. Cost: Conv2D's, one
// RequantClamp per output.
template ConvTranspose2D(NIN, NUP, UPIDX, N, C, H, W, OH, OW, KH, KW, SH, SW, PT, PL, DH, DW, CO, G, WT, WZP,
                         B, XZP, MULT, K, SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI) {
    assert(NUP == N * C * H * W);
    signal input in[NIN];
    signal output out[N * CO * OH * OW];
    component up = IndexMap(NIN, NUP, UPIDX, XZP);
    up.in <== in;
    component conv = Conv2D(N, C, H, W, OH, OW, KH, KW, SH, SW, PT, PL, DH, DW, CO, G, WT, WZP, B, XZP, MULT, K,
                            SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI);
    conv.in <== up.out;
    out <== conv.out;
}
