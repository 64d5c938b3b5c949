"""Property tests (hypothesis): integer kernel vs circuit witness, bit-exact, for every operator
of the registry and for the shared templates (RequantClamp, UintRange).

Compiling a circuit per case would take hours, so each hypothesis example is one circuit:
hypothesis draws the operator's parameters at a coarse level (shapes, bit widths, ranges that
set the zero points, ReLU fusion, precision, weight seeds; see `param_strategy` in
tests/op_zoo.py), the parameters go through the operator's real quantize / bounds / circom
path, and the circuit holds K independent copies of the component (`OpCase.source(K)`).
Hypothesis then draws K inputs for it (edge values mixed in: 0, 1, zero point +-1, max - 1,
max; plus, for Dense and Add, the inputs reaching each accumulator's exact minimum and
maximum), one witness computation evaluates all K, and every copy's outputs must equal the
kernel's. Each operator runs >= 1,000 cases; the counts are printed.

`derandomize=True` keeps the suite's cost stable; set ZKML_HYPOTHESIS_RANDOM=1 to explore new
examples (failures are then reported with hypothesis' usual reproduction data).
"""
from __future__ import annotations

import os
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from circuit_harness import REQUANT_MAIN, compile_circuit
from op_zoo import PENDING, RELABELING, SPECS, has_template, registry_ops, stack_inputs
from zkml.errors import ZkmlError
from zkml.ir import FIELD_SAFE_BITS
from zkml.ops._requant import requant_args, requant_bounds, requant_kernel, requant_path

MIN_CASES = 1000
CIRCUITS = {"Dense": 5, "Add": 5, "Relu": 4}         # hypothesis examples (= circuits) per operator
DEFAULT_CIRCUITS = 5
COPIES = {"Dense": 210, "Add": 210, "Relu": 260}      # cases per circuit
DEFAULT_COPIES = 210


def _settings(n: int):
    return settings(max_examples=n, deadline=None, derandomize=not os.environ.get("ZKML_HYPOTHESIS_RANDOM"),
                    database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much, HealthCheck.large_base_example])


def _report(what: str, cases: int, circuits: int, seconds: float) -> None:
    print(f"\n{what}: {cases} generated cases over {circuits} circuits, kernel == witness bit for bit "
          f"({seconds:.1f} s)")
    assert cases >= MIN_CASES, f"{what}: only {cases} cases (< {MIN_CASES})"


@pytest.mark.parametrize("op", [o for o in registry_ops() if o not in RELABELING])
def test_kernel_equals_witness(op):
    if op in PENDING:
        pytest.xfail(PENDING[op])
    if op not in SPECS:
        pytest.fail(f"add a spec for op {op} in tests/op_zoo.py SPECS (param_strategy / input_strategy): "
                    "it has a template but no property test")
    assert has_template(op)
    spec = SPECS[op]
    n_circ, k = CIRCUITS.get(op, DEFAULT_CIRCUITS), COPIES.get(op, DEFAULT_COPIES)
    stats = {"cases": 0, "circuits": 0}
    t0 = time.time()

    @_settings(n_circ)
    @given(st.data())
    def prop(data):
        params = data.draw(spec.param_strategy(), label="params")
        try:
            case = spec.make(**params)
        except ZkmlError:               # e.g. a bound the quantizer refuses: not this test's subject
            assume(False)
        edge = spec.edge_inputs(case)
        batch = edge + [data.draw(spec.input_strategy(case)) for _ in range(k - len(edge))]
        circuit = compile_circuit(case.source(len(batch)))
        w = circuit.witness(stack_inputs(case, batch))
        got = [circuit.value(w, f"main.out[{i}]") for i in range(len(batch) * case.n_out)]
        for c, inputs in enumerate(batch):
            want = case.kernel(inputs)
            assert got[c * case.n_out:(c + 1) * case.n_out] == want, \
                f"{op} {params} bounds {case.bounds.circuit}: input {inputs}: witness " \
                f"{got[c * case.n_out:(c + 1) * case.n_out]} != kernel {want}"
        stats["cases"] += len(batch)
        stats["circuits"] += 1

    prop()
    _report(op, stats["cases"], stats["circuits"], time.time() - t0)


# --------------------------------------------------------------------------- shared templates
@st.composite
def requant_params(draw):
    shift = draw(st.one_of(st.integers(1, 24), st.sampled_from([31, 32, 33, 62, 63, 64, 65, 100, 150])))
    bits = draw(st.sampled_from([1, 2, 4, 8, 12, 16, 32]))
    zp = draw(st.integers(0, (1 << bits) - 1))
    lo = draw(st.sampled_from([0, zp]))
    scale = draw(st.integers(0, min(shift + bits + 4, FIELD_SAFE_BITS - shift - 8)))
    amax = draw(st.integers(0, 1 << scale))
    amin = -draw(st.integers(0, 1 << scale))
    b = requant_bounds(amin, amax, shift, zp, lo, bits)
    assume(b.max_bits <= FIELD_SAFE_BITS)
    return dict(amin=amin, amax=amax, shift=shift, zp=zp, lo=lo, bits=bits), b


@st.composite
def aligned_requant_params(draw):
    """Parameter sets on RequantClamp's aligned way: both clamps act (accumulators well beyond the
    output grid on both sides) and the output range HI - LO + 1 is a power of two."""
    shift = draw(st.one_of(st.integers(1, 24), st.sampled_from([31, 62, 100, 150])))
    bits = draw(st.sampled_from([1, 2, 4, 8, 12, 16]))
    zp = draw(st.integers(0, (1 << bits) - 1))
    lo = draw(st.sampled_from([0, (1 << bits) - (1 << draw(st.integers(0, bits - 1)))]))
    scale = shift + bits + draw(st.integers(1, 6))
    assume(scale + 3 <= FIELD_SAFE_BITS)
    amax = draw(st.integers(1 << (scale - 1), 1 << scale))
    amin = -draw(st.integers(1 << (scale - 1), 1 << scale))
    b = requant_bounds(amin, amax, shift, zp, lo, bits)
    assume(b.max_bits <= FIELD_SAFE_BITS and requant_path(b.circuit) == "aligned")
    return dict(amin=amin, amax=amax, shift=shift, zp=zp, lo=lo, bits=bits), b


def _requant_property(params, what: str, n_circuits: int = 6) -> None:
    """RequantClamp's witness equals requant_kernel on 256 accumulators per drawn parameter set
    (every rounding boundary of every clamp, then random ones), for n_circuits sets."""
    k, stats, t0 = 256, {"cases": 0, "circuits": 0}, time.time()

    @_settings(n_circuits)
    @given(st.data())
    def prop(data):
        prm, b = data.draw(params(), label="params")
        c, s = b.circuit, prm["shift"]
        half, unit = 1 << (s - 1), 1 << s
        edges = {prm["amin"], prm["amax"], 0, half, -half, half - 1}
        for t in (prm["lo"], prm["zp"], (1 << prm["bits"]) - 1):      # rounding boundaries of every clamp
            e = (t - prm["zp"]) * unit - half
            edges |= {e - 1, e, e + 1}
        edges = sorted(a for a in edges if prm["amin"] <= a <= prm["amax"])
        acc = st.one_of(st.sampled_from(edges), st.integers(prm["amin"], prm["amax"]))
        accs = edges + [data.draw(acc) for _ in range(k - len(edges))]
        ns = [a + half + c["K"] * unit for a in accs]
        circuit = compile_circuit(REQUANT_MAIN.format(args=", ".join(str(v) for _, v in requant_args(b)),
                                                      n=len(ns)))
        w = circuit.witness({"in": ns})
        got = [circuit.value(w, f"main.out[{i}]") for i in range(len(ns))]
        want = [int(v) for v in requant_kernel(np.array(accs, dtype=object), s, prm["zp"], prm["lo"], prm["bits"])]
        bad = [(a, g, x) for a, g, x in zip(accs, got, want) if g != x]
        assert not bad, f"RequantClamp {prm} {c}: (acc, witness, kernel) {bad[:5]}"
        stats["cases"] += len(ns)
        stats["circuits"] += 1

    prop()
    _report(what, stats["cases"], stats["circuits"], time.time() - t0)


def test_requant_clamp_kernel_equals_witness():
    _requant_property(requant_params, "RequantClamp")


def test_requant_aligned_kernel_equals_witness():
    """The aligned way on its own (the general strategy reaches it only sometimes)."""
    _requant_property(aligned_requant_params, "RequantClamp (aligned)")


UINT_RANGE = """pragma circom 2.1.0;
include "range.circom";

template Main() {{
    signal input in[{n}];
    signal output out[{n}];
    component r = UintRange({n}, {bits});
    r.in <== in;
    out <== r.out;
}}

component main = Main();
"""


def test_uint_range_passes_every_in_range_value():
    """UintRange's kernel is the identity on [0, 2^BITS); the witness must reproduce it."""
    k, stats, t0 = 256, {"cases": 0, "circuits": 0}, time.time()

    @_settings(4)
    @given(st.data())
    def prop(data):
        bits = data.draw(st.sampled_from([1, 2, 8, 16, 32, 64, 250]), label="bits")
        top = (1 << bits) - 1
        v = st.one_of(st.sampled_from(sorted({0, 1, top - 1, top} - {-1})), st.integers(0, top))
        xs = [data.draw(v) for _ in range(k)]
        circuit = compile_circuit(UINT_RANGE.format(n=k, bits=bits))
        w = circuit.witness({"in": xs})
        assert [circuit.value(w, f"main.out[{i}]") for i in range(k)] == xs
        stats["cases"] += k
        stats["circuits"] += 1

    prop()
    _report("UintRange", stats["cases"], stats["circuits"], time.time() - t0)
