"""CNN operators (Conv, BatchNormalization, MaxPool, AveragePool, GlobalAveragePool,
GlobalMaxPool, Pad, Clip/ReLU6, Transpose, Squeeze, Unsqueeze, Concat, Flatten):

  1. ONNX's own conformance cases (tests/onnx_conformance.py) through import -> calibrate ->
     quantize -> integer runtime, per op passed / skipped (with the reason) / failed (none);
     and the circuit witness of every small case equals the runtime, bit for bit.
  2. Template witness == integer kernel for every new template (Conv2D with groups, depthwise,
     dilations, strides, asymmetric pads, 1-D, fused Relu/Clip, BatchNormalization lowered to a
     depthwise 1x1 Conv; MaxPool2D; AvgPool2D; ClampQ; IndexMap; Concat), parameters from the
     real quantization path, several inputs per compiled circuit.
  3. Import fusions: Conv+BatchNormalization(+Relu), Gemm+BatchNormalization, Conv+Add(bias),
     Conv+Clip(ReLU6), standalone BatchNormalization, Clip(0.5, 6) left standalone.
  4. Models: a LeNet-like CNN built here and the shared CNN models run within tolerance of
     onnxruntime and compile -> prove -> verify through zkml.api.
  5. Forged witnesses rejected: MaxPool (a lying comparator = wrong max index, a value not in
     the window, output off by one) and Conv's requantization (q+1 / r-2^SHIFT, q-1 / r+2^SHIFT).

Run with -s to see the conformance table.
"""
from __future__ import annotations

import collections
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper, shape_inference

import zkml_runtime as rt
from circuit_harness import (O1, O2, P, assert_accepted, assert_rejected, compile_circuit,
                             no_assignment_satisfies)
from conftest import SHARED_MODELS, const, shared_model, vinfo
from onnx_conformance import case_line, node_cases, run_case, summary_line
from test_forgery import check_covers, honest_model_matches, ge_bit, requant_model
from zkml import api
from zkml.emit import _circom_value
from zkml.errors import UnsupportedOpError
from zkml.inputs import load_input
from zkml.ir import Graph, verify
from zkml.onnx_import import import_onnx
from zkml.ops import REGISTRY
from zkml.quantize import QuantConfig, calibrate, quantize, run_float


# =========================================================================== helpers
def op_model(nodes, x_shape, inits=(), opset=13) -> onnx.ModelProto:
    """A model with input 'x'; the graph output is the last node's output, shape inferred."""
    g = helper.make_graph(nodes, "g", [vinfo("x", x_shape)], [], list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    out = nodes[-1].output[0]
    inferred = shape_inference.infer_shapes(m, strict_mode=True)
    vi = next(v for v in inferred.graph.value_info if v.name == out)
    m.graph.output.append(vi)
    onnx.checker.check_model(m)
    return m


def quantized(model, samples, tmp: Path, cfg: QuantConfig | None = None, name="m.onnx"):
    path = tmp / name
    onnx.save(model, path)
    fg, normalized = import_onnx(path)
    g = quantize(fg, calibrate(fg, normalized, samples), cfg or QuantConfig())
    return g, normalized, path


def worst_lsb(g, normalized, samples, dequantized_input=False) -> float:
    """Worst |integer runtime (dequantized) - onnxruntime| in LSBs of the output. With
    dequantized_input, onnxruntime runs on the dequantized integer input: this removes the
    input's rounding, which a narrow output range (e.g. after a Clip) magnifies into many
    output LSBs through the layer's gain."""
    out = g.outputs[0]
    qs = [rt.quantize_input(g, x)[0] for x in samples]
    if dequantized_input:
        samples = np.stack([rt.dequantize(g, g.inputs[0], q) for q in qs])
    ref = run_float(normalized, samples, [out])[out]
    worst = 0.0
    for q, r in zip(qs, ref):
        y = rt.dequantize(g, out, rt.run_outputs(g, q)[0])
        worst = max(worst, float(np.abs(y - r).max() / g.tensors[out].scale))
    return worst


def tolerance(g) -> int:
    """1 + (requantizing nodes): the budget of test_runtime_vs_onnxruntime."""
    return 1 + sum(1 for n in g.nodes if n.op in ("Dense", "Add", "Conv", "AvgPool")
                   or (n.op == "Concat" and not all(n.params.ident)))


def template_nodes(g, tag: str):
    """(tag, node, template, args, ins, out, template file) for every IR node with a template."""
    bounds = verify(g)
    found = []
    for k, n in enumerate(g.nodes):
        op = REGISTRY[n.op]
        ins = [g.tensors[i] for i in n.inputs]
        out = g.tensors[n.output]
        spec = op.circom(n, ins, out, bounds[n.name])
        if spec is not None:
            found.append((f"{tag}_{k}", n, spec[0], spec[1], ins, out, op.template_file))
    return found


def combined_circuit(items) -> str:
    """One main component instantiating every (tag, node, template, args, ins, out, file) with
    its own input ports (named as zkml's emitter names them) and output array."""
    includes = sorted({it[6] for it in items})
    funcs, body = [], []
    for tag, node, template, args, ins, out, _ in items:
        rendered = []
        for pname, v in args:
            if isinstance(v, (list, tuple)):
                funcs.append(f"function {tag}_{pname}() {{\n    return {_circom_value(v)};\n}}\n")
                rendered.append(f"{tag}_{pname}()")
            else:
                rendered.append(f"{_circom_value(v)}")
        ports = ["in"] if len(ins) == 1 else ["a", "b", "c", "d"][:len(ins)]
        for p, t in zip(ports, ins):
            body.append(f"    signal input {tag}_{p}[{t.size}];")
        body.append(f"    signal output {tag}_out[{out.size}];")
        body.append(f"    component {tag} = {template}({', '.join(rendered)});")
        for p in ports:
            body.append(f"    {tag}.{p} <== {tag}_{p};")
        body.append(f"    {tag}_out <== {tag}.out;")
    inc = "".join(f'include "{f}";\n' for f in includes)
    return (f"pragma circom 2.1.0;\n{inc}\n{''.join(funcs)}\ntemplate Main() {{\n" + "\n".join(body)
            + "\n}\n\ncomponent main = Main();\n")


def check_combined(items, input_sets) -> int:
    """Compile `items` into one circuit; for each input set {tag: [arrays]} compare the witness
    outputs with each node's kernel. Returns the number of values compared."""
    circuit = compile_circuit(combined_circuit(items))
    compared = 0
    for inputs in input_sets:
        feed = {}
        for tag, node, template, args, ins, out, _ in items:
            ports = ["in"] if len(ins) == 1 else ["a", "b", "c", "d"][:len(ins)]
            for p, arr in zip(ports, inputs[tag]):
                feed[f"{tag}_{p}"] = [int(v) for v in np.asarray(arr).reshape(-1)]
        w = circuit.witness(feed)
        for tag, node, template, args, ins, out, _ in items:
            want = np.asarray(REGISTRY[node.op].kernel(node.params, *inputs[tag])).reshape(-1)
            got = [circuit.value(w, f"main.{tag}_out[{i}]") for i in range(out.size)]
            bad = [(i, g_, int(k)) for i, (g_, k) in enumerate(zip(got, want)) if g_ != int(k)]
            assert not bad, (f"{template} ({node.name}, {node.onnx}) witness != kernel at (index, witness, "
                             f"kernel) {bad[:6]}")
            compared += out.size
    return compared


# =========================================================================== 1. conformance
CONFORMANCE_OPS = ["Conv", "BatchNormalization", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
                   "Pad", "Clip", "Transpose", "Squeeze", "Unsqueeze", "Concat", "Flatten"]
# every case zkml skips, with (a fragment of) the reason it must give
EXPECTED_SKIPS = {
    "test_batchnorm_example_training_mode": "3 outputs",
    "test_batchnorm_epsilon_training_mode": "3 outputs",
    "test_maxpool_with_argmax_2d_precomputed_pads": "2 outputs",
    "test_maxpool_with_argmax_2d_precomputed_strides": "2 outputs",
    "test_maxpool_3d_default": "only 1-D and 2-D windows",
    "test_maxpool_3d_dilations": "only 1-D and 2-D windows",
    "test_maxpool_3d_dilations_use_ref_impl": "only 1-D and 2-D windows",
    "test_maxpool_3d_dilations_use_ref_impl_large": "only 1-D and 2-D windows",
    "test_averagepool_3d_default": "only 1-D and 2-D windows",
    "test_averagepool_3d_dilations_small": "only 1-D and 2-D windows",
    "test_averagepool_3d_dilations_large_count_include_pad_is_0_ceil_mode_is_True": "only 1-D and 2-D windows",
    "test_averagepool_3d_dilations_large_count_include_pad_is_0_ceil_mode_is_False": "only 1-D and 2-D windows",
    "test_averagepool_3d_dilations_large_count_include_pad_is_1_ceil_mode_is_True": "only 1-D and 2-D windows",
    "test_averagepool_3d_dilations_large_count_include_pad_is_1_ceil_mode_is_False": "only 1-D and 2-D windows",
}


@pytest.fixture(scope="module")
def conformance(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("conformance")
    return {op: [run_case(c, tmp) for c in node_cases(op)] for op in CONFORMANCE_OPS}


@pytest.mark.parametrize("op", CONFORMANCE_OPS)
def test_onnx_conformance(conformance, op):
    results = conformance[op]
    assert results, f"onnx ships no single-node conformance case for {op}"
    print("\n" + summary_line(op, results))
    for r in results:
        print(case_line(r))
    failed = [(r.name, r.reason) for r in results if r.status == "failed"]
    assert not failed, failed
    for r in results:
        if r.status == "skipped":
            assert r.name in EXPECTED_SKIPS, f"unexpected skip {r.name}: {r.reason}"
            assert EXPECTED_SKIPS[r.name] in r.reason, (r.name, r.reason)
        else:
            assert r.name not in EXPECTED_SKIPS, f"{r.name} now passes: update EXPECTED_SKIPS"


def test_onnx_conformance_summary(conformance):
    print("\nONNX conformance (single-node cases of onnx.backend.test.case.node):")
    total = collections.Counter()
    for op in CONFORMANCE_OPS:
        print("  " + summary_line(op, conformance[op]))
        total.update(r.status for r in conformance[op])
    print(f"  {'total':18s} {sum(total.values()):3d} cases: {total['passed']:3d} passed {total['skipped']:3d} "
          f"skipped {total['failed']:3d} failed")
    reasons = collections.Counter(r.reason.split(": ")[-1] for op in CONFORMANCE_OPS
                                  for r in conformance[op] if r.status == "skipped")
    for reason, n in reasons.items():
        print(f"  skipped x{n}: {reason}")
    assert total["failed"] == 0


MAX_CASE_OUTPUTS = 300     # larger cases (the 2-D pools over 32x32 inputs) are left to the runtime


def test_conformance_cases_circuit_matches_runtime(conformance):
    """Every passed case with a template and at most MAX_CASE_OUTPUTS outputs (all but the
    eight ~3000-output 2-D pools), compiled into one circuit: witness == runtime on the case's
    own input, bit for bit."""
    items, inputs = [], {}
    for op in CONFORMANCE_OPS:
        for r in conformance[op]:
            if r.status != "passed" or r.graph.tensors[r.graph.outputs[0]].size > MAX_CASE_OUTPUTS:
                continue
            env = rt.run(r.graph, r.q_input)
            for it in template_nodes(r.graph, f"c{len(items)}"):
                items.append(it)
                inputs[it[0]] = [env[i] for i in it[1].inputs]
    assert len(items) >= 60, len(items)
    n = check_combined(items, [inputs])
    print(f"\n{len(items)} conformance nodes, {n} outputs: witness == runtime")


# =========================================================================== 2. templates
def _conv(name, x, w_shape, rng, out, bias=True, **attrs):
    w = const(f"{name}_w", rng.normal(0, 0.5, w_shape))
    inits = [w]
    ins = [x, f"{name}_w"]
    if bias:
        inits.append(const(f"{name}_b", rng.normal(0, 0.2, w_shape[0])))
        ins.append(f"{name}_b")
    return helper.make_node("Conv", ins, [out], name=name, **attrs), inits


def template_cases(rng):
    """(id, nodes, x shape, initializers) of single-op models covering the template parameters."""
    cases = []
    n, i = _conv("conv_asym", "x", [4, 3, 3, 2], rng, "c", strides=[2, 1], pads=[1, 0, 2, 1], dilations=[1, 2])
    cases.append(("conv_strides_asym_pads_dilation_relu", [n, helper.make_node("Relu", ["c"], ["y"])],
                  [1, 3, 6, 7], i))
    n, i = _conv("conv_groups", "x", [6, 2, 3, 3], rng, "y", group=2, pads=[1, 1, 1, 1])
    cases.append(("conv_groups2", [n], [1, 4, 5, 5], i))
    n, i = _conv("conv_dw", "x", [3, 1, 3, 3], rng, "y", group=3, strides=[2, 2], auto_pad="SAME_UPPER")
    cases.append(("conv_depthwise_same_upper", [n], [1, 3, 6, 6], i))
    n, i = _conv("conv_1d", "x", [3, 2, 3], rng, "c", pads=[1, 1], bias=False)
    cases.append(("conv_1d_relu6", [n, helper.make_node("Clip", ["c", "lo", "hi"], ["y"])], [1, 2, 7],
                  i + [const("lo", 0.0), const("hi", 6.0)]))
    bn = [const("s", rng.uniform(0.5, 2, 3) * np.array([1, -1, 1])), const("bb", rng.normal(0, 1, 3)),
          const("mu", rng.normal(0, 1, 3)), const("var", rng.uniform(0.5, 2, 3))]
    cases.append(("batchnorm_standalone", [helper.make_node("BatchNormalization", ["x", "s", "bb", "mu", "var"],
                                                            ["y"])], [1, 3, 4, 4], bn))
    cases.append(("maxpool_k3_s2_pads_ceil", [helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3],
                                                               strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)],
                  [1, 2, 6, 5], []))
    cases.append(("maxpool_dilations", [helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2],
                                                         dilations=[2, 2])], [1, 2, 5, 5], []))
    cases.append(("maxpool_1d", [helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3], strides=[2])],
                  [1, 2, 9], []))
    cases.append(("globalmaxpool", [helper.make_node("GlobalMaxPool", ["x"], ["y"])], [1, 3, 3, 3], []))
    cases.append(("avgpool_pads_exclude", [helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3],
                                                            strides=[2, 2], pads=[1, 1, 1, 1])], [1, 2, 5, 6], []))
    cases.append(("avgpool_include_pad_ceil", [helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[2, 2],
                                                                strides=[2, 2], pads=[1, 0, 0, 1], ceil_mode=1,
                                                                count_include_pad=1)], [1, 2, 5, 5], []))
    cases.append(("globalavgpool", [helper.make_node("GlobalAveragePool", ["x"], ["y"])], [1, 3, 4, 4], []))
    cases.append(("clip_both_sides", [helper.make_node("Clip", ["x", "lo", "hi"], ["y"])], [1, 12],
                  [const("lo", -0.5), const("hi", 0.7)]))
    cases.append(("clip_min_only", [helper.make_node("Clip", ["x", "lo"], ["y"])], [1, 12], [const("lo", 0.2)]))
    cases.append(("transpose", [helper.make_node("Transpose", ["x"], ["y"], perm=[0, 2, 3, 1])], [1, 2, 3, 4], []))
    pads = numpy_helper.from_array(np.array([0, 0, 1, 2, 0, 0, 2, 1], dtype=np.int64), "pads")
    cases.append(("pad_constant_value", [helper.make_node("Pad", ["x", "pads", "pv"], ["y"])], [1, 2, 3, 3],
                  [pads, const("pv", 0.25)]))
    pads2 = numpy_helper.from_array(np.array([0, 0, 2, 1, 0, 0, 1, -1], dtype=np.int64), "pads2")
    cases.append(("pad_reflect_and_crop", [helper.make_node("Pad", ["x", "pads2"], ["y"], mode="reflect")],
                  [1, 2, 4, 4], [pads2]))
    # Concat of three differently scaled tensors (two convs and the input) and a constant
    ca, ia = _conv("cat_a", "x", [2, 2, 1, 1], rng, "ya")
    cb, ib = _conv("cat_b", "x", [1, 2, 1, 1], rng, "yb")
    cases.append(("concat_three_scales_and_const",
                  [ca, cb, helper.make_node("Concat", ["ya", "x", "yb", "k"], ["y"], axis=1)], [1, 2, 3, 3],
                  ia + ib + [const("k", rng.normal(0, 3, (1, 1, 3, 3)))]))
    cases.append(("concat_one_input_and_const", [helper.make_node("Concat", ["x", "k2"], ["y"], axis=2)],
                  [1, 2, 2, 3], [const("k2", rng.normal(0, 0.3, (1, 2, 1, 3)))]))
    return cases


def edge_inputs(node, ins, rng) -> list[list[np.ndarray]]:
    """Per input set: all zeros, all max, all zero point, two random, few-valued (ties)."""
    sets = []
    for kind in ("zero", "max", "zp", "random", "random", "ties"):
        arrs = []
        for t in ins:
            if kind == "zero":
                a = np.zeros(t.size, np.int64)
            elif kind == "max":
                a = np.full(t.size, t.qmax)
            elif kind == "zp":
                a = np.full(t.size, t.zero_point)
            elif kind == "ties":
                a = rng.integers(0, 3, t.size) * (t.qmax // 2)
            else:
                a = rng.integers(0, t.qmax, t.size, endpoint=True)
            arrs.append(a.reshape(t.shape))
        sets.append(arrs)
    return sets


def test_templates_match_kernels(tmp_path):
    rng = np.random.default_rng(7)
    items, per_item_sets, seen = [], {}, collections.Counter()
    for cid, nodes, shape, inits in template_cases(rng):
        model = op_model(nodes, shape, inits)
        samples = rng.normal(0, 1, (32, *shape))
        g, _, _ = quantized(model, samples, tmp_path, name=f"{cid}.onnx")
        found = template_nodes(g, cid)
        assert found, f"{cid}: no template node in {[n.op for n in g.nodes]}"
        for it in found:
            items.append(it)
            seen[it[2]] += 1
            per_item_sets[it[0]] = edge_inputs(it[1], it[4], rng)
    assert set(seen) >= {"Conv2D", "MaxPool2D", "AvgPool2D", "ClampQ", "IndexMap", "Concat", "Concat1"}, seen
    input_sets = [{tag: sets[k] for tag, sets in per_item_sets.items()} for k in range(6)]
    n = check_combined(items, input_sets)
    print(f"\n{len(items)} template instances {dict(seen)}, {n} outputs: witness == kernel")


def conv_exact(p, x) -> np.ndarray:
    """Conv's documented integer formula in plain Python integers (independent of the kernel)."""
    x = np.asarray(x).reshape(p.n, p.c, p.h, p.w)
    cg, mg = p.c // p.group, p.m // p.group
    out = np.zeros((p.n, p.m, p.oh, p.ow), dtype=object)
    accs = np.zeros((p.n, p.m, p.oh, p.ow), dtype=object)
    for n in range(p.n):
        for m in range(p.m):
            g = m // mg
            for oy in range(p.oh):
                for ox in range(p.ow):
                    acc = p.bias[m]
                    for ci in range(cg):
                        for ky in range(p.kh):
                            for kx in range(p.kw):
                                iy, ix = oy * p.sh - p.pt + ky * p.dh, ox * p.sw - p.pl + kx * p.dw
                                if 0 <= iy < p.h and 0 <= ix < p.w:
                                    acc += (int(x[n, g * cg + ci, iy, ix]) - p.x_zp) * \
                                           (p.wq[m][(ci * p.kh + ky) * p.kw + kx] - p.w_zp[m])
                    accs[n, m, oy, ox] = acc
                    q = (acc * p.mult[m] + (1 << (p.shift - 1))) // (1 << p.shift) + p.out_zp
                    out[n, m, oy, ox] = min(max(q, p.out_lo), (1 << p.out_bits) - 1)
    return out, accs


def test_conv_kernel_equals_exact_formula(tmp_path):
    rng = np.random.default_rng(3)
    for cid, nodes, shape, inits in template_cases(rng):
        if not cid.startswith(("conv", "batchnorm")):
            continue
        g, _, _ = quantized(op_model(nodes, shape, inits), rng.normal(0, 1, (16, *shape)), tmp_path)
        node = next(n for n in g.nodes if n.op == "Conv")
        x = rng.integers(0, 256, g.tensors[node.inputs[0]].shape)
        want, _ = conv_exact(node.params, x)
        got = REGISTRY["Conv"].kernel(node.params, x)
        assert (np.asarray(got, dtype=object) == want).all(), cid


# =========================================================================== 3. fusions
def _ops(model, tmp, shape, cfg=None, samples=None):
    rng = np.random.default_rng(0)
    samples = rng.normal(0, 1, (64, *shape)) if samples is None else samples
    g, normalized, _ = quantized(model, samples, tmp, cfg)
    return [n.op for n in g.nodes], g, normalized, samples


def test_conv_batchnorm_relu_fold_into_one_conv(tmp_path):
    rng = np.random.default_rng(1)
    c, i = _conv("conv", "x", [4, 3, 3, 3], rng, "c", pads=[1, 1, 1, 1])
    bn = [const("s", rng.uniform(0.5, 2, 4)), const("bb", rng.normal(0, 1, 4)), const("mu", rng.normal(0, 1, 4)),
          const("var", rng.uniform(0.5, 2, 4))]
    m = op_model([c, helper.make_node("BatchNormalization", ["c", "s", "bb", "mu", "var"], ["b"], name="bn"),
                  helper.make_node("Relu", ["b"], ["y"], name="relu")], [1, 3, 6, 6], i + bn)
    ops, g, normalized, samples = _ops(m, tmp_path, [1, 3, 6, 6])
    assert ops == ["Conv"] and g.nodes[0].params.out_lo == g.nodes[0].params.out_zp
    assert g.nodes[0].onnx == ["Conv 'conv'", "BatchNormalization 'bn'", "Relu 'relu'"]
    assert worst_lsb(g, normalized, samples[:16]) <= tolerance(g)


def test_gemm_batchnorm_fold_and_conv_bias_add(tmp_path):
    rng = np.random.default_rng(2)
    bn = [const("s", rng.uniform(0.5, 2, 5)), const("bb", rng.normal(0, 1, 5)), const("mu", rng.normal(0, 1, 5)),
          const("var", rng.uniform(0.5, 2, 5))]
    m = op_model([helper.make_node("Gemm", ["x", "w", "b"], ["h"], transB=1),
                  helper.make_node("BatchNormalization", ["h", "s", "bb", "mu", "var"], ["y"])], [1, 6],
                 [const("w", rng.normal(0, 0.5, (5, 6))), const("b", rng.normal(0, 0.1, 5))] + bn)
    ops, g, normalized, samples = _ops(m, tmp_path, [1, 6])
    assert ops == ["Dense"]
    assert worst_lsb(g, normalized, samples[:16]) <= tolerance(g)
    c, i = _conv("conv", "x", [3, 2, 3, 3], rng, "c", bias=False)
    m = op_model([c, helper.make_node("Add", ["c", "k"], ["y"])], [1, 2, 5, 5],
                 i + [const("k", rng.normal(0, 1, (3, 1, 1)))])
    ops, g, normalized, samples = _ops(m, tmp_path, [1, 2, 5, 5])
    assert ops == ["Conv"]
    assert worst_lsb(g, normalized, samples[:16]) <= tolerance(g)


def with_quantized_conv_weights(model: onnx.ModelProto, g, name="conv") -> onnx.ModelProto:
    """The float model with Conv `name`'s weights and bias replaced by the values the integer
    model really uses (dequantized): onnxruntime on it, fed the dequantized input,
    isolates the integer arithmetic (rounding, clamps) from the quantization of inputs/weights."""
    from zkml.qparams import affine_params
    node = next(n for n in g.nodes if n.op == "Conv")
    p, x = node.params, g.tensors[node.inputs[0]]
    m = onnx.ModelProto()
    m.CopyFrom(model)
    inits = {i.name: i for i in m.graph.initializer}
    W = numpy_helper.to_array(inits[f"{name}_w"]).astype(np.float64)
    if g.meta["quant"]["weight_grid"] == "aligned":     # one step, on the output's grid
        s_w = np.full(W.shape[0], g.tensors[node.output].scale / (x.scale * 2 ** p.shift))
    else:
        s_w = np.array([affine_params(r.min(), r.max(), p.w_bits)[0] for r in W.reshape(W.shape[0], -1)])
    wq = (np.array(p.wq) - np.array(p.w_zp)[:, None]) * s_w[:, None]
    inits[f"{name}_w"].CopyFrom(numpy_helper.from_array(wq.reshape(W.shape).astype(np.float32), f"{name}_w"))
    b = np.array(p.bias) * x.scale * s_w
    inits[f"{name}_b"].CopyFrom(numpy_helper.from_array(b.astype(np.float32), f"{name}_b"))
    return m


@pytest.mark.parametrize("grid", ["aligned", "affine"])
def test_relu6_fuses_into_conv_and_other_clips_stay(tmp_path, grid):
    """Conv + Clip(0, 6) is one Conv whose requantization clamp is the clip; checked against
    onnxruntime with the integer model's own weights on the dequantized input (<= 0.5 LSB of
    rounding + 0.02: the weights are on the output's grid, so the requantization is a shift
    with no multiplier error; with `weight_grid="affine"` + the multiplier's budget,
    QuantConfig.mult_error = 1/8 LSB), since with a
    narrow clipped range the rounding of inputs and weights is magnified into several output LSBs
    by the layer's gain. Clip(0.5, 6) cannot
    be a clamp at zero: it stays a standalone ClampQ (+0.5 LSB for its quantized bound)."""
    rng = np.random.default_rng(4)
    c, i = _conv("conv", "x", [3, 2, 3, 3], rng, "c")
    bounds = [const("zero", 0.0), const("six", 6.0), const("half", 0.5)]
    m = op_model([c, helper.make_node("Clip", ["c", "zero", "six"], ["y"])], [1, 2, 5, 5], i + bounds)
    samples = rng.normal(0, 3, (64, 1, 2, 5, 5))
    ops, g, normalized, _ = _ops(m, tmp_path, [1, 2, 5, 5], QuantConfig(weight_grid=grid), samples)
    assert ops == ["Conv"] and g.nodes[0].onnx[-1].startswith("Clip")
    y = np.concatenate([rt.run_outputs(g, rt.quantize_input(g, x)[0])[0].reshape(-1) for x in samples])
    assert y.min() == 0 and y.max() == 255            # both ends of the clip are reached
    budget = QuantConfig.mult_error if g.meta["quant"]["weight_grid"] == "affine" else 0.0
    assert worst_lsb(g, with_quantized_conv_weights(normalized, g), samples,
                     dequantized_input=True) <= 0.5 + budget + 0.02
    m = op_model([c, helper.make_node("Clip", ["c", "half", "six"], ["y"])], [1, 2, 5, 5], i + bounds)
    ops, g, normalized, _ = _ops(m, tmp_path, [1, 2, 5, 5], QuantConfig(weight_grid=grid), samples)
    assert ops == ["Conv", "Clip"]
    y = np.concatenate([rt.run_outputs(g, rt.quantize_input(g, x)[0])[0].reshape(-1) for x in samples])
    assert y.min() == g.nodes[1].params.lo > 0 and y.max() == g.nodes[1].params.hi
    assert worst_lsb(g, with_quantized_conv_weights(normalized, g), samples, dequantized_input=True) <= 1.02


@pytest.mark.parametrize("grid", ["aligned", "affine"])
def test_standalone_batchnorm_is_a_depthwise_conv(tmp_path, grid):
    """BatchNorm after a Relu becomes a 1x1 depthwise Conv with one weight per channel, s/sqrt(var + eps).
    affine: each channel's weight is exactly +-(2^8 - 1) on its own scale. aligned: one step d
    for all three, with the narrowest channel at 255..509 steps (its 8 bits, and the shortest
    shift that keeps them) and the others at their weight / d."""
    bn = [const("s", [1.5, -0.7, 0.2]), const("bb", [0.1, -0.3, 2.0]), const("mu", [0.5, 0.0, -1.0]),
          const("var", [0.3, 2.0, 1.0])]
    m = op_model([helper.make_node("Relu", ["x"], ["r"]),
                  helper.make_node("BatchNormalization", ["r", "s", "bb", "mu", "var"], ["b"]),
                  helper.make_node("Relu", ["b"], ["y"])], [1, 3, 4, 4], bn)
    ops, g, normalized, samples = _ops(m, tmp_path, [1, 3, 4, 4], QuantConfig(weight_grid=grid))
    assert ops == ["Relu", "Conv"]
    p = g.nodes[1].params
    assert (p.group, p.kh, p.kw, p.out_lo) == (3, 1, 1, p.out_zp)
    ints = [w[0] - z for w, z in zip(p.wq, p.w_zp)]
    if grid == "affine":
        assert sorted(abs(v) for v in ints) == [255, 255, 255]
    else:
        real = np.array([1.5, -0.7, 0.2]) / np.sqrt(np.array([0.3, 2.0, 1.0]) + 1e-5)
        d = g.tensors[g.nodes[1].output].scale / (g.tensors[g.nodes[1].inputs[0]].scale * 2 ** p.shift)
        assert set(p.mult) == {1} and 255 <= min(abs(v) for v in ints) < 510
        assert np.abs(np.array(ints) * d - real).max() <= d / 2 * (1 + 1e-9)
    assert worst_lsb(g, normalized, samples[:16]) <= tolerance(g)


def test_unsupported_cnn_forms_are_named(tmp_path):
    rng = np.random.default_rng(6)
    cases = [
        ("MaxPool.*only 1-D and 2-D", [helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2, 2])],
         [1, 2, 4, 4, 4], []),
        ("Conv.*only 1-D and 2-D", [helper.make_node("Conv", ["x", "w"], ["y"])], [1, 2, 3, 3, 3],
         [const("w", rng.normal(0, 1, (2, 2, 1, 1, 1)))]),
        ("Conv.*constant weights", [helper.make_node("Relu", ["x"], ["w"]),
                                    helper.make_node("Conv", ["x", "w"], ["y"])], [2, 2, 1, 1], []),
        ("MaxPool.*Indices", [helper.make_node("MaxPool", ["x"], ["y", "i"], kernel_shape=[2, 2])], [1, 1, 4, 4], []),
        ("BatchNormalization.*training mode",
         [helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y", "rm", "rv"], training_mode=1)],
         [1, 3, 2, 2], [const("s", [1, 1, 1]), const("b", [0, 0, 0]), const("m", [0, 0, 0]), const("v", [1, 1, 1])]),
    ]
    for pattern, nodes, shape, inits in cases:
        m = op_model(nodes, shape, inits, opset=15 if "training" in pattern else 13)
        onnx.save(m, tmp_path / "m.onnx")
        with pytest.raises(UnsupportedOpError, match=pattern):
            import_onnx(tmp_path / "m.onnx")
    # a Pad value the input's calibrated range cannot hold is refused, not saturated
    pads = numpy_helper.from_array(np.array([0, 1, 0, 1], dtype=np.int64), "pads")
    m = op_model([helper.make_node("Pad", ["x", "pads", "v"], ["y"])], [1, 4], [pads, const("v", 50.0)])
    onnx.save(m, tmp_path / "m.onnx")
    fg, normalized = import_onnx(tmp_path / "m.onnx")
    with pytest.raises(UnsupportedOpError, match="Pad.*pad value 50.0 lies outside"):
        quantize(fg, calibrate(fg, normalized, rng.normal(0, 1, (8, 1, 4))), QuantConfig())


# =========================================================================== 4. models
def lenet(seed=0, size=8, c1=3) -> onnx.ModelProto:
    """Conv(1->c1,3x3,pad1)->Relu->MaxPool(2)->Conv(c1->4,3x3)->Relu->AveragePool(2)->Flatten->Gemm(->10)."""
    rng = np.random.default_rng(seed)
    s2 = (size // 2 - 2) // 2
    inits = [const("w1", rng.normal(0, 0.5, (c1, 1, 3, 3))), const("b1", rng.normal(0, 0.1, c1)),
             const("w2", rng.normal(0, 0.3, (4, c1, 3, 3))), const("b2", rng.normal(0, 0.1, 4)),
             const("w3", rng.normal(0, 0.3, (10, 4 * s2 * s2))), const("b3", rng.normal(0, 0.1, 10))]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], name="conv2"),
             helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
             helper.make_node("AveragePool", ["r2"], ["p2"], name="pool2", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Flatten", ["p2"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "w3", "b3"], ["y"], name="fc", transB=1)]
    return op_model(nodes, [1, 1, size, size], inits)


@pytest.mark.parametrize("per_channel", [True, False])
def test_lenet_within_tolerance_of_onnxruntime(tmp_path, per_channel):
    samples = np.random.default_rng(1).uniform(0, 1, (100, 1, 1, 12, 12))
    g, normalized, _ = quantized(lenet(size=12), samples, tmp_path, QuantConfig(per_channel=per_channel))
    assert [n.op for n in g.nodes] == ["Conv", "MaxPool", "Conv", "AvgPool", "Reshape", "Dense"]
    assert worst_lsb(g, normalized, samples[:30]) <= tolerance(g)


def _calibration(path: Path, x: np.ndarray, tmp: Path, spread=0.5) -> Path:
    rng = np.random.default_rng(0)
    cal = np.concatenate([x[None], x[None] + rng.normal(0, spread, (63, *x.shape))])
    np.save(tmp / "cal.npy", cal)
    return tmp / "cal.npy"


def _prove_and_verify(model: Path, inp: Path, cal: Path, build: Path):
    meta = api.compile(model, build, calibration=cal)
    run = api.run(build, inp)
    g = api.load_graph(build)
    assert run.max_diff_lsb is not None and run.max_diff_lsb <= tolerance(g), run
    res = api.prove(build, inp)
    assert res["outputs"] == run.q_outputs
    v = api.verify(build)
    assert v.valid and v.snarkjs and v.python
    return meta, res


def test_lenet_compiles_proves_and_verifies(tmp_path):
    onnx.save(lenet(size=8, c1=2), tmp_path / "lenet.onnx")
    x = np.random.default_rng(2).uniform(0, 1, (1, 1, 8, 8))
    (tmp_path / "input.json").write_text(json.dumps({"input_data": [x.reshape(-1).tolist()]}))
    rng = np.random.default_rng(3)
    np.save(tmp_path / "cal.npy", rng.uniform(0, 1, (64, 1, 1, 8, 8)))
    meta, res = _prove_and_verify(tmp_path / "lenet.onnx", tmp_path / "input.json", tmp_path / "cal.npy",
                                  tmp_path / "build")
    print(f"\nLeNet-like 8x8: {meta['circuit']['constraints']} constraints, prove {res['seconds']}")


# --------------------------------------------------------------------------- Conv -> MaxPool fusion
def _lenet_build(tmp: Path, name: str, **kw) -> tuple[dict, Graph]:
    onnx.save(lenet(size=8, c1=2), tmp / "lenet.onnx")
    np.save(tmp / "cal.npy", np.random.default_rng(3).uniform(0, 1, (64, 1, 1, 8, 8)))
    meta = api.compile(tmp / "lenet.onnx", tmp / name, calibration=tmp / "cal.npy", **kw)
    return meta, api.load_graph(tmp / name)


@pytest.mark.parametrize("opt", ["O1", "O2"])
def test_conv_maxpool_fusion_same_integers_and_estimated_saving(tmp_path, opt):
    """The LeNet-like CNN compiled with and without pooling before requantization: the fused
    build holds one ConvMaxPool node instead of Conv + MaxPool; both circuits' witnesses equal
    their runtimes on random inputs, and the two give the same output integers; the constraints
    saved are exactly what zkml.ops.convpool.fused_cost predicts (the rule the pass decides by)."""
    from zkml.ops.convpool import fused_cost
    fused, gf = _lenet_build(tmp_path, "fused", optimize=opt)
    plain, gp = _lenet_build(tmp_path, "plain", optimize=opt, fuse_pools=False)
    assert [n.op for n in gp.nodes] == ["Conv", "MaxPool", "Conv", "AvgPool", "Reshape", "Dense"]
    assert [n.op for n in gf.nodes] == ["ConvMaxPool", "Conv", "AvgPool", "Reshape", "Dense"]
    conv, pool = gp.nodes[0], gp.nodes[1]
    unfused_est, fused_est = fused_cost(conv, pool, [gp.tensors[conv.inputs[0]]], opt)
    saved = plain["circuit"]["constraints"] - fused["circuit"]["constraints"]
    assert saved == unfused_est - fused_est > 0, (saved, unfused_est, fused_est)
    rng = np.random.default_rng(7)
    for k in range(4):
        x = rng.uniform(-0.5, 1.5, (1, 1, 8, 8)) if k else np.zeros((1, 1, 8, 8))
        (tmp_path / "x.json").write_text(json.dumps({"input_data": [x.reshape(-1).tolist()]}))
        _, out_f = api.witness(tmp_path / "fused", tmp_path / "x.json")     # raises unless circuit == runtime
        _, out_p = api.witness(tmp_path / "plain", tmp_path / "x.json")
        assert out_f == out_p
    print(f"\nLeNet-like 8x8 --{opt}: {plain['circuit']['constraints']} constraints unfused, "
          f"{fused['circuit']['constraints']} fused")


def test_conv_maxpool_fusion_only_where_it_applies(tmp_path):
    """Not fused: a Conv output that another node also reads, or that is a graph output; a Conv
    with weights as signals (--weights private: the weights are not constants)."""
    from zkml.ops.convpool import fuse_conv_maxpool
    rng = np.random.default_rng(0)
    inits = [const("w", rng.normal(0, 0.5, (2, 1, 3, 3))), const("b", rng.normal(0, 0.1, 2))]
    shared = op_model([helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
                       helper.make_node("MaxPool", ["c"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
                       helper.make_node("AveragePool", ["c"], ["a"], name="avg", kernel_shape=[2, 2],
                                        strides=[2, 2]),
                       helper.make_node("Add", ["p", "a"], ["y"], name="add")], [1, 1, 6, 6], inits)
    g, _, _ = quantized(shared, rng.uniform(0, 1, (16, 1, 1, 6, 6)), tmp_path, name="shared.onnx")
    assert [n.op for n in fuse_conv_maxpool(g).nodes] == [n.op for n in g.nodes]
    g2, _, _ = quantized(lenet(size=8, c1=2), rng.uniform(0, 1, (16, 1, 1, 8, 8)), tmp_path, name="l.onnx")
    fused = fuse_conv_maxpool(g2).nodes[0]
    assert fused.op == "ConvMaxPool"
    op, x = REGISTRY["ConvMaxPool"], rng.integers(0, 256, (1, 1, 8, 8))
    assert np.array_equal(op.kernel(op.split_channels(fused.params, 1, 2), x), op.kernel(fused.params, x)[:, 1:2])
    g2.outputs.append(g2.nodes[0].output)                   # the Conv output also a graph output
    assert [n.op for n in fuse_conv_maxpool(g2).nodes] == [n.op for n in g2.nodes]
    from zkml.visibility import Visibility
    _, gw = _lenet_build(tmp_path, "private", visibility=Visibility(weights="private"))
    assert "ConvMaxPool" not in [n.op for n in gw.nodes]


def test_conv_maxpool_hand_edited_ir_refused(tmp_path):
    """The two facts pooling first relies on are checked on every IR load (ir.verify), not only by
    the fusion pass: a negative multiplier (the requantization would not be monotone) and a pool
    window entirely in the padding are refused by node name."""
    import copy
    from zkml.errors import BuildError
    _, g = _lenet_build(tmp_path, "fused")
    d = g.to_json()
    assert d["nodes"][0]["op"] == "ConvMaxPool"
    for edit, why in ((lambda p: p["mult"].__setitem__(0, -p["mult"][0]), "not be monotone"),
                      (lambda p: p.update(pkh=2, ppt=5), "entirely in the padding")):
        e = copy.deepcopy(d)
        edit(e["nodes"][0]["params"])
        with pytest.raises(BuildError, match=why):
            verify(Graph.from_json(e))


CNN_MODELS = ["1l_conv", "1l_downsample", "1l_max_pool", "1l_batch_norm", "1l_pad", "1l_concat", "clip",
              "3l_relu_conv_fc"]


@pytest.mark.parametrize("name", CNN_MODELS + ["1l_average"])
def test_shared_cnn_model_within_tolerance(name):
    path = shared_model(name)
    try:
        fg, normalized = import_onnx(path)
    except UnsupportedOpError as e:
        assert name == "1l_average" and "Gather" in str(e), e
        pytest.skip(f"{name}: {e} (Gather is not one of these CNN operators; its Pad + AveragePool part is "
                    "tested in test_shared_1l_average_without_its_gather)")
    shape = fg.shapes[fg.inputs[0]]
    x = load_input(SHARED_MODELS / name / "input.json", shape)
    rng = np.random.default_rng(0)
    samples = np.concatenate([x[None], x[None] + rng.normal(0, 0.5, (63, *shape))])
    g = quantize(fg, calibrate(fg, normalized, samples), QuantConfig())
    assert worst_lsb(g, normalized, samples[:16]) <= tolerance(g)


def _truncated_1l_average(tmp: Path) -> Path:
    """1l_average up to its AveragePool (Pad -> AveragePool), without the final Gather."""
    m = onnx.load(shared_model("1l_average"))
    keep = [n for n in m.graph.node if n.op_type in ("Pad", "AveragePool", "Constant")
            and (n.op_type != "Constant" or n.output[0] in {i for k in m.graph.node if k.op_type == "Pad"
                                                             for i in k.input})]
    out = next(n.output[0] for n in keep if n.op_type == "AveragePool")
    del m.graph.node[:]
    m.graph.node.extend(keep)
    del m.graph.output[:]
    m.graph.output.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, ["batch_size", 3, 3, 3]))
    onnx.save(m, tmp / "avg.onnx")
    return tmp / "avg.onnx"


def test_shared_1l_average_without_its_gather(tmp_path):
    path = _truncated_1l_average(tmp_path)
    fg, normalized = import_onnx(path)
    assert [n.op for n in fg.nodes] == ["IndexMap", "AvgPool"]
    x = load_input(SHARED_MODELS / "1l_average" / "input.json", fg.shapes[fg.inputs[0]])
    cal = _calibration(path, x, tmp_path)
    (tmp_path / "input.json").write_text((SHARED_MODELS / "1l_average" / "input.json").read_text())
    _prove_and_verify(path, tmp_path / "input.json", cal, tmp_path / "build")


@pytest.mark.parametrize("name", CNN_MODELS)
def test_shared_cnn_model_compiles_proves_and_verifies(tmp_path, name):
    path = shared_model(name)
    inp = SHARED_MODELS / name / "input.json"
    fg, _ = import_onnx(path)
    x = load_input(inp, fg.shapes[fg.inputs[0]])
    meta, res = _prove_and_verify(path, inp, _calibration(path, x, tmp_path), tmp_path / "build")
    print(f"\n{name}: {meta['circuit']['constraints']} constraints, {res['seconds']}")


# =========================================================================== 5. forgeries
MAXPOOL_MAIN = """pragma circom 2.1.0;
include "pool.circom";

template Main() {
    signal input in[8];
    signal output out[4];
    component mp = MaxPool2D(1, 2, 2, 2, 2, 1, 1, 2, 1, 1, 0, 0, 1, 1, 8);
    mp.in <== in;
    out <== mp.out;
}

component main = Main();
"""
# input [1, 2, 2, 2]; kernel 1x2, stride 1: out[(c*2 + oy)] = max(x[c, oy, 0], x[c, oy, 1])
MAXPOOL_X = [17, 200, 90, 90, 255, 0, 3, 4]
MP_BITS = 8


def maxpool_model(o: int, a: int, b: int, ge: int | None = None, out: int | None = None) -> dict:
    """Every signal of MaxWindow(2, 8) at main.mp.win[o] for inputs (a, b): the attacker may
    claim a comparator bit `ge` (the top bit of Num2Bits(9) of a + 2^8 - b, i.e. a >= b) and/or
    an output value; m[1] and the public output follow the template's formula
    m[1] = b + ge*(a - b) unless `out` overrides it (then ge is whatever field element makes that
    formula hold)."""
    m = {}
    pre = f"main.mp.win[{o}]"
    m[f"{pre}.in[0]"], m[f"{pre}.in[1]"], m[f"{pre}.m[0]"] = a, b, a
    if out is not None and ge is None:
        ge = (out - b) * pow(a - b, -1, P) % P if b != a else 0
    got = ge_bit(m, f"{pre}.ge[1]", a, b, MP_BITS, ge)
    val = (b + got * (a - b)) % P if out is None else out
    m[f"{pre}.m[1]"] = m[f"{pre}.out"] = m[f"main.mp.out[{o}]"] = m[f"main.out[{o}]"] = val
    return m


@pytest.fixture(scope="module", params=["O2", "O1"])
def maxpool(request):
    c = compile_circuit(MAXPOOL_MAIN, flags={"O1": O1, "O2": O2}[request.param])
    w = c.witness({"in": MAXPOOL_X})
    want = [max(MAXPOOL_X[2 * o], MAXPOOL_X[2 * o + 1]) for o in range(4)]
    assert [c.value(w, f"main.out[{o}]") for o in range(4)] == want
    assert_accepted(c, w)
    for o in range(4):
        honest_model_matches(c, w, maxpool_model(o, MAXPOOL_X[2 * o], MAXPOOL_X[2 * o + 1]))
    return c, w


def _mp_bits(c, o):
    """The comparator's low bits: the attacker's free choice (the top bit carries the claim)."""
    return [s for s in c.names(f"main.mp.win[{o}].ge[1].") if ".out[" in s and not s.endswith(f"[{MP_BITS}]")]


@pytest.mark.parametrize("o", range(4), ids=["a<b", "a=b", "255_vs_0", "3_vs_4"])
def test_maxpool_forged_comparator_wrong_max_index(maxpool, o):
    """Attacker: the comparator claims the other element is the max (ge flipped), so the output
    is the smaller value (or, on a tie, the same value with a lying bit); m[1] and the public
    output follow. The decomposition's top bit set to the lie, its low bits enumerated over every
    choice. Caught by the comparator's bit decomposition (ge[1])."""
    c, w = maxpool
    a, b = MAXPOOL_X[2 * o], MAXPOOL_X[2 * o + 1]
    honest = int(a >= b)
    m = maxpool_model(o, a, b, ge=1 - honest)
    check_covers(c, m, f"main.mp.win[{o}]")
    bad = c.tamper(w, m, skip_eliminated=True)
    if bad == w:
        # --O2 solves the top bit from the decomposition's sum: on a tie, flipping it changes no
        # surviving signal (either choice selects the same value), so there is nothing to submit
        assert a == b and not c.survives(f"main.mp.win[{o}].ge[1].out[{MP_BITS}]")
        return
    assert_rejected(c, bad, caught_in=f"win[{o}].ge[1]")
    assert no_assignment_satisfies(c, bad, _mp_bits(c, o))


@pytest.mark.parametrize("value", ["max_plus_1", "between", "zero", "p_minus_1"])
def test_maxpool_forged_value_not_in_window(maxpool, value):
    """Attacker: an output that is none of the window's values (max + 1, a value strictly
    between, 0, p - 1), with the comparator 'bit' set to the field element that satisfies the
    selection m[1] = b + ge*(a - b). ge is then not a bit: caught by the comparator's Num2Bits."""
    c, w = maxpool
    o = 0
    a, b = MAXPOOL_X[0], MAXPOOL_X[1]
    v = {"max_plus_1": max(a, b) + 1, "between": (a + b) // 2, "zero": 0, "p_minus_1": P - 1}[value]
    m = maxpool_model(o, a, b, out=v)
    bad = c.tamper(w, m, skip_eliminated=True)
    assert_rejected(c, bad, caught_in=f"win[{o}].ge[1]")
    assert no_assignment_satisfies(c, bad, _mp_bits(c, o))


@pytest.mark.parametrize("delta", [+1, -1])
def test_maxpool_forged_output_off_by_one(maxpool, delta):
    """Attacker: the public output +-1, every internal signal honest. Caught by out <== m[1]."""
    c, w = maxpool
    o = 1
    bad = c.tamper(w, {"main.out[1]": c.value(w, "main.out[1]") + delta})
    assert_rejected(c, bad, caught_in=("main.out[1]", f"win[{o}]"))


@pytest.fixture(scope="module")
def conv_circuit(tmp_path_factory):
    """A small real Conv node (3x3, pads, fused Relu) compiled with --O1 and --O2."""
    tmp = tmp_path_factory.mktemp("conv_forgery")
    rng = np.random.default_rng(11)
    c, i = _conv("conv", "x", [2, 2, 3, 3], rng, "c", pads=[1, 1, 1, 1])
    m = op_model([c, helper.make_node("Relu", ["c"], ["y"])], [1, 2, 3, 3], i)
    g, _, _ = quantized(m, rng.normal(0, 1, (32, 1, 2, 3, 3)), tmp)
    tag, node, template, args, ins, out, f = template_nodes(g, "op")[0]
    b = verify(g)[node.name].circuit
    x = rng.integers(0, 256, ins[0].shape)
    src = combined_circuit([(tag, node, template, args, ins, out, f)])
    p = node.params
    _, accs = conv_exact(p, x)
    ns = [int(a) * p.mult[mm] + (1 << (b["SHIFT"] - 1)) + b["K"] * (1 << b["SHIFT"])
          for (n_, mm, oy, ox), a in np.ndenumerate(accs)]
    built = {}
    for name, flags in (("O1", O1), ("O2", O2)):
        circ = compile_circuit(src, flags=flags)
        w = circ.witness({f"{tag}_in": x.reshape(-1).tolist()})
        assert [circ.value(w, f"main.{tag}_out[{k}]") for k in range(out.size)] == \
            [int(v) for v in REGISTRY["Conv"].kernel(p, x).reshape(-1)]
        assert_accepted(circ, w)
        built[name] = (circ, w)
    return built, b, ns, tag


@pytest.mark.parametrize("opt", ["O1", "O2"])
@pytest.mark.parametrize("attack", ["q_plus_1", "q_minus_1"])
def test_conv_requant_forged_quotient(conv_circuit, opt, attack):
    """Attacker: for every output of the Conv, q+1 with r-2^SHIFT (or q-1 with r+2^SHIFT), so
    N === q*2^SHIFT + r still holds; q's bits, clamps and the output recomputed. Caught by the
    remainder's Num2Bits (rBits, or nBits, the decomposition of N, on the aligned way). Outputs where the forged q would change the public output are
    counted: the attack must matter somewhere."""
    built, b, ns, tag = conv_circuit
    circ, w = built[opt]
    changed = 0
    for o, n in enumerate(ns):
        prefix, out = f"main.{tag}.rq[{o}]", f"main.{tag}_out[{o}]"
        honest = requant_model(prefix, n, b, n >> b["SHIFT"], out_name=out)
        honest[f"main.{tag}.out[{o}]"] = honest[out]
        check_covers(circ, honest, prefix)
        honest_model_matches(circ, w, honest)
        dq = 1 if attack == "q_plus_1" else -1
        m = requant_model(prefix, n, b, (n >> b["SHIFT"]) + dq, out_name=out)
        m[f"main.{tag}.out[{o}]"] = m[out]
        changed += m[out] != honest[out]
        bad = circ.tamper(w, m, skip_eliminated=True)
        assert_rejected(circ, bad, caught_in=("rBits", "nBits"))
    assert changed, "no output where the forged quotient changes the public output"


def test_conv_requant_forged_output_plus_one(conv_circuit):
    """Attacker: one public output + 1, every hint honest. Caught by out <== rq.out's clamp
    formula (the output constraint of RequantClamp)."""
    built, b, ns, tag = conv_circuit
    circ, w = built["O2"]
    bad = circ.tamper(w, {f"main.{tag}_out[4]": circ.value(w, f"main.{tag}_out[4]") + 1})
    assert_rejected(circ, bad, caught_in=(f"main.{tag}_out[4]", "rq[4]"))

