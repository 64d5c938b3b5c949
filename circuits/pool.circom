pragma circom 2.1.0;
// zkml operator library: pooling (MaxPool, AveragePool, their Global forms), 1-D and 2-D.
// SPDX-License-Identifier: GPL-3.0-only
include "circomlib/circuits/bitify.circom";
include "requant.circom";

// Window geometry shared by the templates below (zkml/ops/_window.py). Input
// in[((n*C + c)*H + iy)*W + ix] (NCHW, row major), output out[((n*C + c)*OH + oy)*OW + ox].
// For output (oy, ox) and tap (ky, kx): iy = oy*SH - PT + ky*DH, ix = ox*SW - PL + kx*DW;
// the tap is present when 0 <= iy < H and 0 <= ix < W (all others lie in the padding).

// MaxWindow(K, BITS): out = max(in[0], ..., in[K-1]), as a running maximum
//     m[0] = in[0],   m[i] = in[i] + ge[i] * (m[i-1] - in[i]),   ge[i] = (m[i-1] >= in[i])
// where ge[i] is the top bit of circomlib's Num2Bits(BITS + 1) of d = m[i-1] + 2^BITS - in[i]
// (circomlib's LessThan(BITS) is that decomposition with out = 1 - the top bit; using the bit
// directly saves LessThan's output constraint at --O1).
// Precondition: every in[i] < 2^BITS (range-checked by its producer). Then by induction every
// m[i] is one of the inputs (the top bit is boolean), so m[i-1] < 2^BITS, d lies in
// (0, 2^(BITS+1)) and its BITS+1 bits are unique (2^(BITS+1) < p): the top bit is 1 iff
// m[i-1] >= in[i]. No hint is involved beyond Num2Bits' own bits.
// Soundness: m[K-1] >= every in[i] (each step keeps the larger) and equals one of them.
// Cost: (K - 1) * (BITS + 2) constraints at --O2 (BITS + 1 bits, one product), plus 2 per step
// at --O1 (the decomposition's sum and its input). zkml/ops/pool.py max_window_constraints.
template MaxWindow(K, BITS) {
    assert(K >= 1);
    assert(BITS + 1 <= 252);
    signal input in[K];
    signal output out;
    signal m[K];
    component ge[K];
    m[0] <== in[0];
    for (var i = 1; i < K; i++) {
        ge[i] = Num2Bits(BITS + 1);
        ge[i].in <== m[i - 1] + 2 ** BITS - in[i];
        m[i] <== in[i] + ge[i].out[BITS] * (m[i - 1] - in[i]);
    }
    out <== m[K - 1];
}

// MaxPool2D(N, C, H, W, OH, OW, KH, KW, SH, SW, PT, PL, DH, DW, BITS)
//
// Integer formula (zkml/ops/pool.py, MaxPool.kernel): out = max of the present taps of the
// window (ONNX pads MaxPool with -inf: padding never wins). zkml refuses windows without a
// present tap. Inputs < 2^BITS; the output is one of them (same scale and zero point).
template MaxPool2D(N, C, H, W, OH, OW, KH, KW, SH, SW, PT, PL, DH, DW, BITS) {
    signal input in[N * C * H * W];
    signal output out[N * C * OH * OW];
    component win[N * C * OH * OW];
    for (var oy = 0; oy < OH; oy++) {
        for (var ox = 0; ox < OW; ox++) {
            var taps = 0;
            for (var ky = 0; ky < KH; ky++) {
                for (var kx = 0; kx < KW; kx++) {
                    var iy = oy * SH - PT + ky * DH;
                    var ix = ox * SW - PL + kx * DW;
                    if (iy >= 0 && iy < H && ix >= 0 && ix < W) {
                        taps++;
                    }
                }
            }
            assert(taps >= 1);
            for (var nc = 0; nc < N * C; nc++) {
                var o = (nc * OH + oy) * OW + ox;
                win[o] = MaxWindow(taps, BITS);
                var t = 0;
                for (var ky = 0; ky < KH; ky++) {
                    for (var kx = 0; kx < KW; kx++) {
                        var iy = oy * SH - PT + ky * DH;
                        var ix = ox * SW - PL + kx * DW;
                        if (iy >= 0 && iy < H && ix >= 0 && ix < W) {
                            win[o].in[t] <== in[(nc * H + iy) * W + ix];
                            t++;
                        }
                    }
                }
                out[o] <== win[o].out;
            }
        }
    }
}

// AvgPool2D(N, C, H, W, OH, OW, KH, KW, SH, SW, PT, PL, DH, DW, XZP, CLS, MULT, K,
//           SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI)
//
// Integer formula (zkml/ops/pool.py, AvgPool.kernel), for output (n, c, oy, ox), p = oy*OW + ox:
//     acc = sum over the present taps of (in - XZP)
//     out = clamp(floor((acc*MULT[CLS[p]] + 2^(SHIFT-1)) / 2^SHIFT) + ZP, lo, 2^bits - 1)
// MULT[CLS[p]] ~ 2^SHIFT * x_scale / (count_p * out_scale) folds the division by the window's
// count into the requantization. acc is a linear combination of inputs (no constraint);
// RequantClamp gets N = acc*MULT + 2^(SHIFT-1) + K*2^SHIFT, 0 <= N < 2^(SHIFT+QBITS) <= 2^252
// by zkml's bound analysis. Cost: one RequantClamp per output.
template AvgPool2D(N, C, H, W, OH, OW, KH, KW, SH, SW, PT, PL, DH, DW, XZP, CLS, MULT, K,
                   SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI) {
    signal input in[N * C * H * W];
    signal output out[N * C * OH * OW];
    component rq[N * C * OH * OW];
    for (var nc = 0; nc < N * C; nc++) {
        for (var oy = 0; oy < OH; oy++) {
            for (var ox = 0; ox < OW; ox++) {
                var acc = 0;
                for (var ky = 0; ky < KH; ky++) {
                    for (var kx = 0; kx < KW; kx++) {
                        var iy = oy * SH - PT + ky * DH;
                        var ix = ox * SW - PL + kx * DW;
                        if (iy >= 0 && iy < H && ix >= 0 && ix < W) {
                            acc += in[(nc * H + iy) * W + ix] - XZP;
                        }
                    }
                }
                var o = (nc * OH + oy) * OW + ox;
                rq[o] = RequantClamp(SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI);
                rq[o].in <== acc * MULT[CLS[oy * OW + ox]] + 2 ** (SHIFT - 1) + K * 2 ** SHIFT;
                out[o] <== rq[o].out;
            }
        }
    }
}
