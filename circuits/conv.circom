pragma circom 2.1.0;
// zkml operator library: convolution by constant weights (Conv 1-D/2-D, groups, depthwise;
// also BatchNormalization lowered to a depthwise 1x1 convolution).
// SPDX-License-Identifier: GPL-3.0-only
include "requant.circom";

// Conv2D(N, C, H, W, OH, OW, KH, KW, SH, SW, PT, PL, DH, DW, CO, G, WT, WZP, B, XZP, MULT, K,
//        SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI)
//
// Integer formula (zkml/ops/conv.py, kernel). Input in[((n*C + c)*H + iy)*W + ix] (NCHW, row
// major), output out[((n*CO + m)*OH + oy)*OW + ox]. Output channel m is in group
// g = m \ (CO/G) and reads input channels g*CG + ci, ci < CG = C/G. With
// iy = oy*SH - PT + ky*DH and ix = ox*SW - PL + kx*DW:
//     acc = B[m] + sum over ci, ky, kx with 0 <= iy < H and 0 <= ix < W of
//           (in[((n*C + g*CG + ci)*H + iy)*W + ix] - XZP) * (WT[m][(ci*KH + ky)*KW + kx] - WZP[m])
//     out = clamp(floor((acc*MULT[m] + 2^(SHIFT-1)) / 2^SHIFT) + ZP, lo, 2^bits - 1)
// Taps outside the input are ONNX zero padding: real 0 is XZP, whose term is 0, so they are
// skipped. The weights are compile-time constants: acc is a linear combination of input
// signals and costs no constraint. RequantClamp gets N = acc*MULT[m] + 2^(SHIFT-1) + K*2^SHIFT;
// zkml's bound analysis chose K so that 0 <= N < 2^(SHIFT+QBITS) <= 2^252 for every input
// with in[i] < 2^bits (range-checked by its producer), so RequantClamp's quotient and
// remainder are unique and every constraint is an integer equation.
// Cost: one RequantClamp per output (SHIFT bits, plus QBITS + 2 per active clamp, or plus
// QBITS when neither clamp is active).
// circom builds the linear combination acc symbolically, and `acc += term` copies acc each time
// (quadratic in the number of terms: minutes for a layer of 3,000-term outputs). The terms are
// therefore summed as a balanced tree (pairwise, in place): the same linear combination.
template Conv2D(N, C, H, W, OH, OW, KH, KW, SH, SW, PT, PL, DH, DW, CO, G, WT, WZP, B, XZP, MULT, K,
                SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI) {
    assert(C % G == 0 && CO % G == 0);
    signal input in[N * C * H * W];
    signal output out[N * CO * OH * OW];
    var CG = C \ G;
    var MG = CO \ G;
    component rq[N * CO * OH * OW];
    var t[CG * KH * KW];
    for (var n = 0; n < N; n++) {
        for (var m = 0; m < CO; m++) {
            var g = m \ MG;
            for (var oy = 0; oy < OH; oy++) {
                for (var ox = 0; ox < OW; ox++) {
                    var nt = 0;
                    for (var ci = 0; ci < CG; ci++) {
                        for (var ky = 0; ky < KH; ky++) {
                            var iy = oy * SH - PT + ky * DH;
                            for (var kx = 0; kx < KW; kx++) {
                                var ix = ox * SW - PL + kx * DW;
                                if (iy >= 0 && iy < H && ix >= 0 && ix < W) {
                                    t[nt] = (in[((n * C + g * CG + ci) * H + iy) * W + ix] - XZP)
                                           * (WT[m][(ci * KH + ky) * KW + kx] - WZP[m]);
                                    nt++;
                                }
                            }
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
                    var o = ((n * CO + m) * OH + oy) * OW + ox;
                    rq[o] = RequantClamp(SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI);
                    rq[o].in <== acc * MULT[m] + 2 ** (SHIFT - 1) + K * 2 ** SHIFT;
                    out[o] <== rq[o].out;
                }
            }
        }
    }
}

// ConvMaxPool2D(N, C, H, W, OH, OW, KH, KW, SH, SW, PT, PL, DH, DW, CO, G, WT, WZP, B, XZP, MULT, K,
//               PH, PW, PKH, PKW, PSH, PSW, PPT, PPL, PDH, PDW, AOFF, ABITS,
//               SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI)
//
// Integer formula (zkml/ops/convpool.py): MaxPool(Conv2D(in)), the pool window (PKH x PKW,
// strides PSH/PSW, pads PPT/PPL, dilations PDH/PDW) sliding over Conv2D's output grid OH x OW
// of each channel; output out[((n*CO + m)*PH + py)*PW + px].
// The Conv2D requantization f_m (see Conv2D) is non-decreasing in acc for MULT[m] >= 0, so
// max_t f_m(acc_t) = f_m(max_t acc_t): the template compares the accumulators and requantizes
// one value per window. A = acc + AOFF is a linear combination of the inputs (no constraint);
// zkml's bound analysis chose AOFF and ABITS so that 0 <= A < 2^ABITS for every input with
// in[i] < 2^bits (range-checked by its producer). The running maximum over a window's present
// taps A_0, A_1, ... is MaxWindow's (pool.circom), written out here so that the A_t enter it
// as linear combinations (a MaxWindow component would cost one wiring constraint per input at
// --O1): cur_0 = A_0, and for t >= 1 (step k, numbered over the windows in output order)
//     ge[k] = Num2Bits(ABITS + 1) of cur_(t-1) + 2^ABITS - A_t,
//     mx[k] = A_t + ge[k].out[ABITS] * (cur_(t-1) - A_t),   cur_t = mx[k].
// MaxWindow's soundness argument applies unchanged (every A_t and, by induction, every cur_t lies
// in [0, 2^ABITS)): the last cur is exactly the largest A of the window.
// RequantClamp gets N = (Amax - AOFF)*MULT[m] + 2^(SHIFT-1) + K*2^SHIFT: the N Conv2D would
// requantize for that tap, inside the same proven range [0, 2^(SHIFT+QBITS)).
// Cost per output: one RequantClamp and (taps - 1) * (ABITS + 2) for the running maximum
// (+ 2 per step at --O1: the decomposition's sum and input), against Conv2D + MaxPool2D's
// (Conv outputs per window) RequantClamps and (taps - 1) * (bits + 2).
template ConvMaxPool2D(N, C, H, W, OH, OW, KH, KW, SH, SW, PT, PL, DH, DW, CO, G, WT, WZP, B, XZP, MULT, K,
                       PH, PW, PKH, PKW, PSH, PSW, PPT, PPL, PDH, PDW, AOFF, ABITS,
                       SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI) {
    assert(C % G == 0 && CO % G == 0);
    signal input in[N * C * H * W];
    signal output out[N * CO * PH * PW];
    var CG = C \ G;
    var MG = CO \ G;
    var a[N * CO * OH * OW];            // A = acc + AOFF of every Conv output (linear in `in`)
    var t[CG * KH * KW];
    for (var n = 0; n < N; n++) {
        for (var m = 0; m < CO; m++) {
            var g = m \ MG;
            for (var oy = 0; oy < OH; oy++) {
                for (var ox = 0; ox < OW; ox++) {
                    var nt = 0;
                    for (var ci = 0; ci < CG; ci++) {
                        for (var ky = 0; ky < KH; ky++) {
                            var iy = oy * SH - PT + ky * DH;
                            for (var kx = 0; kx < KW; kx++) {
                                var ix = ox * SW - PL + kx * DW;
                                if (iy >= 0 && iy < H && ix >= 0 && ix < W) {
                                    t[nt] = (in[((n * C + g * CG + ci) * H + iy) * W + ix] - XZP)
                                           * (WT[m][(ci * KH + ky) * KW + kx] - WZP[m]);
                                    nt++;
                                }
                            }
                        }
                    }
                    var len = nt;
                    while (len > 1) {           // pairwise tree sum (see Conv2D)
                        for (var i = 0; i < len \ 2; i++) {
                            t[i] = t[2 * i] + t[2 * i + 1];
                        }
                        if (len % 2 == 1) {
                            t[len \ 2] = t[len - 1];
                        }
                        len = (len + 1) \ 2;
                    }
                    var acc = B[m] + AOFF;
                    if (nt > 0) {
                        acc += t[0];
                    }
                    a[((n * CO + m) * OH + oy) * OW + ox] = acc;
                }
            }
        }
    }
    // the running-maximum steps of every window, numbered in output order o (taps - 1 per window)
    var NCMP = 0;
    for (var py = 0; py < PH; py++) {
        for (var px = 0; px < PW; px++) {
            for (var ky = 0; ky < PKH; ky++) {
                for (var kx = 0; kx < PKW; kx++) {
                    var iy = py * PSH - PPT + ky * PDH;
                    var ix = px * PSW - PPL + kx * PDW;
                    if (iy >= 0 && iy < OH && ix >= 0 && ix < OW) {
                        NCMP++;
                    }
                }
            }
            NCMP--;
        }
    }
    NCMP = N * CO * NCMP;
    component ge[NCMP > 0 ? NCMP : 1];
    signal mx[NCMP > 0 ? NCMP : 1];
    component rq[N * CO * PH * PW];
    var k = 0;
    for (var nm = 0; nm < N * CO; nm++) {
        var m = nm % CO;
        for (var py = 0; py < PH; py++) {
            for (var px = 0; px < PW; px++) {
                var o = (nm * PH + py) * PW + px;
                var cur = 0;                    // the running maximum (a linear combination at the first tap)
                var t = 0;
                for (var ky = 0; ky < PKH; ky++) {
                    for (var kx = 0; kx < PKW; kx++) {
                        var iy = py * PSH - PPT + ky * PDH;
                        var ix = px * PSW - PPL + kx * PDW;
                        if (iy >= 0 && iy < OH && ix >= 0 && ix < OW) {
                            var v = a[(nm * OH + iy) * OW + ix];
                            if (t == 0) {
                                cur = v;
                            } else {
                                ge[k] = Num2Bits(ABITS + 1);
                                ge[k].in <== cur + 2 ** ABITS - v;
                                mx[k] <== v + ge[k].out[ABITS] * (cur - v);
                                cur = mx[k];
                                k++;
                            }
                            t++;
                        }
                    }
                }
                assert(t >= 1);
                rq[o] = RequantClamp(SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI);
                rq[o].in <== (cur - AOFF) * MULT[m] + 2 ** (SHIFT - 1) + K * 2 ** SHIFT;
                out[o] <== rq[o].out;
            }
        }
    }
}
