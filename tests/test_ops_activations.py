"""Activations and ArgMax: Sigmoid, Tanh, HardSigmoid, HardSwish, LeakyRelu, PRelu (exact lookup
tables, IR op Lut, zkml/ops/activations.py, circuits/lut.circom) and ArgMax (zkml/ops/argmax.py,
circuits/argmax.circom), with Softmax -> ArgMax proven as the ArgMax of the logits and a final
Softmax alone left to the caller (the circuit proves the logits).

  1. ONNX's own conformance cases (tests/onnx_conformance.py): per op passed / skipped (reason) /
     failed (none). Softmax cases check the documented choice: the integer runtime's logits,
     dequantized and put through the caller's float softmax (zkml_runtime.postprocess), against
     the case's expected probabilities, within the bound the logits' step implies.
  2. Circuit witness == runtime, bit for bit: every conformance case; every entry of every table
     (all 2^bits input codes); ArgMax on ties (first and last index), all-equal rows and K = 1.
  3. onnxruntime (float) vs runtime on a small model using each activation; single activations
     against onnxruntime on the dequantized input within 0.5 LSB (+0.02 for float32).
  4. End to end: Gemm -> Sigmoid -> Gemm -> Softmax -> ArgMax compiles, proves and verifies; the
     proven output is the class index and agrees with onnxruntime's.
  5. Refusals name the node and the reason (16-bit tables, non-constant slope, Softmax feeding
     something else).
  6. Forged witnesses rejected (snarkjs and zkml/r1cs.py agree): wrong table entry, the
     decomposition of another input, out-of-range input, lying selector / multiplexer products;
     wrong argmax index, tie broken the wrong way, a non-one-hot selection, output off by one.
  7. Constraints per element (printed) equal the cost formula of the templates' header comments.

Run with -s to see the tables.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import zkml_runtime as rt
from circuit_harness import (O2, P, assert_accepted, assert_rejected, bits, compile_circuit,
                             no_assignment_satisfies)
from conftest import SHARED_MODELS, const, make_model, shared_model, vinfo
from onnx_conformance import node_cases, run_case, summary_line
from test_forgery import honest_model_matches
from test_ops_cnn import check_combined, combined_circuit, op_model, quantized, template_nodes, worst_lsb
from zkml import api
from zkml.errors import UnsupportedOpError
from zkml.inputs import load_input
from zkml.onnx_import import import_onnx
from zkml.ops import REGISTRY
from zkml.ops.activations import MAX_LUT_BITS
from zkml.quantize import QuantConfig, run_float
from zkml.r1cs import R1CS

INV = lambda x: pow(x, -1, P)  # noqa: E731

ACTIVATIONS = ["Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "LeakyRelu", "PRelu"]
CONFORMANCE_OPS = ACTIVATIONS + ["ArgMax"]


# =========================================================================== signal models
# The attacker's model of every signal of LutOne / ArgMaxOne (the templates' own formulas), used
# here and by the registry specs in tests/op_zoo.py.
def lut_model(pre: str, x: int, table: list[int], nbits: int, *, claim: int | None = None,
              out: int | None = None, sel_lie: int | None = None, mux_lie: int | None = None) -> dict:
    """Every signal of LutOne(nbits, table) at `pre` for input x. The attacker may decompose
    another value `claim` (its low nbits bits), force `out`, or add 1 to product sel[sel_lie] /
    mux[mux_lie]; everything downstream is recomputed by the template's formulas."""
    L, H = nbits // 2, nbits - nbits // 2
    b = bits(x if claim is None else claim, nbits)
    m = {f"{pre}.in": x % P, f"{pre}.n2b.in": x % P}
    for i, v in enumerate(b):
        m[f"{pre}.n2b.out[{i}]"] = v
    s = [1] if L == 0 else [1 - b[0], b[0]]
    for j in range(1, L):
        prods = []
        for k in range(1 << j):
            idx = (1 << j) - 2 + k
            v = (s[k] * b[j] + (1 if sel_lie == idx else 0)) % P
            m[f"{pre}.sel[{idx}]"] = v
            prods.append(v)
        s = [(s[k] - prods[k]) % P for k in range(1 << j)] + prods
    v = [sum(table[h * (1 << L) + lo] * s[lo] for lo in range(1 << L)) % P for h in range(1 << H)]
    for j in range(H):
        half = 1 << (H - 1 - j)
        prods = []
        for k in range(half):
            idx = half - 1 + k
            pv = (b[L + j] * (v[2 * k + 1] - v[2 * k]) + (1 if mux_lie == idx else 0)) % P
            m[f"{pre}.mux[{idx}]"] = pv
            prods.append(pv)
        v = [(v[2 * k] + prods[k]) % P for k in range(half)]
    m[f"{pre}.out"] = v[0] if out is None else out % P
    return m


def argmax_index(xs: list[int], last: int) -> int:
    mx = max(xs)
    return max(k for k, v in enumerate(xs) if v == mx) if last else xs.index(mx)


def argmax_model(pre: str, xs: list[int], nbits: int, last: int, *, e: list[int] | None = None,
                 out_delta: int = 0) -> dict:
    """Every signal of ArgMaxOne(K, nbits, last) at `pre`; the attacker may choose the selection
    e (any field elements) and shift the output; m, the products and the difference
    decompositions (low nbits bits of d mod p) follow the template's formulas."""
    K = len(xs)
    if e is None:
        t = argmax_index(xs, last)
        e = [int(k == t) for k in range(K)]
    e = [v % P for v in e]
    m = {f"{pre}.in[{k}]": xs[k] for k in range(K)}
    mval = 0
    for k in range(K):
        m[f"{pre}.e[{k}]"] = e[k]
        m[f"{pre}.p[{k}]"] = e[k] * xs[k] % P
        mval += e[k] * xs[k]
    for k in range(K):
        ahead = sum(e[j] for j in range(K) if (j < k if last else j > k))
        d = (mval - xs[k] - ahead) % P
        m[f"{pre}.d[{k}].in"] = d
        for i, v in enumerate(bits(d, nbits)):
            m[f"{pre}.d[{k}].out[{i}]"] = v
    m[f"{pre}.out"] = (sum(k * e[k] for k in range(K)) + out_delta) % P
    return m


# =========================================================================== helpers
def act_node(op: str, inp="x", out="y", name="act", **attrs):
    ins = [inp, "slope"] if op == "PRelu" else [inp]
    return helper.make_node(op, ins, [out], name=name, **attrs)


def slope_init(c=3):
    return [const("slope", np.array([0.1, -0.25, 1.5, 0.02][:c]).reshape(c, 1, 1))]


def single_act_model(op: str, shape=(1, 3, 2, 2), **attrs):
    inits = slope_init(shape[1]) if op == "PRelu" else []
    return op_model([act_node(op, **attrs)], list(shape), inits, opset=14)


# =========================================================================== 1. conformance
@pytest.fixture(scope="module")
def conformance(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("conformance_act")
    return {op: [run_case(c, tmp) for c in node_cases(op)] for op in CONFORMANCE_OPS}


@pytest.mark.parametrize("op", CONFORMANCE_OPS)
def test_onnx_conformance(conformance, op):
    results = conformance[op]
    assert results, f"onnx ships no single-node conformance case for {op}"
    print("\n" + summary_line(op, results))
    for r in results:
        extra = "" if r.status != "passed" else \
            f"{r.worst_lsb:.3f}/{r.tol_lsb} LSB, exact {r.exact_lsb:.3f}/{r.exact_tol} LSB"
        print(f"    {r.status:7s} {r.name} {extra}{r.reason}{'  [' + '; '.join(r.fixes) + ']' if r.fixes else ''}")
    assert not [(r.name, r.reason) for r in results if r.status != "passed"]
    # every case went through the op's own IR node (not folded away or refused)
    want = "ArgMax" if op == "ArgMax" else "Lut"
    assert all(r.ir_ops == [want] for r in results), [(r.name, r.ir_ops) for r in results]
    if op == "ArgMax":       # an index: any rounding would be a wrong class
        assert all(r.exact_lsb == 0.0 for r in results)


def test_softmax_conformance_as_postprocessing(tmp_path):
    """A final Softmax is post-processing: the circuit proves the logits (an IR with no node for it)
    and the caller applies softmax to the dequantized logits. |d softmax_i| <= max_j |d z_j| / 2
    (the softmax Jacobian's rows sum to at most 2 p_i (1 - p_i) <= 1/2 in absolute value), and
    the integer logits are within 1 step of the float ones here (one rounding, the input's), so
    the probabilities must be within scale/2. A case whose bound is >= 0.5 says nothing and is
    reported as skipped."""
    cases = node_cases("Softmax")
    assert len(cases) >= 5
    print(f"\nSoftmax     {len(cases)} cases (post-processing of the proven logits):")
    passed = 0
    for c in cases:
        r = run_case(c, tmp_path)
        g = r.graph
        assert g is not None and g.nodes == [] and g.meta["postprocess"]["op"] == "softmax", (c.name, r.reason)
        logits = rt.dequantize(g, g.outputs[0], rt.run_outputs(g, r.q_input)[0])
        probs = rt.postprocess(g, logits)
        want = np.asarray(c.data_sets[0][1][0], dtype=np.float64)
        err = float(np.abs(probs.reshape(-1) - want.reshape(-1)).max())
        bound = 0.5 * g.tensors[g.outputs[0]].scale
        if bound >= 0.5:
            print(f"    skipped {c.name}: the logits' step {2 * bound:.3g} makes the bound vacuous")
            continue
        print(f"    {'passed' if err <= bound else 'FAILED':7s} {c.name} |p - expected| {err:.4f} <= {bound:.4f}")
        assert err <= bound, (c.name, err, bound)
        passed += 1
    assert passed >= 5


def test_conformance_cases_circuit_matches_runtime(conformance):
    """Every conformance case compiled into one circuit: witness == runtime, bit for bit."""
    items, inputs = [], {}
    for op in CONFORMANCE_OPS:
        for r in conformance[op]:
            env = rt.run(r.graph, r.q_input)
            for it in template_nodes(r.graph, f"c{len(items)}"):
                items.append(it)
                inputs[it[0]] = [env[i] for i in it[1].inputs]
    assert len(items) == sum(len(v) for v in conformance.values())
    n = check_combined(items, [inputs])
    print(f"\n{len(items)} conformance nodes, {n} outputs: witness == runtime")


# =========================================================================== 2. witness == kernel
def _lut_cases(tmp: Path, rng):
    """One Lut node per activation (PRelu per channel: LutMulti), 8-bit, real quantization path."""
    out = []
    for op in ACTIVATIONS:
        attrs = {"alpha": 0.3} if op in ("LeakyRelu", "HardSigmoid") else {}
        samples = rng.normal(0, 3, (32, 1, 3, 2, 2))
        g, _, _ = quantized(single_act_model(op, **attrs), samples, tmp, name=f"{op}.onnx")
        out += template_nodes(g, op)
    return out


def test_every_table_entry_witness_equals_kernel(tmp_path):
    """All 256 input codes through every activation's circuit (12 elements x 22 input sets)."""
    rng = np.random.default_rng(0)
    items = _lut_cases(tmp_path, rng)
    assert sorted(it[2] for it in items) == ["Lut"] * 5 + ["LutMulti"]
    sets = []
    codes = np.arange(256)
    for k in range(0, 256, 12):
        sets.append({it[0]: [np.resize(np.roll(codes, -k), it[4][0].size).reshape(it[4][0].shape)]
                     for it in items})
    n = check_combined(items, sets)
    print(f"\n{len(items)} activation tables, {n} lookups: witness == kernel, every code of every table")


def test_small_bit_widths_witness_equals_kernel(tmp_path):
    """Tables over 2, 3 and 5-bit inputs (odd splits; every code of each) and 12 bits (the widest
    allowed: 0, the top code and random codes). (2 bits is the narrowest tensor zkml quantizes.)"""
    rng = np.random.default_rng(1)
    items, codes = [], {}
    for b in (2, 3, 5, MAX_LUT_BITS):
        samples = rng.normal(0, 2, (16, 1, 4))
        g, _, _ = quantized(op_model([act_node("Tanh")], [1, 4], opset=14), samples, tmp_path,
                            QuantConfig(act_bits=b), name=f"tanh{b}.onnx")
        it = template_nodes(g, f"b{b}")[0]
        assert it[1].params.in_bits == b
        items.append(it)
        codes[it[0]] = np.arange(1 << b) if b <= 5 else \
            np.concatenate([[0, (1 << b) - 1], rng.integers(0, 1 << b, 30)])
    sets = [{tag: [np.resize(np.roll(c, -4 * k), 4).reshape(1, 4)] for tag, c in codes.items()} for k in range(8)]
    n = check_combined(items, sets)
    print(f"\n{len(items)} tables (2, 3, 5, {MAX_LUT_BITS} bits): {n} lookups, witness == kernel")


def test_argmax_witness_equals_kernel_ties_and_edges(tmp_path):
    """ArgMax over each axis, first and last index, on ties, all-equal rows, 0 and max values, K = 1."""
    rng = np.random.default_rng(2)
    items = []
    specs = [((1, 3, 4), dict(axis=1, keepdims=1)), ((1, 3, 4), dict(axis=2, keepdims=0, select_last_index=1)),
             ((2, 5), dict(axis=1, select_last_index=0)), ((2, 5), dict(axis=0, select_last_index=1)),
             ((1, 4, 1), dict(axis=2))]
    for k, (shape, attrs) in enumerate(specs):
        m = op_model([helper.make_node("ArgMax", ["x"], ["y"], name="am", **attrs)], list(shape))
        g, _, _ = quantized(m, rng.normal(0, 1, (16, *shape)), tmp_path, QuantConfig(act_bits=3), name=f"a{k}.onnx")
        items += template_nodes(g, f"am{k}")
    sets = []
    for j in range(12):
        s = {}
        for it in items:
            shape = it[4][0].shape
            if j == 0:
                x = np.zeros(shape, dtype=np.int64)              # every row a tie
            elif j == 1:
                x = np.full(shape, 7, dtype=np.int64)
            else:
                x = rng.integers(0, 8, shape)                   # 3 bits: many ties
            s[it[0]] = [x]
        sets.append(s)
    n = check_combined(items, sets)
    print(f"\n{len(items)} ArgMax nodes, {n} indices: witness == kernel (3-bit inputs, ties everywhere)")


def test_argmax_kernel_is_onnx_tie_rule():
    """The kernel against a plain-Python statement of ONNX's rule (first / last maximal index)."""
    rng = np.random.default_rng(3)
    for last in (0, 1):
        p = REGISTRY["ArgMax"].Params(outer=2, k=5, inner=3, bits=2, last=last)
        for _ in range(50):
            x = rng.integers(0, 4, (2, 5, 3))
            got = REGISTRY["ArgMax"].kernel(p, x)
            for o in range(2):
                for i in range(3):
                    assert got[o, i] == argmax_index([int(v) for v in x[o, :, i]], last)


# =========================================================================== 3. float cross-checks
def test_single_activation_within_half_lsb_of_onnxruntime(tmp_path):
    """Each table entry is the rounded float function: against onnxruntime on the dequantized
    input, clipped to the output's representable range (every tensor saturates at its calibrated
    range), every output is within 0.5 LSB + 0.02 (onnxruntime computes in float32)."""
    rng = np.random.default_rng(4)
    for op in ACTIVATIONS:
        for attrs in ({}, {"alpha": 0.5} if op in ("LeakyRelu", "HardSigmoid") else None):
            if attrs is None:
                continue
            samples = rng.normal(0, 3, (32, 1, 3, 2, 2))
            g, normalized, _ = quantized(single_act_model(op, **attrs), samples, tmp_path, name=f"s{op}.onnx")
            t = g.tensors["y"]
            qs = [rt.quantize_input(g, x)[0] for x in samples]
            ref = run_float(normalized, np.stack([rt.dequantize(g, "x", q) for q in qs]), ["y"])["y"]
            ref = np.clip(ref, t.scale * -t.zero_point, t.scale * (t.qmax - t.zero_point))
            got = np.stack([rt.dequantize(g, "y", rt.run_outputs(g, q)[0]) for q in qs])
            err = float(np.abs(got - ref).max() / t.scale)
            print(f"\n{op} {attrs}: {err:.3f} LSB against onnxruntime on the dequantized input")
            assert err <= 0.52, (op, attrs, err)


def mlp_with(op: str, seed=0, n_in=8, hidden=6, n_out=4):
    rng = np.random.default_rng(seed)
    inits = [const("w0", rng.normal(0, 0.8, (hidden, n_in))), const("b0", rng.normal(0, 0.3, hidden)),
             const("w1", rng.normal(0, 0.8, (n_out, hidden))), const("b1", rng.normal(0, 0.3, n_out))]
    if op == "PRelu":
        inits.append(const("slope", rng.uniform(-0.5, 0.5, hidden)))
    nodes = [helper.make_node("Gemm", ["x", "w0", "b0"], ["h"], name="fc0", transB=1), act_node(op, "h", "a"),
             helper.make_node("Gemm", ["a", "w1", "b1"], ["y"], name="fc1", transB=1)]
    return make_model(nodes, [vinfo("x", [1, n_in])], [vinfo("y", [1, n_out])], inits, opset=14)


@pytest.mark.parametrize("op", ACTIVATIONS)
def test_model_with_activation_within_tolerance_of_onnxruntime(tmp_path, op):
    """Gemm -> activation -> Gemm: runtime vs onnxruntime within 1 + (requantizing nodes) LSB, the
    budget of test_runtime_vs_onnxruntime (the table rounds once, like a requantization)."""
    rng = np.random.default_rng(5)
    samples = rng.normal(0, 1, (48, 1, 8))
    g, normalized, _ = quantized(mlp_with(op), samples, tmp_path)
    assert [n.op for n in g.nodes] == ["Dense", "Lut", "Dense"]
    tol = 1 + 3
    err = worst_lsb(g, normalized, samples)
    print(f"\n{op}: worst {err:.3f} LSB (tolerance {tol})")
    assert err <= tol


# =========================================================================== 4. end to end
def classifier(tail: str, seed=1, n_in=6, n_cls=5):
    """Gemm -> Sigmoid -> Gemm, then tail: 'softmax_argmax', 'argmax' or 'softmax'."""
    rng = np.random.default_rng(seed)
    inits = [const("w0", rng.normal(0, 1, (8, n_in))), const("b0", rng.normal(0, 0.3, 8)),
             const("w1", rng.normal(0, 1.5, (n_cls, 8))), const("b1", rng.normal(0, 0.3, n_cls))]
    nodes = [helper.make_node("Gemm", ["x", "w0", "b0"], ["h"], name="fc0", transB=1),
             helper.make_node("Sigmoid", ["h"], ["a"], name="sig"),
             helper.make_node("Gemm", ["a", "w1", "b1"], ["z"], name="fc1", transB=1)]
    out = vinfo("z", [1, n_cls])
    if "softmax" in tail:
        nodes.append(helper.make_node("Softmax", ["z"], ["p"], name="softmax", axis=1))
        out = vinfo("p", [1, n_cls])
    if "argmax" in tail:
        nodes.append(helper.make_node("ArgMax", ["p" if "softmax" in tail else "z"], ["cls"], name="argmax",
                                      axis=1, keepdims=0))
        out = helper.make_tensor_value_info("cls", TensorProto.INT64, [1])
    return make_model(nodes, [vinfo("x", [1, n_in])], [out], inits)


def test_softmax_argmax_reads_the_logits_and_final_softmax_stays_postprocess(tmp_path):
    for tail, ops, post in (("softmax_argmax", ["Dense", "Lut", "Dense", "ArgMax"], None),
                            ("argmax", ["Dense", "Lut", "Dense", "ArgMax"], None),
                            ("softmax", ["Dense", "Lut", "Dense", "Softmax"], "softmax")):   # quantize makes it meta
        onnx.save(classifier(tail), tmp_path / f"{tail}.onnx")
        fg, _ = import_onnx(tmp_path / f"{tail}.onnx")
        assert [n.op for n in fg.nodes] == ops, (tail, [n.op for n in fg.nodes])
        if tail == "softmax_argmax":
            am = fg.nodes[-1]
            assert am.inputs == ["z"] and any("Softmax 'softmax'" in s for s in am.onnx), am
        g, _, _ = quantized(classifier(tail), np.random.default_rng(0).normal(0, 1, (32, 1, 6)), tmp_path,
                            name=f"q{tail}.onnx")
        assert (g.meta.get("postprocess") or {}).get("op") == post
        assert [n.op for n in g.nodes] == ["Dense", "Lut", "Dense", "ArgMax"][:len(g.nodes)] and len(g.nodes) >= 3


def test_argmax_agrees_with_onnxruntime_on_clear_margins(tmp_path):
    """The quantized class equals onnxruntime's wherever the top two float logits are more than the
    runtime's logit error apart (tolerance: 4 output steps, twice the Dense -> Lut -> Dense budget);
    near-ties may legitimately go either way."""
    model = classifier("softmax_argmax")
    rng = np.random.default_rng(6)
    samples = rng.normal(0, 1, (200, 1, 6))
    g, normalized, _ = quantized(model, samples[:64], tmp_path)
    z = run_float(normalized, samples, ["z", "cls"])
    scale = g.tensors["z"].scale
    agree = clear = 0
    for x, logits, want in zip(samples, z["z"], z["cls"]):
        got = int(rt.run_outputs(g, rt.quantize_input(g, x)[0])[0].reshape(-1)[0])
        top2 = np.sort(logits.reshape(-1))[-2:]
        if top2[1] - top2[0] > 4 * scale:
            clear += 1
            assert got == int(want.reshape(-1)[0]), (x, logits, got)
        agree += got == int(want.reshape(-1)[0])
    print(f"\nArgMax: {agree}/{len(samples)} agree with onnxruntime; all {clear} with a clear margin agree")
    assert clear >= 150


def test_classifier_with_argmax_compiles_proves_and_verifies(tmp_path):
    onnx.save(classifier("softmax_argmax"), tmp_path / "cls.onnx")
    rng = np.random.default_rng(7)
    np.save(tmp_path / "cal.npy", rng.normal(0, 1, (64, 1, 6)))
    x = rng.normal(0, 1, (1, 6))
    (tmp_path / "input.json").write_text(json.dumps({"input_data": [x.reshape(-1).tolist()]}))
    meta = api.compile(tmp_path / "cls.onnx", tmp_path / "build", calibration=tmp_path / "cal.npy")
    run = api.run(tmp_path / "build", tmp_path / "input.json")
    assert run.reference is not None and run.q_outputs == [int(run.reference[0])], run   # the class index
    res = api.prove(tmp_path / "build", tmp_path / "input.json")
    assert res["outputs"] == run.q_outputs
    v = api.verify(tmp_path / "build")
    assert v.valid and v.snarkjs and v.python
    src = (tmp_path / "build" / "main.circom").read_text()
    assert "ArgMax(" in src and "Lut(" in src
    print(f"\nGemm-Sigmoid-Gemm-Softmax-ArgMax: {meta['circuit']['constraints']} constraints, "
          f"class {run.q_outputs[0]}, prove {res['seconds']}")


SHARED = ["1l_sigmoid", "1l_tanh", "1l_leakyrelu", "1l_prelu"]


@pytest.mark.parametrize("name", SHARED)
def test_shared_activation_model_compiles_proves_and_verifies(tmp_path, name):
    """The shared models with these activations: calibrated on their input plus noise, within
    the budget of onnxruntime (1 + requantizing nodes, the table counting as one), proven and
    verified by snarkjs and the Python verifier."""
    path = shared_model(name)
    fg, _ = import_onnx(path)
    x = load_input(SHARED_MODELS / name / "input.json", fg.shapes[fg.inputs[0]])
    rng = np.random.default_rng(0)
    np.save(tmp_path / "cal.npy", np.concatenate([x[None], x[None] + rng.normal(0, 0.5, (63, *x.shape))]))
    build = tmp_path / "build"
    meta = api.compile(path, build, calibration=tmp_path / "cal.npy")
    g = api.load_graph(build)
    assert "Lut" in [n.op for n in g.nodes], [n.op for n in g.nodes]
    run = api.run(build, SHARED_MODELS / name / "input.json")
    tol = 1 + sum(1 for n in g.nodes if n.op in ("Dense", "Add", "Conv", "AvgPool", "Lut"))
    assert run.max_diff_lsb is not None and run.max_diff_lsb <= tol, run
    res = api.prove(build, SHARED_MODELS / name / "input.json")
    assert res["outputs"] == run.q_outputs
    v = api.verify(build)
    assert v.valid and v.snarkjs and v.python
    print(f"\n{name}: {[n.op for n in g.nodes]}, {run.max_diff_lsb:.3f}/{tol} LSB, "
          f"{meta['circuit']['constraints']} constraints, prove {res['seconds']}")


# =========================================================================== 5. refusals
def test_refusals_name_node_and_reason(tmp_path):
    rng = np.random.default_rng(8)
    # a table over 16-bit inputs
    with pytest.raises(UnsupportedOpError, match=r"Sigmoid.*node 'act'.*16 bits.*at most 12"):
        quantized(single_act_model("Sigmoid"), rng.normal(0, 1, (8, 1, 3, 2, 2)), tmp_path, QuantConfig(act_bits=16))
    # PRelu whose slope is an activation
    m = make_model([helper.make_node("PRelu", ["x", "x"], ["y"], name="pr")], [vinfo("x", [1, 4])],
                   [vinfo("y", [1, 4])])
    onnx.save(m, tmp_path / "pr.onnx")
    with pytest.raises(UnsupportedOpError, match=r"PRelu.*'pr'.*slope must be a constant"):
        import_onnx(tmp_path / "pr.onnx")
    # Softmax whose probabilities feed a layer (not an ArgMax over its axis)
    m = make_model([helper.make_node("Softmax", ["x"], ["p"], name="sm", axis=1),
                    helper.make_node("Relu", ["p"], ["y"], name="r")], [vinfo("x", [1, 4])], [vinfo("y", [1, 4])])
    onnx.save(m, tmp_path / "sm.onnx")
    with pytest.raises(UnsupportedOpError, match=r"Softmax.*'sm'.*only as the last node"):
        import_onnx(tmp_path / "sm.onnx")
    # an ArgMax over another axis than the Softmax's does not read through it
    m = make_model([helper.make_node("Softmax", ["x"], ["p"], name="sm", axis=1),
                    helper.make_node("ArgMax", ["p"], ["y"], name="am", axis=0)], [vinfo("x", [2, 4])],
                   [helper.make_tensor_value_info("y", TensorProto.INT64, [1, 4])])
    onnx.save(m, tmp_path / "sm0.onnx")
    with pytest.raises(UnsupportedOpError, match=r"Softmax.*'sm'"):
        import_onnx(tmp_path / "sm0.onnx")


def test_cli_refuses_wide_table_without_traceback(tmp_path):
    import subprocess
    import sys
    onnx.save(single_act_model("Tanh"), tmp_path / "t.onnx")
    np.save(tmp_path / "cal.npy", np.random.default_rng(0).normal(0, 1, (8, 1, 3, 2, 2)))
    p = subprocess.run([sys.executable, "-m", "zkml.cli", "compile", str(tmp_path / "t.onnx"), "--calibration",
                        str(tmp_path / "cal.npy"), "--bits", "14", "-o", str(tmp_path / "b")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and "Traceback" not in p.stderr, p.stderr
    assert "Tanh" in p.stderr + p.stdout and "14 bits" in p.stderr + p.stdout, p.stderr


# =========================================================================== 6. forgeries
@pytest.fixture(scope="module")
def lut_circuit(tmp_path_factory):
    """Sigmoid (one table, 8 bits) and PRelu per channel (LutMulti), 12 elements each."""
    tmp = tmp_path_factory.mktemp("lut_forgery")
    rng = np.random.default_rng(9)
    items = []
    for op in ("Sigmoid", "PRelu"):
        g, _, _ = quantized(single_act_model(op), rng.normal(0, 3, (32, 1, 3, 2, 2)), tmp, name=f"{op}.onnx")
        items += template_nodes(g, op.lower())
    items = [(op.lower(), *it[1:]) for op, it in zip(("Sigmoid", "PRelu"), items)]   # tag = signal prefix
    c = compile_circuit(combined_circuit(items), O2)
    xs = {"sigmoid": [0, 1, 127, 128, 255, 3, 77, 200, 64, 191, 100, 254],
          "prelu": [255, 0, 128, 5, 250, 17, 90, 129, 33, 66, 99, 222]}
    w = c.witness({f"{t}_in": v for t, v in xs.items()})
    assert_accepted(c, w)
    return c, w, {it[0]: it for it in items}, xs


def _lut_forge(c, w, it, tag, i, x, **lie):
    node = it[1]
    p = node.params
    table = p.tables[0 if p.cls is None else p.cls[i]]
    pre = f"main.{tag}.lut[{i}]"
    honest = lut_model(pre, x, table, p.in_bits)
    honest_model_matches(c, w, honest)
    m = lut_model(pre, x, table, p.in_bits, **lie)
    m[f"main.{tag}_out[{i}]"] = m[f"{pre}.out"]
    m[f"main.{tag}.out[{i}]"] = m[f"{pre}.out"]
    return pre, table, m


@pytest.mark.parametrize("tag", ["sigmoid", "prelu"])
def test_lut_forged_wrong_table_entry(lut_circuit, tag):
    """out = T[x] +- 1 or another entry T[x'] (every other hint honest): the output's linear
    constraint (out = the multiplexer's last value) fails."""
    c, w, items, xs = lut_circuit
    tried = 0
    for i, x in enumerate(xs[tag]):
        for delta in (1, -1):
            pre, table, m = _lut_forge(c, w, items[tag], tag, i, x, out=None)
            m = dict(m)
            y = (m[f"{pre}.out"] + delta) % P
            for k in (f"{pre}.out", f"main.{tag}_out[{i}]", f"main.{tag}.out[{i}]"):
                m[k] = y
            assert_rejected(c, c.tamper(w, m, skip_eliminated=True), caught_in=(f"main.{tag}_out[{i}]", pre))
            tried += 1
        other = next(v for v in table if v != table[x])
        _, _, m = _lut_forge(c, w, items[tag], tag, i, x, out=other)
        assert_rejected(c, c.tamper(w, m, skip_eliminated=True), caught_in=(f"main.{tag}_out[{i}]", pre))
        tried += 1
    assert tried == 3 * len(xs[tag])


@pytest.mark.parametrize("tag", ["sigmoid", "prelu"])
def test_lut_forged_decomposition_of_another_input(lut_circuit, tag):
    """The bits, selectors, multiplexer and output all of another input x' (so out = T[x'], a
    consistent lie): only in = sum bits * 2^i can catch it, and it does."""
    c, w, items, xs = lut_circuit
    for i, x in enumerate(xs[tag][:6]):
        table = items[tag][1].params.tables[0 if items[tag][1].params.cls is None else items[tag][1].params.cls[i]]
        claim = next(v for v in ((x + d) % 256 for d in (1, 2, 3, 100, 128)) if table[v] != table[x])
        pre, _, m = _lut_forge(c, w, items[tag], tag, i, x, claim=claim)
        assert_rejected(c, c.tamper(w, m, skip_eliminated=True), caught_in=(pre, f"main.{tag}_in[{i}]"))


def test_lut_forged_out_of_range_input(lut_circuit):
    """A private input >= 2^8 (or field-negative) with its low 8 bits in the decomposition: the
    output would be T[x mod 256]. Rejected, and no choice of the 8 bits satisfies the R1CS."""
    c, w, items, xs = lut_circuit
    tag, it = "sigmoid", items["sigmoid"]
    table = it[1].params.tables[0]
    for i, x in ((0, 0), (4, 255), (6, 77)):
        for v in (x + 256, x + (1 << 200), P - 1, P - 256 + x):
            pre = f"main.{tag}.lut[{i}]"
            m = lut_model(pre, v, table, 8)
            m[f"main.{tag}_in[{i}]"] = v
            m[f"main.{tag}.in[{i}]"] = v
            m[f"main.{tag}_out[{i}]"] = m[f"main.{tag}.out[{i}]"] = m[f"{pre}.out"]
            bad = c.tamper(w, m, skip_eliminated=True)
            assert_rejected(c, bad, caught_in=(pre, f"main.{tag}_in[{i}]"))
            free = [f"{pre}.n2b.out[{b}]" for b in range(8)]
            assert no_assignment_satisfies(c, bad, free)


@pytest.mark.parametrize("tag", ["sigmoid", "prelu"])
def test_lut_forged_selector_and_multiplexer_products(lut_circuit, tag):
    """One product signal (a low-bit selector or a multiplexer step) plus one, everything after it
    recomputed: that product's constraint fails. A multiplexer step between two table rows that
    differ by a constant (Sigmoid's saturated rows) is linear: --O2 substitutes it, the signal is
    not in the witness and the lie cannot even be written (counted apart)."""
    c, w, items, xs = lut_circuit
    p = items[tag][1].params
    n_sel, n_mux = (1 << (p.in_bits // 2)) - 2, (1 << (p.in_bits - p.in_bits // 2)) - 1
    tried = inexpressible = 0
    for i, x in enumerate(xs[tag][:4]):
        lies = [("sel", dict(sel_lie=k)) for k in range(n_sel)] + [("mux", dict(mux_lie=k)) for k in range(n_mux)]
        for kind, lie in lies:
            pre, _, m = _lut_forge(c, w, items[tag], tag, i, x, **lie)
            if not c.survives(f"{pre}.{kind}[{next(iter(lie.values()))}]"):
                inexpressible += 1
                continue
            bad = c.tamper(w, m, skip_eliminated=True)
            assert bad != w
            assert_rejected(c, bad, caught_in=(pre,))
            tried += 1
    assert tried + inexpressible == 4 * (n_sel + n_mux) == 4 * 29 and tried >= 80
    print(f"\n{tag}: {tried} product lies rejected, {inexpressible} products substituted by --O2")


@pytest.fixture(scope="module")
def argmax_circuit(tmp_path_factory):
    """ArgMax over 5 values (8 bits), first index and last index, on rows with and without ties."""
    tmp = tmp_path_factory.mktemp("argmax_forgery")
    rng = np.random.default_rng(10)
    items = []
    for last in (0, 1):
        m = op_model([helper.make_node("ArgMax", ["x"], ["y"], name="am", axis=1, select_last_index=last)], [4, 5])
        g, _, _ = quantized(m, rng.normal(0, 1, (16, 4, 5)), tmp, name=f"am{last}.onnx")
        items += [(f"last{last}", *it[1:]) for it in template_nodes(g, "am")]
    c = compile_circuit(combined_circuit(items), O2)
    rows = [[3, 9, 1, 9, 2], [200, 7, 7, 200, 200], [0, 0, 0, 0, 0], [255, 254, 1, 0, 254]]
    w = c.witness({f"{it[0]}_in": [v for r in rows for v in r] for it in items})
    assert_accepted(c, w)
    return c, w, rows


def _am_forge(c, w, last, g, xs, **lie):
    tag = f"last{last}"
    pre = f"main.{tag}.am[{g}]"
    honest_model_matches(c, w, argmax_model(pre, xs, 8, last))
    m = argmax_model(pre, xs, 8, last, **lie)
    m[f"main.{tag}_out[{g}]"] = m[f"main.{tag}.out[{g}]"] = m[f"{pre}.out"]
    return pre, c.tamper(w, m, skip_eliminated=True)


@pytest.mark.parametrize("last", [0, 1])
def test_argmax_forged_wrong_index(argmax_circuit, last):
    """Select a non-maximal element: its difference to the true max is negative, which no 8-bit
    decomposition reaches (every choice of its bits enumerated)."""
    c, w, rows = argmax_circuit
    for g, xs in enumerate(rows):
        for j in range(5):
            if xs[j] == max(xs):
                continue
            pre, bad = _am_forge(c, w, last, g, xs, e=[int(k == j) for k in range(5)])
            assert_rejected(c, bad, caught_in=(pre,))
            t = argmax_index(xs, last)
            assert no_assignment_satisfies(c, bad, [f"{pre}.d[{t}].out[{b}]" for b in range(8)])


@pytest.mark.parametrize("last", [0, 1])
def test_argmax_forged_tie_broken_the_wrong_way(argmax_circuit, last):
    """Rows with a tie: selecting any other maximal index than ONNX's (first, or last with
    select_last_index) makes the true index's difference -1: rejected, for every choice of bits."""
    c, w, rows = argmax_circuit
    tried = 0
    for g, xs in enumerate(rows):
        t = argmax_index(xs, last)
        for j in range(5):
            if j == t or xs[j] != max(xs):
                continue
            pre, bad = _am_forge(c, w, last, g, xs, e=[int(k == j) for k in range(5)])
            assert_rejected(c, bad, caught_in=(pre,))
            assert no_assignment_satisfies(c, bad, [f"{pre}.d[{t}].out[{b}]" for b in range(8)])
            tried += 1
    assert tried == 1 + 2 + 4       # the ties of rows 0, 1 and 2


@pytest.mark.parametrize("last", [0, 1])
def test_argmax_forged_selection_not_one_hot(argmax_circuit, last):
    """Selections summing to 1 that are not one-hot (2, -1; 1/2, 1/2; 1, 1, -1) to move the output
    index: a boolean constraint fails."""
    c, w, rows = argmax_circuit
    half = INV(2)
    for g, xs in enumerate(rows):
        t = argmax_index(xs, last)
        j = (t + 1) % 5
        k = (t + 2) % 5
        for e in ([2 if i == t else -1 if i == j else 0 for i in range(5)],
                  [half if i in (t, j) else 0 for i in range(5)],
                  [1 if i in (t, j) else -1 if i == k else 0 for i in range(5)]):
            pre, bad = _am_forge(c, w, last, g, xs, e=e)
            assert_rejected(c, bad, caught_in=(pre,))


@pytest.mark.parametrize("last", [0, 1])
def test_argmax_forged_output_off_by_one(argmax_circuit, last):
    c, w, rows = argmax_circuit
    for g, xs in enumerate(rows):
        for d in (1, -1):
            pre, bad = _am_forge(c, w, last, g, xs, out_delta=d)
            assert_rejected(c, bad, caught_in=(pre, f"main.last{last}_out[{g}]"))


# =========================================================================== 7. cost
def _constraints(source: str) -> int:
    return R1CS(compile_circuit(source, O2).r1cs).n_constraints


LUT_ONE = """pragma circom 2.1.0;
include "lut.circom";
function tab() {{ var t[{size}]; for (var i = 0; i < {size}; i++) {{ t[i] = (i * i * 7 + 3 * i) % 251; }} return t; }}
template Main() {{ signal input in; signal output out; component l = LutOne({bits}, tab()); l.in <== in; out <== l.out; }}
component main = Main();
"""
ARGMAX_ONE = """pragma circom 2.1.0;
include "argmax.circom";
template Main() {{ signal input in[{k}]; signal output out; component a = ArgMaxOne({k}, {bits}, 0); a.in <== in;
out <== a.out; }}
component main = Main();
"""


def test_constraint_cost_matches_the_documented_formula():
    """LutOne: BITS + 2^L + 2^H - 3 (L = BITS \\ 2, H = BITS - L) for a table whose adjacent rows
    differ by more than a constant (a multiplexer step with a constant difference is linear and
    --O2 solves it away, so this is an upper bound); ArgMaxOne: K * (BITS + 2)."""
    print("\nconstraints per element (circom --O2):")
    for b in (2, 4, 8, 10, 12):
        L, H = b // 2, b - b // 2
        n = _constraints(LUT_ONE.format(size=1 << b, bits=b))
        print(f"  LutOne   BITS={b:2d}: {n:4d}  (formula BITS + 2^L + 2^H - 3 = {b + (1 << L) + (1 << H) - 3})")
        assert n == b + (1 << L) + (1 << H) - 3
    for k, b in ((2, 8), (5, 8), (10, 8), (10, 4)):
        n = _constraints(ARGMAX_ONE.format(k=k, bits=b))
        # K booleans, K products, K decompositions of BITS booleans; the sum-to-one, the output and
        # the K recompositions are linear: --O2 substitutes them away
        print(f"  ArgMaxOne K={k:2d} BITS={b}: {n:4d}  (formula K * (BITS + 2) = {k * (b + 2)})")
        assert n == k * (b + 2)
