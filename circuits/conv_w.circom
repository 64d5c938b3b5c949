pragma circom 2.1.0;
// zkml operator library: convolution whose weights are signals (visibility --weights public,
// private or hashed), with plain signal x signal products: the baseline of the stranded
// encoding (circuits/strands.circom).
// SPDX-License-Identifier: GPL-3.0-only
include "requant.circom";

// Number of (output position, tap) pairs whose input lies inside the image (ONNX zero padding
// skips the others), for one input channel: the products one output channel of ConvW needs.
function conv_present_taps(H, W, OH, OW, KH, KW, SH, SW, PT, PL, DH, DW) {
    var c = 0;
    for (var oy = 0; oy < OH; oy++) {
        for (var ox = 0; ox < OW; ox++) {
            for (var ky = 0; ky < KH; ky++) {
                for (var kx = 0; kx < KW; kx++) {
                    var iy = oy * SH - PT + ky * DH;
                    var ix = ox * SW - PL + kx * DW;
                    if (iy >= 0 && iy < H && ix >= 0 && ix < W) {
                        c++;
                    }
                }
            }
        }
    }
    return c;
}

// ConvW(N, C, H, W, OH, OW, KH, KW, SH, SW, PT, PL, DH, DW, CO, G, WZP, B, XZP, MULT, K,
//       SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI)
//
// Integer formula (zkml/ops/conv.py, kernel; the same as Conv2D with WT[m][t] taken from the
// signal w[m*T + t], T = CG*KH*KW, t = (ci*KH + ky)*KW + kx, CG = C/G):
//     acc = B[m] + sum over ci, ky, kx with 0 <= iy < H and 0 <= ix < W of
//           (in[((n*C + g*CG + ci)*H + iy)*W + ix] - XZP) * (w[m*T + (ci*KH + ky)*KW + kx] - WZP[m])
//     out[((n*CO + m)*OH + oy)*OW + ox] = clamp(floor((acc*MULT[m] + 2^(SHIFT-1)) / 2^SHIFT) + ZP, lo, 2^bits - 1)
// with g = m \ (CO/G), iy = oy*SH - PT + ky*DH, ix = ox*SW - PL + kx*DW.
// One R1CS constraint per present product (prod <== ...); zero points, bias and multipliers
// are compile-time constants. Inputs in[] < 2^xbits (range-checked by their producer) and
// w[] < 2^wbits (range-checked by the UintRange of main.circom on the weight input). The bound
// analysis of this template (zkml/ops/conv.py, signal_weight_bounds) takes the worst case over
// EVERY weight in [0, 2^wbits) and every tap (a tap's range contains 0, so windows that lose
// taps to the padding are covered), so 0 <= N < 2^(SHIFT+QBITS) <= 2^252 for any weights a
// prover may put in w: RequantClamp's precondition holds.
// Cost: one constraint per present product, plus one RequantClamp per output.
template ConvW(N, C, H, W, OH, OW, KH, KW, SH, SW, PT, PL, DH, DW, CO, G, WZP, B, XZP, MULT, K,
               SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI) {
    assert(C % G == 0 && CO % G == 0);
    var CG = C \ G;
    var MG = CO \ G;
    var T = CG * KH * KW;
    signal input in[N * C * H * W];
    signal input w[CO * T];
    signal output out[N * CO * OH * OW];
    signal prod[N * CO * CG * conv_present_taps(H, W, OH, OW, KH, KW, SH, SW, PT, PL, DH, DW)];
    component rq[N * CO * OH * OW];
    var np = 0;
    for (var n = 0; n < N; n++) {
        for (var m = 0; m < CO; m++) {
            var g = m \ MG;
            for (var oy = 0; oy < OH; oy++) {
                for (var ox = 0; ox < OW; ox++) {
                    var acc = B[m];
                    for (var ci = 0; ci < CG; ci++) {
                        for (var ky = 0; ky < KH; ky++) {
                            var iy = oy * SH - PT + ky * DH;
                            for (var kx = 0; kx < KW; kx++) {
                                var ix = ox * SW - PL + kx * DW;
                                if (iy >= 0 && iy < H && ix >= 0 && ix < W) {
                                    prod[np] <== (in[((n * C + g * CG + ci) * H + iy) * W + ix] - XZP)
                                                 * (w[m * T + (ci * KH + ky) * KW + kx] - WZP[m]);
                                    acc += prod[np];
                                    np++;
                                }
                            }
                        }
                    }
                    var o = ((n * CO + m) * OH + oy) * OW + ox;
                    rq[o] = RequantClamp(SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI);
                    rq[o].in <== acc * MULT[m] + 2 ** (SHIFT - 1) + K * 2 ** SHIFT;
                    out[o] <== rq[o].out;
                }
            }
        }
    }
}
