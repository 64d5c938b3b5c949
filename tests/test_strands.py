"""Stranded (SIMD) encoding of signal x signal products (circuits/strands.circom, zkml/strands.py)
and Conv with weights as signals (circuits/conv_w.circom).

* Property tests (hypothesis, >= 1,000 cases per template family): StrandDenseW, StrandConvWChannels,
  StrandConvWPositions and ConvW against the operators' own integer kernels (zkml/ops/dense.py,
  zkml/ops/conv.py), bit for bit, with the weights drawn per case like the inputs (a prover picks
  them), extremes mixed in (every input and weight at 0 or at its maximum: the lanes' bounds).
* The constraint formula zkml/strands.py decides with equals circom's R1CS (O1 and O2).
* Forgeries (adversarial witnesses, snarkjs + the independent checker zkml/r1cs.py): a lane carry
  (lane j borrows 2^L from lane j+1), a lane >= 2^L, a field-negative lane, lanes chosen freely and
  the lowest solved for; the attacker recomputes every RequantClamp signal for each quotient it
  may pick. All rejected.
* Models: runtime == witness bit for bit with weights private / public / hashed, strands auto and
  off, for an MLP and a two-layer CNN; wrong weights with the right commitment rejected.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from circuit_harness import O1, O2, P, assert_accepted, assert_rejected, compile_circuit, r1cs_of
from test_forgery import honest_model_matches, requant_model
from zkml import strands
from zkml.emit import _circom_value
from zkml.ir import FIELD_SAFE_BITS, Node
from zkml.ops import REGISTRY
from zkml.ops.conv import Params as ConvParams
from zkml.ops.dense import Params as DenseParams
from zkml.qparams import multipliers

MIN_CASES = 1000


# =========================================================================== layer cases
@dataclasses.dataclass
class Layer:
    node: Node
    xbits: int

    @property
    def op(self) -> str:
        return self.node.op

    @property
    def p(self):
        return self.node.params

    @property
    def ins(self):
        return [SimpleNamespace(qmax=(1 << self.xbits) - 1, bits=self.xbits)]

    @property
    def n_x(self) -> int:
        p = self.p
        return p.rows * p.n_in if self.op == "Dense" else p.n * p.c * p.h * p.w

    @property
    def n_w(self) -> int:
        p = self.p
        return p.n_out * p.n_in if self.op == "Dense" else p.m * (p.c // p.group) * p.kh * p.kw

    @property
    def n_out(self) -> int:
        p = self.p
        return p.rows * p.n_out if self.op == "Dense" else p.n * p.m * p.oh * p.ow

    def plan(self, layout: str) -> strands.Plan:
        return strands.forced_plan(self.node, self.ins, None, layout)

    def kernel(self, x: list[int], w: list[int]) -> list[int]:
        p = self.p
        if self.op == "Dense":
            q = dataclasses.replace(p, w=np.array(w).reshape(p.n_out, p.n_in).tolist())
            y = REGISTRY["Dense"].kernel(q, np.array(x).reshape(p.rows, p.n_in))
        else:
            q = dataclasses.replace(p, wq=np.array(w).reshape(p.m, -1).tolist())
            y = REGISTRY["Conv"].kernel(q, np.array(x).reshape(p.n, p.c, p.h, p.w))
        return [int(v) for v in np.asarray(y).reshape(-1)]

    def source(self, layout: str, copies: int) -> str:
        """A test circuit: `copies` independent instances, inputs and weights range-checked as
        main.circom does (UintRange), the layer's template for the given layout."""
        template, args = strands.template_args(self.node, self.ins, None, self.plan(layout))
        funcs, rendered = [], []
        for name, a in args:
            if isinstance(a, (list, tuple)):
                funcs.append(f"function arg_{name}() {{ return {_circom_value(a)}; }}")
                rendered.append(f"arg_{name}()")
            else:
                rendered.append(str(a))
        return f"""pragma circom 2.1.0;
include "range.circom";
include "{strands.TEMPLATE_FILES[template]}";
{chr(10).join(funcs)}

template Main(K) {{
    signal input in[K][{self.n_x}];
    signal input w[K][{self.n_w}];
    signal output out[K][{self.n_out}];
    component xr[K];
    component wr[K];
    component c[K];
    for (var i = 0; i < K; i++) {{
        xr[i] = UintRange({self.n_x}, {self.xbits});
        xr[i].in <== in[i];
        wr[i] = UintRange({self.n_w}, {self.p.w_bits});
        wr[i].in <== w[i];
        c[i] = {template}({", ".join(rendered)});
        c[i].in <== xr[i].out;
        c[i].w <== wr[i].out;
        out[i] <== c[i].out;
    }}
}}

component main = Main({copies});
"""


def _requant_consts(rng_or_draw, n_out: int, xbits: int, wbits: int, taps: int, precision: int, draw_int):
    """Zero points, bias, multipliers, shift and output grid for a layer with `taps` terms."""
    x_zp = draw_int(0, (1 << xbits) - 1)
    w_zp = [draw_int(0, (1 << wbits) - 1) for _ in range(n_out)]
    span = taps * ((1 << xbits) - 1) * ((1 << wbits) - 1)
    bias = [draw_int(-span, span) for _ in range(n_out)]
    out_bits = draw_int(2, 8)
    reals = [(1 << out_bits) / max(span, 1) * (0.5 + draw_int(0, 100) / 40) for _ in range(n_out)]
    mult, shift = multipliers(reals, precision)
    out_zp = draw_int(0, (1 << out_bits) - 1)
    out_lo = out_zp if draw_int(0, 1) else 0
    return dict(x_zp=x_zp, w_zp=w_zp, bias=bias, mult=mult, shift=shift, out_zp=out_zp, out_lo=out_lo,
                out_bits=out_bits)


def dense_layer(draw_int, rows=1, n_in=None, n_out=None, xbits=None, wbits=None, precision=None) -> Layer:
    n_in = n_in or draw_int(1, 4)
    n_out = n_out or draw_int(2, 7)
    xbits = xbits or [2, 4, 8][draw_int(0, 2)]
    wbits = wbits or [2, 4, 8][draw_int(0, 2)]
    precision = precision or draw_int(4, 16)
    c = _requant_consts(draw_int, n_out, xbits, wbits, n_in, precision, draw_int)
    w = [[draw_int(0, (1 << wbits) - 1) for _ in range(n_in)] for _ in range(n_out)]
    p = DenseParams(rows, n_in, n_out, w, c["w_zp"], wbits, c["bias"], c["x_zp"], c["mult"], c["shift"],
                    c["out_zp"], c["out_lo"], c["out_bits"])
    return Layer(Node("Dense", "dense", ["x"], "y", p), xbits)


def conv_layer(draw_int, xbits=None, wbits=None, precision=None, **geo) -> Layer:
    g = dict(c=draw_int(1, 2), h=draw_int(2, 4), w=draw_int(2, 4), kh=draw_int(1, 3), kw=draw_int(1, 3),
             sh=draw_int(1, 2), sw=draw_int(1, 2), pad=draw_int(0, 1), m=draw_int(1, 4), group=1)
    g.update(geo)
    if g["c"] == 2 and g["m"] % 2 == 0 and draw_int(0, 2) == 0:
        g["group"] = 2
    kh, kw = min(g["kh"], g["h"] + 2 * g["pad"]), min(g["kw"], g["w"] + 2 * g["pad"])
    oh = (g["h"] + 2 * g["pad"] - kh) // g["sh"] + 1
    ow = (g["w"] + 2 * g["pad"] - kw) // g["sw"] + 1
    xbits = xbits or [2, 4, 8][draw_int(0, 2)]
    wbits = wbits or [2, 4, 8][draw_int(0, 2)]
    precision = precision or draw_int(4, 16)
    cg = g["c"] // g["group"]
    c = _requant_consts(draw_int, g["m"], xbits, wbits, cg * kh * kw, precision, draw_int)
    wq = [[draw_int(0, (1 << wbits) - 1) for _ in range(cg * kh * kw)] for _ in range(g["m"])]
    p = ConvParams(1, g["c"], g["h"], g["w"], g["m"], oh, ow, kh, kw, g["sh"], g["sw"], g["pad"], g["pad"], 1, 1,
                   g["group"], wq, c["w_zp"], wbits, c["bias"], c["x_zp"], c["mult"], c["shift"], c["out_zp"],
                   c["out_lo"], c["out_bits"])
    return Layer(Node("Conv", "conv", ["x"], "y", p), xbits)


def _rng_int(seed: int):
    rng = np.random.default_rng(seed)
    return lambda lo, hi: int(rng.integers(lo, hi + 1))


def _extreme_cases(layer: Layer) -> list[tuple[list[int], list[int]]]:
    """Every input and every weight at 0 or at its maximum (the corners the lane bounds come from)."""
    xm, wm = (1 << layer.xbits) - 1, (1 << layer.p.w_bits) - 1
    return [([a] * layer.n_x, [b] * layer.n_w) for a in (0, xm) for b in (0, wm)]


def _check_cases(layer: Layer, layout: str, cases: list) -> int:
    c = compile_circuit(layer.source(layout, len(cases)), O2)
    wit = c.witness({"in": [x for x, _ in cases], "w": [w for _, w in cases]})
    for i, (x, w) in enumerate(cases):
        got = [c.value(wit, f"main.out[{i}][{j}]") for j in range(layer.n_out)]
        want = layer.kernel(x, w)
        assert got == want, f"{layout} {layer.p}: x={x} w={w}: witness {got} != kernel {want}"
    return len(cases)


def _settings(n: int):
    return settings(max_examples=n, deadline=None, derandomize=not os.environ.get("ZKML_HYPOTHESIS_RANDOM"),
                    database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


FAMILIES = {"dense-channels": ("Dense", ["channels"]), "conv-packed": ("Conv", ["channels", "positions"]),
            "conv-plain": ("Conv", ["plain"])}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_templates_equal_kernel(family):
    """hypothesis draws a layer (shapes, bits, zero points, bias, multipliers, weights' grid) per
    circuit and ~130 (input, weights) pairs per circuit; every copy's output == the kernel's."""
    op, layouts = FAMILIES[family]
    n_circuits, copies = 8, 130
    stats = {"cases": 0, "circuits": 0}
    t0 = time.time()

    @_settings(n_circuits)
    @given(st.data())
    def prop(data):
        draw_int = lambda lo, hi: data.draw(st.integers(lo, hi))      # noqa: E731
        layer = dense_layer(draw_int) if op == "Dense" else conv_layer(draw_int)
        layout = layouts[stats["circuits"] % len(layouts)]
        try:
            plan = layer.plan(layout)
        except ValueError:                     # NL < 2 for this draw: not this test's subject
            assume(False)
        assume(plan.lanes >= 2 or layout == "plain")
        xm, wm = (1 << layer.xbits) - 1, (1 << layer.p.w_bits) - 1
        vals = lambda n, m: st.lists(st.one_of(st.sampled_from([0, 1, m]), st.integers(0, m)),  # noqa: E731
                                     min_size=n, max_size=n)
        cases = _extreme_cases(layer)
        cases += [(data.draw(vals(layer.n_x, xm)), data.draw(vals(layer.n_w, wm))) for _ in range(copies - len(cases))]
        stats["cases"] += _check_cases(layer, layout, cases)
        stats["circuits"] += 1

    prop()
    print(f"\n{family}: {stats['cases']} generated cases over {stats['circuits']} circuits, kernel == witness "
          f"bit for bit ({time.time() - t0:.1f} s)")
    assert stats["cases"] >= MIN_CASES


# =========================================================================== the cost formula
FORMULA_LAYERS = {
    "dense": lambda: dense_layer(_rng_int(5), n_in=6, n_out=7, xbits=8, wbits=8, precision=12),
    "conv": lambda: conv_layer(_rng_int(7), xbits=8, wbits=8, precision=12, c=2, h=4, w=4, kh=3, kw=3, sh=1, sw=1,
                               pad=1, m=3),
}


@pytest.mark.parametrize("flags", [O1, O2], ids=["O1", "O2"])
@pytest.mark.parametrize("which", list(FORMULA_LAYERS))
def test_cost_formula_equals_r1cs(which, flags):
    """What zkml/strands.py decides with: constraints(layout) - constraints(plain) measured on circom's
    R1CS equals the formula's difference (the RequantClamps, the same in every layout, cancel)."""
    from zkml.groth16 import r1cs_info
    layer = FORMULA_LAYERS[which]()
    level = flags[-1].lstrip("-")
    measured, formula = {}, {}
    for layout in layer.plan("plain").candidates:
        measured[layout] = r1cs_info(compile_circuit(layer.source(layout, 1), flags).r1cs)["constraints"]
        formula[layout] = layer.plan(layout).candidates[layout][level]
    print(f"\n{which} --{level}: measured {measured}, formula {formula}")
    assert len(measured) == (2 if which == "dense" else 3)
    for layout in measured:
        assert measured[layout] - measured["plain"] == formula[layout] - formula["plain"]
    auto = strands.plan(layer.node, layer.ins, None, "auto")
    assert measured[auto.layout] == min(measured.values())          # auto takes the cheapest
    assert strands.plan(layer.node, layer.ins, None, "off").layout == "plain"


def test_plain_where_packing_does_not_pay():
    """One output per strand (Dense with one output) or NL < 2 (lanes wider than 126 bits): plain."""
    one = dense_layer(_rng_int(3), n_in=5, n_out=1, xbits=8, wbits=8, precision=12)
    assert strands.plan(one.node, one.ins, None, "auto").layout == "plain"
    wide = dense_layer(_rng_int(3), n_in=5, n_out=4, xbits=8, wbits=8, precision=12)
    wide.node.params.shift = 130          # a 130-bit shift: L = SHIFT + QBITS + 2 > 126, NL = 1
    L, nl = strands.lane_geometry(strands.signal_bounds(wide.node, wide.ins, None))
    assert L > 126 and nl == 1
    assert strands.plan(wide.node, wide.ins, None, "auto").layout == "plain"
    with pytest.raises(ValueError, match="does not apply"):
        strands.forced_plan(wide.node, wide.ins, None, "channels")


# =========================================================================== forgeries
FORGE_LAYER = lambda: dense_layer(_rng_int(11), n_in=5, n_out=4, xbits=8, wbits=8, precision=12)  # noqa: E731


@pytest.fixture(scope="module", params=[O1, O2], ids=["O1", "O2"])
def forge(request):
    """A StrandDenseW (4 outputs in one strand of NL >= 4 lanes) with its honest witness."""
    layer = FORGE_LAYER()
    plan = layer.plan("channels")
    assert plan.lanes >= 4 and plan.groups == 1
    c = compile_circuit(layer.source("channels", 1), request.param)
    rng = np.random.default_rng(4)
    x = [int(v) for v in rng.integers(0, 256, layer.n_x)]
    w = [int(v) for v in rng.integers(0, 256, layer.n_w)]
    honest = c.witness({"in": [x], "w": [w]})
    assert_accepted(c, honest)
    b = strands.signal_bounds(layer.node, layer.ins, None)
    return SimpleNamespace(layer=layer, plan=plan, c=c, honest=honest, rq=b.circuit, x=x, w=w)


def _lanes(f) -> list[int]:
    """The honest lanes N_j = M_j*(B_j + sum_k (x_k - XZP)(w_jk - WZP_j)) + 2^(S-1) + K*2^S, computed
    here and checked against the witness where the lane survives (--O2 eliminates one lane by the
    linear identity; the R1CS computes it from the others)."""
    p, S = f.layer.p, f.rq["SHIFT"]
    lanes = [p.mult[j] * (p.bias[j] + sum((x - p.x_zp) * (f.w[j * p.n_in + k] - p.w_zp[j]) for k, x in enumerate(f.x)))
             + (1 << (S - 1)) + f.rq["K"] * (1 << S) for j in range(p.n_out)]
    for j, v in enumerate(lanes):
        name = f"main.c[0].lanes[0].lane[{j}]"
        assert 0 <= v < 1 << (S + f.rq["QBITS"])
        if f.c.survives(name):
            assert f.c.value(f.honest, name) == v
    return lanes


def _forged(f, lanes: dict[int, int], q_of=None) -> list[int]:
    """The honest witness with lane j set to the integer lanes[j] (mod p), and every RequantClamp
    signal of that lane recomputed by the template's formulas for the quotient q_of(j, value)
    (default: floor(value / 2^SHIFT)), its output propagated to the public output."""
    S = f.rq["SHIFT"]
    assign = {}
    for j, v in lanes.items():
        q = (v >> S) if q_of is None else q_of(j, v)
        m = requant_model(f"main.c[0].lanes[0].rq[{j}]", v, f.rq, q)
        m[f"main.c[0].lanes[0].lane[{j}]"] = v
        for name in (f"main.c[0].lanes[0].out[{j}]", f"main.c[0].out[{j}]", f"main.out[0][{j}]"):
            m[name] = m[f"main.c[0].lanes[0].rq[{j}].out"]
        assign.update(m)
    return f.c.tamper(f.honest, assign, skip_eliminated=True)


def _identity_holds(f, lanes: dict[int, int]) -> bool:
    L, old = f.plan.lane_bits, _lanes(f)
    new = [lanes.get(j, v) for j, v in enumerate(old)]
    return sum(v << (j * L) for j, v in enumerate(new)) % P == sum(v << (j * L) for j, v in enumerate(old)) % P


CATCH = ("rBits", "n2b", "qBits", "nBits")   # the requantization's decompositions = the lane range checks


def test_signal_model_reproduces_honest_witness(forge):
    lanes = _lanes(forge)
    model = {}
    for j, v in enumerate(lanes):
        model.update(requant_model(f"main.c[0].lanes[0].rq[{j}]", v, forge.rq, v >> forge.rq["SHIFT"]))
    honest_model_matches(forge.c, forge.honest, model)
    assert forge.c.r1cs and _forged(forge, dict(enumerate(lanes))) == forge.honest
    assert [forge.c.value(forge.honest, f"main.out[0][{j}]") for j in range(4)] == forge.layer.kernel(forge.x, forge.w)


def _quotients(f, v: int, honest_q: int) -> list[int]:
    """The quotients an attacker may try for a forged lane value v: floor(v / 2^S) and around it,
    the field representative's, the honest one and around it, the edges of the q window."""
    S, Q = f.rq["SHIFT"], f.rq["QBITS"]
    qs = {v >> S, (v % P) >> S, honest_q, 0, (1 << Q) - 1, 1 << Q, -(1 << Q)}
    qs |= {q + d for q in (v >> S, honest_q) for d in range(-3, 4)}
    return sorted(qs)


@pytest.mark.parametrize("j", [0, 1, 2])
def test_lane_carry_rejected(forge, j):
    """Lane j borrows 2^L from lane j+1 (lane j + 2^L, lane j+1 - 1): the packed sum is unchanged,
    lane j is >= 2^L; for every quotient the attacker tries, a requant decomposition fails."""
    L, lanes = forge.plan.lane_bits, _lanes(forge)
    bad = {j: lanes[j] + (1 << L), j + 1: lanes[j + 1] - 1}
    assert _identity_holds(forge, bad)
    hq = lanes[j] >> forge.rq["SHIFT"]
    for q in _quotients(forge, bad[j], hq):
        assert_rejected(forge.c, _forged(forge, bad, lambda i, v: q if i == j else v >> forge.rq["SHIFT"]),
                        caught_in=CATCH, kind="strands: lane carry")


@pytest.mark.parametrize("t", [2, 3, 1 << 20])
def test_lane_at_least_2L_rejected(forge, t):
    """Lane 0 set to lane 0 + t*2^L (>= 2^L), lane 1 - t to keep the packed sum: rejected."""
    L, lanes = forge.plan.lane_bits, _lanes(forge)
    bad = {0: lanes[0] + t * (1 << L), 1: lanes[1] - t}
    assert _identity_holds(forge, bad)
    for q in _quotients(forge, bad[0], lanes[0] >> forge.rq["SHIFT"]):
        assert_rejected(forge.c, _forged(forge, bad, lambda i, v: q if i == 0 else v >> forge.rq["SHIFT"]),
                        caught_in=CATCH, kind="strands: lane >= 2^L")


@pytest.mark.parametrize("j", [0, 1, 2])
def test_field_negative_lane_rejected(forge, j):
    """Lane j lends 2^L to lane j+1 (lane j - 2^L < 0, i.e. p - something; lane j+1 + 1)."""
    L, lanes = forge.plan.lane_bits, _lanes(forge)
    bad = {j: lanes[j] - (1 << L), j + 1: lanes[j + 1] + 1}
    assert bad[j] < 0 and _identity_holds(forge, bad)
    for q in _quotients(forge, bad[j], lanes[j] >> forge.rq["SHIFT"]):
        assert_rejected(forge.c, _forged(forge, bad, lambda i, v: q if i == j else v >> forge.rq["SHIFT"]),
                        caught_in=CATCH, kind="strands: field-negative lane")


def test_free_lanes_with_lowest_solved_rejected(forge):
    """Lanes 1..3 moved to other in-range values (+-1, +-2^SHIFT: another output), lane 0 solved
    from the packed sum: lane 0 is then a huge field element and its decomposition fails."""
    L, S, lanes = forge.plan.lane_bits, forge.rq["SHIFT"], _lanes(forge)
    for d in (1, -1, 1 << S, -(1 << S)):
        bad = {j: lanes[j] + d for j in (1, 2, 3)}
        bad[0] = (lanes[0] - sum(d << (j * L) for j in (1, 2, 3))) % P
        assert _identity_holds(forge, bad)
        assert_rejected(forge.c, _forged(forge, bad), caught_in=CATCH, kind="strands: free lanes, lane 0 solved")


def test_lane_off_the_packed_sum_rejected(forge):
    """A lane changed alone (the other lanes honest, so the packed sum no longer matches): the
    linear identity s === sum_j lane_j 2^(jL) fails, even with the requantization consistent."""
    lanes = _lanes(forge)
    for j in range(4):
        bad = {j: lanes[j] + (1 << forge.rq["SHIFT"])}          # a consistent requant of another value
        assert not _identity_holds(forge, bad)
        assert_rejected(forge.c, _forged(forge, bad), kind="strands: lane off the packed sum")


# =========================================================================== models
def cnn_model():
    from onnx import helper
    from conftest import const, make_model, vinfo
    rng = np.random.default_rng(1)
    return make_model(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="c1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["y"], ["yr"], name="r1"),
         helper.make_node("Conv", ["yr", "w2", "b2"], ["z"], name="c2", kernel_shape=[2, 2], strides=[2, 2])],
        [vinfo("x", [1, 2, 5, 5])], [vinfo("z", [1, 3, 2, 2])],
        [const("w", rng.normal(0, 1, (6, 2, 3, 3))), const("w2", rng.normal(0, 1, (3, 6, 2, 2))),
         const("b2", rng.normal(0, 1, (3,)))])


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from conftest import mlp_model, save
    d = tmp_path_factory.mktemp("strands")
    rng = np.random.default_rng(0)
    np.save(d / "cnn_cal.npy", rng.normal(0, 1, (32, 1, 2, 5, 5)).astype(np.float32))
    (d / "cnn_x.json").write_text(json.dumps(rng.normal(0, 1, (1, 2, 5, 5)).tolist()))
    np.save(d / "mlp_cal.npy", rng.normal(0, 1, (64, 1, 6)).astype(np.float32))
    (d / "mlp_x.json").write_text(json.dumps([[0.7, -0.4, 1.3, -1.1, 0.2, 0.05]]))
    return {"cnn": (d, save(cnn_model(), d / "cnn.onnx")), "mlp": (d, save(mlp_model((6, 5, 4), seed=2), d / "mlp.onnx"))}


_builds: dict = {}


def build(models, which: str, weights: str, mode: str) -> Path:
    from zkml import api
    from zkml.visibility import Visibility
    key = (which, weights, mode)
    if key not in _builds:
        d, onnx_path = models[which]
        b = d / f"b_{which}_{weights}_{mode}"
        api.compile(onnx_path, b, d / f"{which}_cal.npy", visibility=Visibility("private", weights, "public"),
                    strands=mode)
        _builds[key] = b
    return _builds[key]


MODEL_CASES = [("cnn", "private", "auto"), ("cnn", "private", "off"), ("cnn", "hashed", "auto"),
               ("cnn", "public", "auto"), ("mlp", "private", "auto"), ("mlp", "hashed", "auto")]


@pytest.mark.parametrize("case", MODEL_CASES, ids=["-".join(c) for c in MODEL_CASES])
def test_model_witness_equals_runtime(models, case):
    """api.witness raises unless every public signal equals the runtime's (outputs, packed weights,
    commitments); the outputs are the runtime's; the layouts are those build.json records."""
    import zkml_runtime as rt
    from zkml import api
    which, weights, mode = case
    b = build(models, *case)
    d = models[which][0]
    _, outs = api.witness(b, d / f"{which}_x.json")
    g = api.load_graph(b)
    x = np.array(json.loads((d / f"{which}_x.json").read_text()), dtype=np.float64)
    q, _ = rt.quantize_input(g, x.reshape(g.tensors[g.inputs[0]].shape))
    assert outs == [int(v) for o in rt.run_outputs(g, q) for v in o.reshape(-1)]
    meta = json.loads((b / "build.json").read_text())
    layouts = [pl["layout"] for pl in meta["strands"]["layers"]]
    src = (b / "main.circom").read_text()
    if mode == "off":
        assert set(layouts) == {"plain"} and "Strand" not in src
    elif which == "cnn":
        # c1: 6 channels in one strand of NL >= 6 lanes, 25 positions; c2: 3 channels, 4 positions
        assert layouts == ["channels", "positions"]
        assert "StrandConvWChannels(" in src and "StrandConvWPositions(" in src
    else:
        assert layouts == ["channels", "channels"] and "StrandDenseW(" in src


def test_packed_cnn_saves_what_the_formula_says(models):
    from zkml.groth16 import r1cs_info
    auto, off = build(models, "cnn", "private", "auto"), build(models, "cnn", "private", "off")
    n = {b: r1cs_info(b / "main.r1cs")["constraints"] for b in (auto, off)}
    plans = json.loads((auto / "build.json").read_text())["strands"]["layers"]
    level = json.loads((auto / "build.json").read_text())["circuit"]["circom"].lstrip("-")
    saved = sum(pl["candidates"]["plain"][level] - pl["candidates"][pl["layout"]][level] for pl in plans)
    print(f"\nCNN, weights private: plain {n[off]}, packed {n[auto]} constraints (--{level}), saved {saved}")
    assert n[off] - n[auto] == saved > 0


def test_wrong_weights_with_right_commitment_rejected(models):
    """--weights hashed with packed Conv layers: a consistent witness for other weights, claiming
    the published commitment, is rejected; so is the honest witness with one weight changed."""
    import subprocess
    from circuit_harness import Circuit, read_sym
    from zkml import api, toolchain
    from zkml.wtns import read_wtns
    b = build(models, "cnn", "hashed", "auto")
    d = models["cnn"][0]
    wtns, _ = api.witness(b, d / "cnn_x.json")
    honest, _ = read_wtns(wtns)
    c = Circuit(b, "main", ["--O2"], read_sym(b / "main.sym"))
    assert_accepted(c, honest)
    inp = json.loads((b / "input.json").read_text())
    published = c.value(honest, "main.weights_commitment")
    assert str(published) == api.commitments(b)["weights"]
    for wname in ("w0", "w1"):
        for at in (0, len(inp[wname]) - 1):
            other = dict(inp, **{wname: list(inp[wname])})
            other[wname][at] = (other[wname][at] + 1) % 256
            (b / "adv.json").write_text(json.dumps(other))
            subprocess.run([toolchain.node(), b / "main_js" / "generate_witness.js", b / "main_js" / "main.wasm",
                            b / "adv.json", b / "adv.wtns"], check=True, capture_output=True)
            w2, _ = read_wtns(b / "adv.wtns")
            assert c.value(w2, "main.weights_commitment") != published
            forged = c.tamper(w2, {"main.weights_commitment": published})
            assert_rejected(c, forged, caught_in="weights_commitment", kind="strands, hashed weights: other weights")
        forged = c.tamper(honest, {f"main.{wname}[0]": (inp[wname][0] + 1) % 256})
        assert_rejected(c, forged, kind="strands, hashed weights: one weight changed")
