pragma circom 2.1.0;
// zkml operator library: stranded (SIMD) encoding of signal x signal products, for layers whose
// weights are signals (visibility --weights public, private or hashed; zkml/strands.py chooses
// per layer between these templates and the plain ones of dense_w.circom / conv_w.circom).
// SPDX-License-Identifier: GPL-3.0-only
include "requant.circom";
include "conv_w.circom";

// The idea (ZEN's stranded encoding). NL integers that never exceed 2^L sit in one field element
// as lanes, sum_j v_j * 2^(j*L). A packed factor A_t = sum_j a_jt * 2^(j*L) is a linear
// combination of signals (free in R1CS), so ONE constraint prod_t = A_t * X_t multiplies X_t into
// all NL lanes, and sum_t prod_t holds the NL dot products sum_t a_jt * X_t side by side.
//
// zkml packs the *requantization inputs* themselves: lane j of a strand group is
//     N_j = MULT_j * (B_j + sum_t (x_t - XZP)(w_jt - WZP_j)) + 2^(SHIFT-1) + K * 2^SHIFT,
// the value RequantClamp decomposes (multiplier, bias, rounding and offset constants are folded
// into the packed factor and into one constant per lane, all linear). So the decomposition the
// requantization needs anyway, N_j = q_j * 2^SHIFT + r_j, is also the range check of lane j:
// extracting the lanes costs no constraint beyond the requantization of a plain layer.
// The lane width is L = SHIFT + QBITS + 2 (SHIFT, QBITS from the bound analysis taken over EVERY
// weight in [0, 2^wbits) and every input in [0, 2^xbits)), NL * L <= 252.
//
// Soundness of one strand group (p = BN254 order > 2^253). The circuit constrains
//   (1) prod_t = A_t * X_t              (A_t, X_t linear forms in range-checked signals)
//   (2) s = sum_t prod_t + sum_j C_j * 2^(j*L)        (C_j compile-time constants; linear)
//   (3) s = sum_j lane_j * 2^(j*L)                     (lane_j witnessed with <--; linear)
//   (4) RequantClamp(lane_j) for every j: lane_j = q_j * 2^SHIFT + r_j with r_j in [0, 2^SHIFT)
//       (Num2Bits) and q_j read as an integer in [-2^QBITS, 2^(QBITS+1)) (its Num2Bits(QBITS),
//       or the Num2Bits(QBITS+1) inside the clamp comparators; see requant.circom).
// Let N*_j be the honest value of lane j for the (range-checked) x and w in the witness. Over the
// integers, sum_t A_t X_t + sum_j C_j 2^(jL) = sum_j N*_j 2^(jL) identically (the coefficient of
// 2^(jL) is lane j's dot product; intermediate signs do not matter, only this final identity),
// and the bound analysis gives 0 <= N*_j < 2^(SHIFT+QBITS). By (4), lane_j is the field image of
// the integer l_j = q_j 2^SHIFT + r_j in [-2^(SHIFT+QBITS), 2^(SHIFT+QBITS+1)). By (1)-(3),
//     D = sum_j (l_j - N*_j) * 2^(jL) = 0 (mod p),  with |l_j - N*_j| < 2^(SHIFT+QBITS+1) <= 2^(L-1),
// so |D| < 2^(L-1) * sum_j 2^(jL) < 2^(NL*L) <= 2^252 < p: D = 0 over the integers. Digits in
// (-2^(L-1), 2^(L-1)) of a base-2^L expansion of 0 are all 0 (the lowest one is 0 mod 2^L, hence
// 0; divide by 2^L and repeat), so lane_j = N*_j for every j: no lane can borrow 2^L from its
// neighbour, exceed 2^L or be field-negative. RequantClamp's precondition (0 <= in < 2^(SHIFT +
// QBITS)) then holds and its own argument makes q_j, r_j and out_j unique.
// Forgery tests: tests/test_strands.py (lane carry, lane >= 2^L, field-negative lane, wrong weights
// under the right commitment), with zkml/r1cs.py; docs/SOUNDNESS.md "Stranded encoding".

// StrandRequant(NL, L, SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI): s = sum_j lane_j 2^(jL);
// out[j] = RequantClamp(lane_j). Steps (3) and (4) above; the caller constrains s (steps 1, 2).
template StrandRequant(NL, L, SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI) {
    assert(NL >= 1);
    assert(L >= SHIFT + QBITS + 2);
    assert(NL * L <= 252);
    signal input s;
    signal output out[NL];
    signal lane[NL];
    component rq[NL];
    var packed = 0;
    for (var j = 0; j < NL; j++) {
        lane[j] <-- (s >> (j * L)) & (2 ** L - 1);
        packed += lane[j] * 2 ** (j * L);
        rq[j] = RequantClamp(SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI);
        rq[j].in <== lane[j];
        out[j] <== rq[j].out;
    }
    s === packed;
}

// StrandDenseW(ROWS, NIN, NOUT, WZP, B, XZP, M, K, SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI, NL, L)
//
// Same ports and integer result as DenseW (dense_w.circom; zkml/ops/dense.py, kernel):
//     out[r*NOUT + j] = clamp(floor((acc*M[j] + 2^(SHIFT-1)) / 2^SHIFT) + ZP, lo, 2^bits - 1),
//     acc = B[j] + sum_k (in[r*NIN + k] - XZP) * (w[j*NIN + k] - WZP[j]).
// Strands run across output channels: group g of row r holds outputs j = g*NL .. g*NL + nl - 1,
// and for each input k one constraint
//     prod = (sum_i M[j_i] * (w[j_i*NIN + k] - WZP[j_i]) * 2^(i*L)) * (in[r*NIN + k] - XZP).
// Cost: ROWS * ceil(NOUT/NL) * NIN products (DenseW: ROWS * NOUT * NIN), the same RequantClamp
// per output, and (at --O1) two linear constraints per group.
template StrandDenseW(ROWS, NIN, NOUT, WZP, B, XZP, M, K, SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI, NL, L) {
    signal input in[ROWS * NIN];
    signal input w[NOUT * NIN];
    signal output out[ROWS * NOUT];
    var NG = (NOUT + NL - 1) \ NL;
    signal prod[ROWS * NG * NIN];
    component lanes[ROWS * NG];
    for (var r = 0; r < ROWS; r++) {
        for (var g = 0; g < NG; g++) {
            var nl = NOUT - g * NL < NL ? NOUT - g * NL : NL;
            var s = 0;
            for (var k = 0; k < NIN; k++) {
                var strand = 0;
                for (var i = 0; i < nl; i++) {
                    var j = g * NL + i;
                    strand += M[j] * (w[j * NIN + k] - WZP[j]) * 2 ** (i * L);
                }
                prod[(r * NG + g) * NIN + k] <== strand * (in[r * NIN + k] - XZP);
                s += prod[(r * NG + g) * NIN + k];
            }
            for (var i = 0; i < nl; i++) {
                var j = g * NL + i;
                s += (B[j] * M[j] + 2 ** (SHIFT - 1) + K * 2 ** SHIFT) * 2 ** (i * L);
            }
            lanes[r * NG + g] = StrandRequant(nl, L, SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI);
            lanes[r * NG + g].s <== s;
            for (var i = 0; i < nl; i++) {
                out[r * NOUT + g * NL + i] <== lanes[r * NG + g].out[i];
            }
        }
    }
}

// StrandConvWChannels(N, C, H, W, OH, OW, KH, KW, SH, SW, PT, PL, DH, DW, CO, G, WZP, B, XZP, MULT, K,
//                     SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI, NL, L)
//
// Same ports and integer result as ConvW (conv_w.circom). Strands run across the output channels
// of one group: for image n, group gi, block b (channels m = gi*MG + b*NL + i, i < nl) and output
// position (oy, ox), each present tap costs one constraint
//     prod = (sum_i MULT[m_i] * (w[m_i*T + t] - WZP[m_i]) * 2^(i*L)) * (in[...] - XZP).
// Cost: N * G * ceil(MG/NL) * CG * (present taps over all positions) products.
template StrandConvWChannels(N, C, H, W, OH, OW, KH, KW, SH, SW, PT, PL, DH, DW, CO, G, WZP, B, XZP, MULT, K,
                             SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI, NL, L) {
    assert(C % G == 0 && CO % G == 0);
    var CG = C \ G;
    var MG = CO \ G;
    var T = CG * KH * KW;
    var NB = (MG + NL - 1) \ NL;
    signal input in[N * C * H * W];
    signal input w[CO * T];
    signal output out[N * CO * OH * OW];
    signal prod[N * G * NB * CG * conv_present_taps(H, W, OH, OW, KH, KW, SH, SW, PT, PL, DH, DW)];
    component lanes[N * G * NB * OH * OW];
    var np = 0;
    for (var n = 0; n < N; n++) {
        for (var gi = 0; gi < G; gi++) {
            for (var b = 0; b < NB; b++) {
                var m0 = gi * MG + b * NL;
                var nl = MG - b * NL < NL ? MG - b * NL : NL;
                for (var oy = 0; oy < OH; oy++) {
                    for (var ox = 0; ox < OW; ox++) {
                        var s = 0;
                        for (var ci = 0; ci < CG; ci++) {
                            for (var ky = 0; ky < KH; ky++) {
                                var iy = oy * SH - PT + ky * DH;
                                for (var kx = 0; kx < KW; kx++) {
                                    var ix = ox * SW - PL + kx * DW;
                                    if (iy >= 0 && iy < H && ix >= 0 && ix < W) {
                                        var t = (ci * KH + ky) * KW + kx;
                                        var strand = 0;
                                        for (var i = 0; i < nl; i++) {
                                            strand += MULT[m0 + i] * (w[(m0 + i) * T + t] - WZP[m0 + i]) * 2 ** (i * L);
                                        }
                                        prod[np] <== strand * (in[((n * C + gi * CG + ci) * H + iy) * W + ix] - XZP);
                                        s += prod[np];
                                        np++;
                                    }
                                }
                            }
                        }
                        for (var i = 0; i < nl; i++) {
                            s += (B[m0 + i] * MULT[m0 + i] + 2 ** (SHIFT - 1) + K * 2 ** SHIFT) * 2 ** (i * L);
                        }
                        var c = ((n * G + gi) * NB + b) * OH * OW + oy * OW + ox;
                        lanes[c] = StrandRequant(nl, L, SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI);
                        lanes[c].s <== s;
                        for (var i = 0; i < nl; i++) {
                            out[((n * CO + m0 + i) * OH + oy) * OW + ox] <== lanes[c].out[i];
                        }
                    }
                }
            }
        }
    }
}

// Taps present in at least one of the output positions p = b*NL .. b*NL + NL - 1 (of OH*OW), summed
// over the blocks b, for one input channel: the products of one output channel of
// StrandConvWPositions.
function conv_block_taps(H, W, OH, OW, KH, KW, SH, SW, PT, PL, DH, DW, NL) {
    var c = 0;
    var P = OH * OW;
    for (var b = 0; b * NL < P; b++) {
        for (var ky = 0; ky < KH; ky++) {
            for (var kx = 0; kx < KW; kx++) {
                var any = 0;
                for (var p = b * NL; p < b * NL + NL && p < P; p++) {
                    var iy = (p \ OW) * SH - PT + ky * DH;
                    var ix = (p % OW) * SW - PL + kx * DW;
                    if (iy >= 0 && iy < H && ix >= 0 && ix < W) {
                        any = 1;
                    }
                }
                c += any;
            }
        }
    }
    return c;
}

// StrandConvWPositions(N, C, H, W, OH, OW, KH, KW, SH, SW, PT, PL, DH, DW, CO, G, WZP, B, XZP, MULT, K,
//                      SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI, NL, L)
//
// Same ports and integer result as ConvW. Strands run across output positions (weight reuse):
// for image n, output channel m and block b of positions p = b*NL + i (p = oy*OW + ox, i < nl),
// each tap t present in at least one of them costs one constraint
//     prod = (sum_i MULT[m] * (in[tap t of position p_i] - XZP) * 2^(i*L)) * (w[m*T + t] - WZP[m]),
// the lanes of positions where tap t is in the padding left out (their term is 0).
// Cost: N * CO * CG * conv_block_taps(...) products.
template StrandConvWPositions(N, C, H, W, OH, OW, KH, KW, SH, SW, PT, PL, DH, DW, CO, G, WZP, B, XZP, MULT, K,
                              SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI, NL, L) {
    assert(C % G == 0 && CO % G == 0);
    var CG = C \ G;
    var MG = CO \ G;
    var T = CG * KH * KW;
    var P = OH * OW;
    var NB = (P + NL - 1) \ NL;
    signal input in[N * C * H * W];
    signal input w[CO * T];
    signal output out[N * CO * OH * OW];
    signal prod[N * CO * CG * conv_block_taps(H, W, OH, OW, KH, KW, SH, SW, PT, PL, DH, DW, NL)];
    component lanes[N * CO * NB];
    var np = 0;
    for (var n = 0; n < N; n++) {
        for (var m = 0; m < CO; m++) {
            var g = m \ MG;
            for (var b = 0; b < NB; b++) {
                var nl = P - b * NL < NL ? P - b * NL : NL;
                var s = 0;
                for (var ci = 0; ci < CG; ci++) {
                    for (var ky = 0; ky < KH; ky++) {
                        for (var kx = 0; kx < KW; kx++) {
                            var strand = 0;
                            var any = 0;
                            for (var i = 0; i < nl; i++) {
                                var p = b * NL + i;
                                var iy = (p \ OW) * SH - PT + ky * DH;
                                var ix = (p % OW) * SW - PL + kx * DW;
                                if (iy >= 0 && iy < H && ix >= 0 && ix < W) {
                                    strand += MULT[m] * (in[((n * C + g * CG + ci) * H + iy) * W + ix] - XZP) * 2 ** (i * L);
                                    any = 1;
                                }
                            }
                            if (any == 1) {
                                prod[np] <== strand * (w[m * T + (ci * KH + ky) * KW + kx] - WZP[m]);
                                s += prod[np];
                                np++;
                            }
                        }
                    }
                }
                for (var i = 0; i < nl; i++) {
                    s += (B[m] * MULT[m] + 2 ** (SHIFT - 1) + K * 2 ** SHIFT) * 2 ** (i * L);
                }
                var c = (n * CO + m) * NB + b;
                lanes[c] = StrandRequant(nl, L, SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI);
                lanes[c].s <== s;
                for (var i = 0; i < nl; i++) {
                    out[(n * CO + m) * P + b * NL + i] <== lanes[c].out[i];   // p = oy*OW + ox
                }
            }
        }
    }
}
