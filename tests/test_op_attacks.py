"""Adversarial witnesses for every operator of the registry and every component of compiled models.

Registry-wide (a new operator is attacked without editing this file, or the suite fails):

* `test_every_registered_op_has_attacks`: each operator in `zkml.ops.REGISTRY` either emits a
  template and has a spec in tests/op_zoo.py `SPECS` (its attack circuits and the attacks that
  apply), or is listed in `RELABELING` (no template, nothing to forge). Otherwise it FAILS with
  "add attacks for op X".
* `test_op_forgeries_rejected[op]`: the operator's tiny circuits (parameters from its real
  quantize/bounds/circom path, covering clamping on both sides and none), with k copies fed edge
  and random inputs; for every copy and every RequantClamp / comparator instance, every attack
  of the operator's list is built with the attacker's consistent signal model and must be
  rejected by `snarkjs wtns check` and by the independent Python checker (zkml/r1cs.py), which
  must agree on the first violated constraint. Where the attacker has at most 12 free bits
  left, every assignment of them is enumerated. Each attack kind must have been tried.

Compiled models (what `zkml compile` really emits, --O2, public outputs packed when the
build says so): `test_model_components_forgeries_rejected` attacks every component of a model
that uses every template (input ReluZp, Dense from Gemm and MatMul, Add with fused Relu,
Reshape) and sampled instances of the digits example's three Dense layers, plus the input
range check.
"""
from __future__ import annotations

import collections
import json
from pathlib import Path

import numpy as np
import pytest
from onnx import helper, numpy_helper

from circuit_harness import (P, Circuit, assert_accepted, assert_rejected, compile_circuit, no_assignment_satisfies,
                             read_sym)
from conftest import ROOT, const, make_model, save, vinfo
from op_zoo import (PENDING, RELABELING, SPECS, OpCase, has_template, range_forgeries, registry_ops, select,
                    stack_inputs)
from test_forgery import check_covers, honest_model_matches
from zkml.ops import REGISTRY

EXHAUSTIVE_MAX_BITS = 12
PER_REGIME = 2


@pytest.mark.parametrize("op", registry_ops())
def test_every_registered_op_has_attacks(op):
    if op in SPECS:
        spec = SPECS[op]
        assert has_template(op), f"op {op} has attacks but no template_file"
        assert spec.template_file == REGISTRY[op].template_file
        assert spec.attacks and spec.attack_cfgs, f"op {op}: the spec lists no attacks or no attack circuits"
    elif op in PENDING:
        pytest.xfail(PENDING[op])
    elif op in RELABELING:
        assert not has_template(op), f"op {op} is listed as a relabeling but emits {REGISTRY[op].template_file}"
        assert REGISTRY[op].circom(None, None, None, None) is None
    else:
        pytest.fail(f"add attacks for op {op}: it is registered in zkml.ops.REGISTRY but tests/op_zoo.py has no "
                    f"spec for it (SPECS: its attack circuits and forgeries), nor does RELABELING say why it "
                    "needs none")


def _attack(circuit: Circuit, w: list[int], forgery, prefix: str, tried: collections.Counter,
            op: str) -> bool:
    lie_survives = not forgery.lie or any(n in circuit.sym and circuit.survives(n) for n in forgery.lie)
    if forgery.attack in ("input_above_bits", "field_negative_input") and not lie_survives:
        return False    # the input is the sum of its range-check bits: it cannot leave the range
    bad = circuit.tamper(w, forgery.assign, skip_eliminated=True)
    if bad == w:        # every signal the lie touches was eliminated: nothing to submit
        return False
    assert_rejected(circuit, bad, caught_in=(prefix + ".", "main.out[", "main.in["),
                    kind=f"{op}: {forgery.attack}")
    free = [n for n in forgery.free_bits if n in circuit.sym and circuit.survives(n)]
    if free and len(free) <= EXHAUSTIVE_MAX_BITS and lie_survives:
        assert no_assignment_satisfies(circuit, bad, free, honest=w), \
            f"{op} {forgery.attack} ({forgery.label}): some choice of {free} satisfies the R1CS"
    tried[(op, forgery.attack)] += 1
    return True


@pytest.mark.parametrize("op", [o for o in registry_ops() if has_template(o) or o in SPECS])
def test_op_forgeries_rejected(op):
    if op in PENDING:
        pytest.xfail(PENDING[op])
    if op not in SPECS:
        pytest.fail(f"add attacks for op {op} (tests/op_zoo.py SPECS)")
    spec = SPECS[op]
    tried: collections.Counter = collections.Counter()
    regimes: set = set()
    rng = np.random.default_rng(5)
    for cfg in spec.attack_cfgs:
        case: OpCase = spec.make(**cfg)
        batch = spec.edge_inputs(case)
        batch += [{p: [int(v) for v in rng.integers(0, t.qmax, n, endpoint=True)]
                   for (p, n), t in zip(case.ports.items(), case.ins)} for _ in range(2)]
        k = len(batch)
        circuit = compile_circuit(case.source(k))
        w = circuit.witness(stack_inputs(case, batch))
        outs = [circuit.value(w, f"main.out[{i}]") for i in range(k * case.n_out)]
        for c, inputs in enumerate(batch):
            assert outs[c * case.n_out:(c + 1) * case.n_out] == case.kernel(inputs), (op, cfg, inputs)
        assert_accepted(circuit, w)
        forgeries = []
        for c, inputs in enumerate(batch):
            prefix = f"main.op[{c}]"
            names = lambda i, c=c, prefix=prefix: [f"main.out[{c * case.n_out + i}]", f"{prefix}.out[{i}]"]  # noqa: E731
            for comp, honest in spec.honest_models(case, prefix, inputs, names):
                if any(s.startswith(comp + ".") for s in circuit.sym):
                    check_covers(circuit, honest, comp)
                honest_model_matches(circuit, w, honest)
            forgeries += [(prefix, f) for f in spec.forgeries(case, prefix, inputs, names)]
        # every attack on two instances of each regime (clamped low / at LO / inside / at HI /
        # clamped high / remainder 0 or max; x below / at / above ZP)
        kept = {id(f) for f in select([f for _, f in forgeries], PER_REGIME)}
        regimes.update(f.regime for _, f in forgeries)
        for prefix, f in forgeries:
            if id(f) in kept:
                _attack(circuit, w, f, prefix, tried, op)
    missing = set(spec.attacks) - {a for _, a in tried}
    assert not missing, f"op {op}: attacks never applied by its attack circuits: {sorted(missing)}"
    print(f"\n{op}: {sum(tried.values())} forged witnesses rejected over regimes {sorted(regimes)}: "
          f"{ {a: n for (_, a), n in tried.items()} }")


# =========================================================================== compiled models
def zoo_model(n=4, seed=3):
    """Every template: Relu on the input (ReluZp), Gemm and MatMul (Dense), Add + fused Relu (AddRequant),
    Reshape (relabeling), input range check (UintRange)."""
    rng = np.random.default_rng(seed)
    inits = [const("wa", rng.normal(0, 0.6, (n, n))), const("ba", rng.normal(0, 0.2, n)),
             const("wb", rng.normal(0, 0.6, (n, n))),
             numpy_helper.from_array(np.array([1, n], dtype=np.int64), "shape")]
    nodes = [helper.make_node("Relu", ["x"], ["r0"], name="relu_in"),
             helper.make_node("Gemm", ["r0", "wa", "ba"], ["a"], name="fa"),
             helper.make_node("MatMul", ["r0", "wb"], ["b"], name="fb"),
             helper.make_node("Add", ["a", "b"], ["s"], name="sum"),
             helper.make_node("Relu", ["s"], ["r"], name="relu_out"),
             helper.make_node("Reshape", ["r", "shape"], ["y"], name="reshape")]
    return make_model(nodes, [vinfo("x", [1, n])], [vinfo("y", [1, n])], inits)


def _compile(folder: Path, model: Path, calibration: Path | None, inp: Path):
    from zkml import api
    from zkml.wtns import read_wtns
    build = folder / "build"
    api.compile(model, build, calibration=calibration)
    wtns, _ = api.witness(build, inp)
    w, _ = read_wtns(wtns)
    c = Circuit(build, "main", ["--O2"], read_sym(build / "main.sym"))
    assert_accepted(c, w)
    return build, c, w, inp


@pytest.fixture(scope="module")
def zoo_build(tmp_path_factory):
    folder = tmp_path_factory.mktemp("zoo")
    rng = np.random.default_rng(0)
    np.save(folder / "cal.npy", rng.normal(0, 1, (64, 1, 4)).astype(np.float32))
    (folder / "input.json").write_text(json.dumps([[0.7, -0.4, 1.3, -1.1]]))
    return _compile(folder, save(zoo_model(), folder / "zoo.onnx"), folder / "cal.npy", folder / "input.json")


@pytest.fixture(scope="module")
def digits_build(tmp_path_factory):
    ex = ROOT / "examples" / "digits"
    return _compile(tmp_path_factory.mktemp("digits_attacks"), ex / "model.onnx", ex / "calibration.npy",
                    ex / "input.json")


def _public_layout(build: Path, graph) -> dict[str, dict]:
    """output tensor -> {offset (first public signal), packed, lanes, bits}."""
    meta = json.loads((build / "build.json").read_text())
    lay = meta.get("public_layout") or [dict(name=o, packed=False, lanes=1, words=graph.tensors[o].size,
                                             bits=graph.tensors[o].bits) for o in graph.outputs]
    out, pos = {}, 0
    for entry in lay:
        out[entry["name"]] = dict(offset=pos, packed=entry["packed"], lanes=entry["lanes"], bits=entry["bits"])
        pos += entry["words"]
    return out


def _model_components(build: Path, inp: Path):
    """Every templated IR node: (node, OpCase, prefix, port inputs, graph output fed or None)."""
    import zkml_runtime as rt
    from zkml.api import load_graph
    from zkml.emit import _ident
    from zkml.inputs import load_input
    from zkml.ir import verify
    g = load_graph(build)
    bounds = verify(g)
    x = load_input(inp, g.tensors[g.inputs[0]].shape)
    q, _ = rt.quantize_input(g, x)
    env = rt.run(g, q)
    alias = {}                       # tensor -> templated tensor holding its signals
    for n in g.nodes:
        if REGISTRY[n.op].circom(n, [g.tensors[i] for i in n.inputs], g.tensors[n.output], bounds[n.name]) is None:
            alias[n.output] = alias.get(n.inputs[0], n.inputs[0])
    fed = {alias.get(o, o): o for o in g.outputs}
    comps = []
    for k, n in enumerate(g.nodes):
        op = REGISTRY[n.op]
        ins, out = [g.tensors[i] for i in n.inputs], g.tensors[n.output]
        spec_out = op.circom(n, ins, out, bounds[n.name])
        if spec_out is None:
            continue
        spec = SPECS[n.op]
        case = OpCase(spec, n.params, ins, out, bounds[n.name], *spec_out)
        ports = list(spec.ports(case))
        inputs = {p: [int(v) for v in env[i].reshape(-1)] for p, i in zip(ports, n.inputs)}
        comps.append((n, case, f"main.{f'n{k}_{_ident(n.name)}'[:60]}", inputs, fed.get(n.output)))
    return g, q, comps


def _publics(layout, graph_out: str | None, i: int, value_of) -> dict:
    """The public signal(s) an attacker must update when lane i of graph output `graph_out` changes."""
    if graph_out is None:
        return {}
    lay = layout[graph_out]
    if not lay["packed"]:
        return {f"main.out[{lay['offset'] + i}]": None}
    return {f"main.out[{lay['offset'] + i // lay['lanes']}]": (i % lay["lanes"]) * lay["bits"]}


def _attack_model(build: Path, c: Circuit, w: list[int], inp: Path, per_node: int | None) -> collections.Counter:
    from zkml.api import load_graph
    g = load_graph(build)
    layout = _public_layout(build, g)
    g, q, comps = _model_components(build, inp)
    tried: collections.Counter = collections.Counter()
    for node, case, prefix, inputs, graph_out in comps:
        spec = case.spec
        lane_name = lambda i, prefix=prefix: [f"{prefix}.out[{i}]"]  # noqa: E731
        honest = dict(spec.honest_models(case, prefix, inputs, lane_name))
        for comp, m in honest.items():
            check_covers(c, m, comp)
            honest_model_matches(c, w, m)
        forgeries = spec.forgeries(case, prefix, inputs, lane_name)
        if per_node is not None:      # sampled instances: the first and the last output
            n_inst = case.out.size
            keep = {0, n_inst - 1}
            forgeries = [f for f in forgeries if _instance(f, prefix) in keep]
        for f in forgeries:
            i = _instance(f, prefix)
            new_lane = f.assign[f"{prefix}.out[{i}]"]
            for name, shift in _publics(layout, graph_out, i, None).items():
                if shift is None:
                    f.assign[name] = new_lane
                else:           # packed word: replace lane i's contribution
                    old_lane = c.value(w, name) >> shift & ((1 << layout[graph_out]["bits"]) - 1)
                    f.assign[name] = (c.value(w, name) + (new_lane - old_lane) * (1 << shift)) % P
            _attack(c, w, f, prefix, tried, node.op)
    bits = g.tensors[g.inputs[0]].bits
    for i in (0, g.tensors[g.inputs[0]].size - 1):
        for f in range_forgeries("main.input_range", i, bits, [f"main.in[{i}]"]):
            _attack(c, w, f, "main.input_range", tried, "UintRange")
    return tried


def _instance(f, prefix: str) -> int:
    """The output index an attack targets (rq[i] / pos[i] / out[i] of the component)."""
    for key in f.assign:
        if key.startswith(prefix + ".out["):
            return int(key[len(prefix) + 5:].split("]")[0])
    raise AssertionError(f"forgery {f.label} sets no output of {prefix}")


def test_model_components_forgeries_rejected(zoo_build):
    """Every component of a compiled model that uses every template, every instance, every attack."""
    build, c, w, inp = zoo_build
    from zkml.api import load_graph
    ops = {n.op for n in load_graph(build).nodes}
    assert {"Relu", "Dense", "Add", "Reshape"} <= ops, ops
    tried = _attack_model(build, c, w, inp, per_node=None)
    for op in ("Relu", "Dense", "Add", "UintRange"):
        kinds = {a for o, a in tried if o == op}
        assert kinds, f"no attack on the {op} component"
        if op in SPECS:
            need = set(SPECS[op].attacks) - {"clamp_wrong_side", "relu_wrong_side", "output_negative"}
            assert need <= kinds, (op, sorted(need - kinds))
    print(f"\nzoo model: {sum(tried.values())} forged witnesses rejected: {dict(tried)}")


def test_digits_forgeries_rejected(digits_build):
    """The digits example (3 Dense layers, 4k constraints): the first and last output of each layer."""
    build, c, w, inp = digits_build
    tried = _attack_model(build, c, w, inp, per_node=2)
    assert tried[("Dense", "quotient_plus_one")] >= 6, dict(tried)
    print(f"\ndigits: {sum(tried.values())} forged witnesses rejected: {dict(tried)}")
