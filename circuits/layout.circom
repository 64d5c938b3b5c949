pragma circom 2.1.0;
// zkml operator library: layout operators (Transpose, Pad, Concat) -- values are moved, not computed.
// SPDX-License-Identifier: GPL-3.0-only
include "requant.circom";

// IndexMap(NIN, NOUT, IDX, FILL)
//
// Integer formula (zkml/ops/layout.py, IndexMap.kernel):
//     out[i] = in[IDX[i]]  if IDX[i] >= 0,     out[i] = FILL  if IDX[i] == -1
// Transpose (a permutation) and Pad in every mode (constant / edge / reflect / wrap; negative
// pads crop). Only linear equalities: circom --O2 substitutes them away, so no constraint
// remains. Values keep their producer's range check; FILL < 2^bits is checked by zkml.
template IndexMap(NIN, NOUT, IDX, FILL) {
    signal input in[NIN];
    signal output out[NOUT];
    for (var i = 0; i < NOUT; i++) {
        if (IDX[i] >= 0) {
            out[i] <== in[IDX[i]];
        } else {
            out[i] <== FILL;
        }
    }
}

// ConcatSegment(N, REQ, ZP, MU, K, SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI)
//     out[j] = in[j]                                                     if REQ == 0
//     out[j] = RequantClamp of N = (in[j] - ZP)*MU + 2^(SHIFT-1) + K*2^SHIFT   if REQ == 1
// (the requantization of one Concat input into the output's scale and zero point; the bound
// analysis proves 0 <= N < 2^(SHIFT+QBITS) <= 2^252 for in[j] < 2^bits).
template ConcatSegment(N, REQ, ZP, MU, K, SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI) {
    signal input in[N];
    signal output out[N];
    component rq[N];
    for (var j = 0; j < N; j++) {
        if (REQ == 1) {
            rq[j] = RequantClamp(SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI);
            rq[j].in <== (in[j] - ZP) * MU + 2 ** (SHIFT - 1) + K * 2 ** SHIFT;
            out[j] <== rq[j].out;
        } else {
            out[j] <== in[j];
        }
    }
}

// Concat(NA, NB, NC, ND, NOUT, PART, IDX, CV, REQ, ZP, MU, K, SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI)
//
// Integer formula (zkml/ops/concat.py, kernel): up to four activation inputs a, b, c, d (unused
// ones have size 0), each first mapped to the output's scale by ConcatSegment (REQ[k], ZP[k],
// MU[k]; one shared SHIFT and RequantClamp parameter set), then placed:
//     out[i] = seg_PART[i][IDX[i]]     (PART[i] in 0..3)
//     out[i] = CV[IDX[i]]              (PART[i] == -1: a constant, quantized by zkml)
// Cost: one RequantClamp per element of a requantized input; placement is free.
template Concat(NA, NB, NC, ND, NOUT, PART, IDX, CV, REQ, ZP, MU, K, SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI) {
    signal input a[NA];
    signal input b[NB];
    signal input c[NC];
    signal input d[ND];
    signal output out[NOUT];
    component sa = ConcatSegment(NA, REQ[0], ZP[0], MU[0], K, SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI);
    component sb = ConcatSegment(NB, REQ[1], ZP[1], MU[1], K, SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI);
    component sc = ConcatSegment(NC, REQ[2], ZP[2], MU[2], K, SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI);
    component sd = ConcatSegment(ND, REQ[3], ZP[3], MU[3], K, SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI);
    sa.in <== a;
    sb.in <== b;
    sc.in <== c;
    sd.in <== d;
    for (var i = 0; i < NOUT; i++) {
        if (PART[i] == 0) {
            out[i] <== sa.out[IDX[i]];
        } else if (PART[i] == 1) {
            out[i] <== sb.out[IDX[i]];
        } else if (PART[i] == 2) {
            out[i] <== sc.out[IDX[i]];
        } else if (PART[i] == 3) {
            out[i] <== sd.out[IDX[i]];
        } else {
            out[i] <== CV[IDX[i]];
        }
    }
}

// Concat1(...): Concat with a single activation input, named `in` (zkml's one-input port).
template Concat1(NA, NB, NC, ND, NOUT, PART, IDX, CV, REQ, ZP, MU, K, SHIFT, QBITS, LO, HI, OFF, CLAMP_LO, CLAMP_HI) {
    signal input in[NA];
    signal output out[NOUT];
    component cat = Concat(NA, 0, 0, 0, NOUT, PART, IDX, CV, REQ, ZP, MU, K, SHIFT, QBITS, LO, HI, OFF,
                           CLAMP_LO, CLAMP_HI);
    cat.a <== in;
    out <== cat.out;
}
