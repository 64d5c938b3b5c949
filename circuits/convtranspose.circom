pragma circom 2.1.0;
// zkml operator library: transposed convolution (ConvTranspose 1-D/2-D) as zero insertion
// followed by a convolution with the flipped kernel.
// SPDX-License-Identifier: GPL-3.0-only
include "conv.circom";

// ConvTranspose2D(NIN, HWIN, N, C, OH, OW, KHW, MAXV, NV, TAP, SRC, CO, G, WT, WZP, B, XZP, MULT, K,
//                 SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI)
//
// Integer formula (zkml/ops/convtranspose.py, ConvTranspose.kernel): Conv2D (circuits/conv.circom)
// over u, the input with zeros inserted and padded (u[j] = in[up_idx[j]], or XZP, the quantized
// real 0). The inserted zeros and the padding contribute (XZP - XZP) * w = 0, so only the taps
// that land on a real input are summed: for output position p = oy*OW + ox, its NV[p] taps
// v < NV[p] have kernel offset TAP[p][v] (= ky*KW + kx) and read input position SRC[p][v]
// (= iy*Win + ix) of each input channel, tabulated by zkml/ops/convtranspose.py (tap_table_t,
// which checks the zero insertion is the same for every channel):
//     acc[n][m][p] = B[m] + sum_{ci < C/G, v < NV[p]} (in[(n*C + g*C/G + ci)*HWIN + SRC[p][v]] - XZP)
//                                                      * (WT[m][ci*KHW + TAP[p][v]] - WZP[m])
//     out = clamp(floor((acc*MULT[m] + 2^(SHIFT-1)) / 2^SHIFT) + ZP, lo, 2^bits - 1)
// (g = m / (CO/G)). acc is a linear combination of input signals (constant weights): no
// constraint; RequantClamp gets N = acc*MULT[m] + 2^(SHIFT-1) + K*2^SHIFT, 0 <= N < 2^(SHIFT+QBITS)
// by the bound analysis (Conv's rule over u), which needs every in[] range-checked by its producer.
// Cost: one RequantClamp per output.
// circom builds the linear combination acc symbolically, and `acc += term` copies acc each time
// (quadratic in the number of terms); the terms are summed as a balanced tree instead. Looping
// over the tabulated taps, not every tap of the zero-inserted input, also keeps circom's own
// loop (an interpreter) to the real multiply-accumulates.
template ConvTranspose2D(NIN, HWIN, N, C, OH, OW, KHW, MAXV, NV, TAP, SRC, CO, G, WT, WZP, B, XZP, MULT, K,
                         SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI) {
    assert(NIN == N * C * HWIN);
    assert(C % G == 0 && CO % G == 0);
    signal input in[NIN];
    signal output out[N * CO * OH * OW];
    var CG = C \ G;
    var MG = CO \ G;
    component rq[N * CO * OH * OW];
    var t[CG * MAXV];
    for (var n = 0; n < N; n++) {
        for (var m = 0; m < CO; m++) {
            var g = m \ MG;
            for (var p = 0; p < OH * OW; p++) {
                var nt = 0;
                for (var ci = 0; ci < CG; ci++) {
                    var base = (n * C + g * CG + ci) * HWIN;
                    for (var v = 0; v < NV[p]; v++) {
                        t[nt] = (in[base + SRC[p][v]] - XZP) * (WT[m][ci * KHW + TAP[p][v]] - WZP[m]);
                        nt++;
                    }
                }
                var len = nt;
                while (len > 1) {           // pairwise tree sum (see the header)
                    for (var i = 0; i < len \ 2; i++) {
                        t[i] = t[2 * i] + t[2 * i + 1];
                    }
                    if (len % 2 == 1) {
                        t[len \ 2] = t[len - 1];
                    }
                    len = (len + 1) \ 2;
                }
                var acc = B[m];
                if (nt > 0) {
                    acc += t[0];
                }
                var o = (n * CO + m) * OH * OW + p;
                rq[o] = RequantClamp(SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI);
                rq[o].in <== acc * MULT[m] + 2 ** (SHIFT - 1) + K * 2 ** SHIFT;
                out[o] <== rq[o].out;
            }
        }
    }
}
