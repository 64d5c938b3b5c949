"""Template vs kernel: the circom witness of every hand-written template equals the Python
integer kernel of its operator, bit for bit.

Parameters come from the real code path: each operator's `quantize` (with the real
`quantize.Ctx` and `QuantConfig`) turns float weights/ranges into its Params, its `bounds`
rule computes K/SHIFT/QBITS/LO/HI/OFF/CLAMP_*, and its `circom` method gives the template
name and arguments, wrapped here in a tiny `main`. RequantClamp is driven directly by
`requant_bounds` / `requant_args` over a chosen accumulator range.

Each compiled circuit is fed many inputs (all zeros, all max, zero points, inputs that reach
the accumulator's exact min/max, rounding and clamping boundaries, random values), batched
into array signals / Dense rows so that one witness computation covers dozens of cases.
Parameter sets include clamping on both sides (CLAMP_LO = CLAMP_HI = 1), on one side, and
none (the bounds prove q cannot cross LO/HI).
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from circuit_harness import O1, O2, REQUANT_MAIN, compile_circuit, r1cs_of
from zkml.emit import _circom_value
from zkml.fgraph import FNode
from zkml.ir import FIELD_SAFE_BITS, Node
from zkml.ops import REGISTRY
from zkml.ops._requant import requant_args, requant_bounds, requant_constraints, requant_kernel, requant_path
from zkml.quantize import Ctx, QuantConfig


# --------------------------------------------------------------------------- helpers
def wrap(template: str, args: list, include: str, ports: dict[str, int], n_out: int) -> str:
    """A main template instantiating `template(args)` with inputs `ports` (name -> size)."""
    funcs, rendered = [], []
    for name, v in args:
        if isinstance(v, (list, tuple)):
            funcs.append(f"function arg_{name}() {{\n    return {_circom_value(v)};\n}}\n")
            rendered.append(f"arg_{name}()")
        else:
            rendered.append(f"{_circom_value(v)} /*{name}*/")
    ins = "".join(f"    signal input {p}[{n}];\n" for p, n in ports.items())
    wires = "".join(f"    op.{p} <== {p};\n" for p in ports)
    return (f'pragma circom 2.1.0;\ninclude "{include}";\n\n{"".join(funcs)}\n'
            f"template Main() {{\n{ins}    signal output out[{n_out}];\n"
            f"    component op = {template}({', '.join(rendered)});\n{wires}    out <== op.out;\n}}\n\n"
            "component main = Main();\n")


def outputs(circuit, values, n: int) -> list[int]:
    return [circuit.value(values, f"main.out[{i}]") for i in range(n)]


def make_ctx(shapes: dict, ranges: dict, cfg: QuantConfig, inputs: list[str]) -> Ctx:
    fg = SimpleNamespace(opset=13, constants={}, shapes=shapes)
    ctx = Ctx(fg, ranges, cfg)
    for name in inputs:
        ctx.new_tensor(name)
    return ctx


def build_node(op_name: str, fnode: FNode, ctx: Ctx):
    """quantize -> Node -> bounds -> circom(): the path zkml.quantize/emit take."""
    op = REGISTRY[op_name]
    params, out = op.quantize(fnode, ctx)
    node = Node(op_name, fnode.name, list(fnode.inputs), out.name, params)
    ins = [ctx.tensor(i) for i in fnode.inputs]
    b = op.bounds(node, ins, out)
    assert b.max_bits <= FIELD_SAFE_BITS
    template, args = op.circom(node, ins, out, b)
    return op, params, ins, out, b, template, args


def flags(b) -> tuple[int, int]:
    return b.circuit["CLAMP_LO"], b.circuit["CLAMP_HI"]


# --------------------------------------------------------------------------- RequantClamp

# (id, amin, amax, shift, zp, lo, bits, expected (CLAMP_LO, CLAMP_HI))
REQUANT_CASES = [
    ("clamp_both_relu", -600, 600, 4, 5, 5, 4, (1, 1)),
    ("clamp_none", -25600, 25600, 8, 128, 0, 8, (0, 0)),
    ("clamp_hi_only", 0, 10000, 3, 0, 0, 8, (0, 1)),
    ("clamp_lo_only", -5000, 1000, 5, 50, 50, 8, (1, 0)),
    ("shift1_uint1_output", -3, 3, 1, 0, 0, 1, (1, 1)),
    ("wide_near_252_bits", -(1 << 250), 1 << 250, 150, 7, 7, 8, (1, 1)),
    ("wide_no_clamp_16bit", -(1 << 100), 1 << 100, 86, 1 << 15, 0, 16, (0, 0)),
    ("aligned_uint8", -(1 << 20), 1 << 20, 12, 128, 0, 8, (1, 1)),
    ("aligned_uint4_zp", -600, 600, 4, 3, 0, 4, (1, 1)),
    ("aligned_relu_zp0", -(1 << 20), 1 << 21, 11, 0, 0, 8, (1, 1)),
]
# the way each case clamps (circuits/requant.circom; zkml/ops/_requant.py requant_path)
REQUANT_PATHS = {"clamp_both_relu": "comparators", "clamp_none": "none", "clamp_hi_only": "comparators",
                 "clamp_lo_only": "comparators", "shift1_uint1_output": "aligned",
                 "wide_near_252_bits": "comparators", "wide_no_clamp_16bit": "none", "aligned_uint8": "aligned",
                 "aligned_uint4_zp": "aligned", "aligned_relu_zp0": "aligned"}


def requant_accs(amin, amax, shift, zp, lo, bits, rng, n_random=12) -> list[int]:
    """Edge accumulators: range ends, zero, rounding boundaries around every output where the
    kernel's behaviour changes (lo, zp, 2^bits - 1), and random values in [amin, amax]."""
    half, unit = 1 << (shift - 1), 1 << shift
    acc = {amin, amin + 1, amax - 1, amax, 0, 1, -1, half, -half, half - 1, -half - 1}
    for t in (lo - 1, lo, lo + 1, zp, (1 << bits) - 1, 1 << bits):
        edge = (t - zp) * unit - half            # smallest acc with floor((acc+half)/unit) = t - zp
        acc |= {edge - 1, edge, edge + 1}
    span = amax - amin
    acc |= {amin + int(rng.integers(0, 1 << 62)) * span // (1 << 62) for _ in range(n_random)}
    return sorted(a for a in acc if amin <= a <= amax)


@pytest.mark.parametrize("case", REQUANT_CASES, ids=[c[0] for c in REQUANT_CASES])
def test_requant_clamp_matches_requant_kernel(case):
    _, amin, amax, shift, zp, lo, bits, want_flags = case
    b = requant_bounds(amin, amax, shift, zp, lo, bits)
    assert b.max_bits <= FIELD_SAFE_BITS
    assert flags(b) == want_flags, f"parameter set no longer exercises clamping {want_flags}: {b.circuit}"
    c = b.circuit
    accs = requant_accs(amin, amax, shift, zp, lo, bits, np.random.default_rng(shift))
    n_in = [a + (1 << (shift - 1)) + c["K"] * (1 << shift) for a in accs]
    assert all(0 <= n < 1 << (c["SHIFT"] + c["QBITS"]) for n in n_in)   # the template's precondition
    args = ", ".join(str(v) for _, v in requant_args(b))
    circuit = compile_circuit(REQUANT_MAIN.format(args=args, n=len(accs)))
    w = circuit.witness({"in": n_in})
    got = outputs(circuit, w, len(accs))
    want = [int(v) for v in requant_kernel(np.array(accs, dtype=object), shift, zp, lo, bits)]
    bad = [(a, g, k) for a, g, k in zip(accs, got, want) if g != k]
    assert not bad, f"RequantClamp{tuple(requant_args(b))} (acc, witness, kernel): {bad[:5]}"
    # the boundary inputs really reach both clamps where the parameters allow them
    if want_flags[0]:
        assert min(want) == lo
    if want_flags[1]:
        assert max(want) == (1 << bits) - 1


@pytest.mark.parametrize("opt", ["O1", "O2"])
@pytest.mark.parametrize("case", REQUANT_CASES, ids=[c[0] for c in REQUANT_CASES])
def test_requant_clamp_constraint_count(case, opt):
    """requant_constraints (the cost model slicing and the docs use) equals circom's R1CS count of
    one RequantClamp instance, on each way of clamping, at --O1 and --O2; the aligned way costs
    SHIFT + QBITS + 4 at --O2, QBITS - 1 or more below the comparators' SHIFT + 2*QBITS + 4 it
    replaces (the comparator way's QBITS read from the least K)."""
    name, amin, amax, shift, zp, lo, bits, _ = case
    b = requant_bounds(amin, amax, shift, zp, lo, bits)
    c = b.circuit
    assert requant_path(c) == REQUANT_PATHS[name]
    args = ", ".join(str(v) for _, v in requant_args(b))
    circuit = compile_circuit(REQUANT_MAIN.format(args=args, n=1), flags=O1 if opt == "O1" else O2)
    assert r1cs_of(circuit).n_constraints == requant_constraints(c, opt)
    if REQUANT_PATHS[name] == "aligned" and opt == "O2":
        assert requant_constraints(c, opt) == c["SHIFT"] + c["QBITS"] + 4
        q_least = (((amax + (1 << (shift - 1))) >> shift) - min(0, (amin + (1 << (shift - 1))) >> shift)).bit_length()
        assert c["SHIFT"] + 2 * q_least + 4 - requant_constraints(c, opt) >= q_least - 1


# --------------------------------------------------------------------------- Dense
# (id, n_in, n_out, x range, y range, relu, QuantConfig kwargs, W scale, expected flags or None)
DENSE_CASES = [
    ("relu_fused_clamp_both", 6, 3, (-1.0, 2.0), (-0.5, 0.8), True, {}, 1.0, (1, 1)),
    ("per_tensor_no_clamp", 5, 4, (0.0, 1.0), (-60.0, 60.0), False, {"per_channel": False}, 1.0, (0, 0)),
    ("uint4_act_and_weights", 4, 3, (-2.0, 1.0), (-1.0, 1.0), False,
     {"act_bits": 4, "weight_bits": 4}, 1.0, (1, 1)),
    ("uint16_precision32_wide_kernel", 5, 2, (-1.0, 1.0), (-2.0, 3.0), True,
     {"act_bits": 16, "weight_bits": 16, "precision": 32}, 1.0, None),
    # act_bits=32 is accepted by QuantConfig.check (2..32)
    ("uint32_act_precision24", 4, 3, (-1.0, 1.0), (-3.0, 3.0), False,
     {"act_bits": 32, "weight_bits": 8, "precision": 24}, 1.0, None),
    # default QuantConfig; a nearly constant input and small weights against an ordinary bias:
    # the integer bias is ~2^51 (bias / (x_scale * w_scale)) and the multiplier has 16 bits
    ("default_cfg_large_bias_tiny_scales", 3, 2, (-1e-5, 1e-5), (-1.0, 1.0), False, {}, 1e-6, None),
    # tiny weights against a wide output range: the requantization multiplier is ~2^-50,
    # so the shared shift exceeds 63
    ("tiny_multiplier_shift_over_63", 3, 2, (-1e-4, 1e-4), (-10.0, 10.0), False, {}, 1e-9, None),
]


def dense_rows(p, xmax: int, rng, n_random: int) -> np.ndarray:
    """Zeros, all max, all zero point, per output j the inputs reaching acc max and acc min, random."""
    wc = np.array(p.w, dtype=np.int64) - np.array(p.w_zp, dtype=np.int64)[:, None]
    rows = [np.zeros(p.n_in, np.int64), np.full(p.n_in, xmax), np.full(p.n_in, p.x_zp)]
    for j in range(p.n_out):
        pos = wc[j] > 0
        rows += [np.where(pos, xmax, 0), np.where(pos, 0, xmax)]
    rows += [rng.integers(0, xmax, p.n_in, endpoint=True) for _ in range(n_random)]
    return np.array(rows, dtype=np.int64)


def dense_exact(p, x) -> np.ndarray:
    """The kernel's documented formula in Python integers (no fixed-width arithmetic)."""
    out = np.empty((p.rows, p.n_out), dtype=object)
    for r in range(p.rows):
        for j in range(p.n_out):
            acc = sum((int(x[r][k]) - p.x_zp) * (p.w[j][k] - p.w_zp[j]) for k in range(p.n_in)) + p.bias[j]
            q = (acc * p.mult[j] + (1 << (p.shift - 1))) // (1 << p.shift) + p.out_zp
            out[r, j] = min(max(q, p.out_lo), (1 << p.out_bits) - 1)
    return out


@pytest.mark.parametrize("case", DENSE_CASES, ids=[c[0] for c in DENSE_CASES])
def test_dense_matches_kernel(case):
    _, n_in, n_out, xr, yr, relu, cfg_kw, wscale, want_flags = case
    rng = np.random.default_rng(n_in * 10 + n_out)
    cfg = QuantConfig(**cfg_kw)
    W = rng.normal(0, 1, (n_out, n_in)) * wscale
    bias = rng.normal(0, 0.3, n_out)
    xmax = (1 << cfg.act_bits) - 1
    n_rows = 3 + 2 * n_out + 8
    ctx = make_ctx({"x": [n_rows, n_in], "y": [n_rows, n_out]}, {"x": xr, "y": yr}, cfg, ["x"])
    op, p, ins, out, b, template, args = build_node(
        "Dense", FNode("Dense", "fc", ["x"], "y", {"W": W, "b": bias, "relu": relu}), ctx)
    if want_flags is not None:
        assert flags(b) == want_flags, b.circuit
    x = dense_rows(p, xmax, rng, n_rows - 3 - 2 * n_out)
    assert x.shape == (n_rows, n_in)
    circuit = compile_circuit(wrap(template, args, op.template_file, {"in": n_rows * n_in}, n_rows * n_out))
    w = circuit.witness({"in": x.reshape(-1).tolist()})
    got = np.array(outputs(circuit, w, n_rows * n_out), dtype=object).reshape(n_rows, n_out)
    exact = dense_exact(p, x)
    where = f"Dense shift={p.shift} mult={p.mult} x_zp={p.x_zp} {b.circuit}"
    assert (got == exact).all(), f"{where}: template differs from the exact formula: witness {got} exact {exact}"
    want = op.kernel(p, x)
    bad = [(r, j, got[r, j], int(want[r, j])) for r in range(n_rows) for j in range(n_out)
           if got[r, j] != int(want[r, j])]
    assert not bad, (f"{where}: kernel differs from the witness (= exact Python-int formula) at "
                     f"(row, j, witness, kernel) {bad[:6]}; rows {[x[r].tolist() for r, *_ in bad[:2]]}")


# --------------------------------------------------------------------------- AddRequant
# (id, a shape, b shape, a range, b range, out range, relu, cfg kwargs, expected flags or None)
ADD_CASES = [
    ("broadcast_b_relu_clamp_both", [4, 3], [1, 3], (-1.0, 1.0), (-2.0, 0.5), (-0.5, 0.5), True, {}, (1, 1)),
    ("same_shape_no_clamp", [12], [12], (-1.0, 1.0), (0.0, 3.0), (-20.0, 20.0), False, {}, (0, 0)),
    ("broadcast_a_uint4", [1, 3], [4, 3], (0.0, 1.0), (-1.0, 1.0), (-0.8, 0.8), False, {"act_bits": 4}, None),
    ("scalar_b_uint16", [2, 5], [1], (-3.0, 1.0), (-1.0, 1.0), (-2.0, 2.0), True, {"act_bits": 16}, None),
]


@pytest.mark.parametrize("case", ADD_CASES, ids=[c[0] for c in ADD_CASES])
def test_add_requant_matches_kernel(case):
    _, sa, sb, ra, rb, ro, relu, cfg_kw, want_flags = case
    cfg = QuantConfig(**cfg_kw)
    so = list(np.broadcast_shapes(tuple(sa), tuple(sb)))
    ctx = make_ctx({"a": sa, "b": sb, "y": so}, {"a": ra, "b": rb, "y": ro}, cfg, ["a", "b"])
    op, p, ins, out, b, template, args = build_node(
        "Add", FNode("Add", "sum", ["a", "b"], "y", {"relu": relu}), ctx)
    if want_flags is not None:
        assert flags(b) == want_flags, b.circuit
    na, nb, qmax = ins[0].size, ins[1].size, (1 << cfg.act_bits) - 1
    circuit = compile_circuit(wrap(template, args, op.template_file, {"a": na, "b": nb}, out.size))
    rng = np.random.default_rng(na + nb)
    pairs = [(np.zeros(na), np.zeros(nb)), (np.full(na, qmax), np.full(nb, qmax)),
             (np.full(na, p.a_zp), np.full(nb, p.b_zp)), (np.full(na, qmax), np.zeros(nb)),
             (np.zeros(na), np.full(nb, qmax))]
    pairs += [(rng.integers(0, qmax, na, endpoint=True), rng.integers(0, qmax, nb, endpoint=True))
              for _ in range(3)]
    seen = []
    for a, bb in pairs:
        a, bb = np.asarray(a, np.int64), np.asarray(bb, np.int64)
        w = circuit.witness({"a": a.tolist(), "b": bb.tolist()})
        got = outputs(circuit, w, out.size)
        want = [int(v) for v in op.kernel(p, a, bb)]
        assert got == want, f"AddRequant {b.circuit} a={a.tolist()} b={bb.tolist()}: witness {got} kernel {want}"
        seen += want
    if want_flags == (1, 1):
        assert p.out_lo in seen and (1 << cfg.act_bits) - 1 in seen   # both clamps were reached


# --------------------------------------------------------------------------- ReluZp
# (id, x range, act_bits, expected zero point class)
RELU_CASES = [
    ("zp0_passthrough", (0.0, 1.0), 8, "zero"),
    ("zp_mid", (-1.0, 1.0), 8, "mid"),
    ("zp_max_all_negative", (-1.0, 0.0), 8, "max"),
    ("uint4", (-0.3, 1.0), 4, "mid"),
    ("uint16", (-2.0, 1.0), 16, "mid"),
]


@pytest.mark.parametrize("case", RELU_CASES, ids=[c[0] for c in RELU_CASES])
def test_relu_zp_matches_kernel(case):
    _, xr, act_bits, zp_class = case
    qmax = (1 << act_bits) - 1
    n = min(qmax + 1, 256)
    cfg = QuantConfig(act_bits=act_bits)
    ctx = make_ctx({"x": [n], "y": [n]}, {"x": xr}, cfg, ["x"])
    op, p, ins, out, b, template, args = build_node("Relu", FNode("Relu", "relu", ["x"], "y", {}), ctx)
    assert {"zero": p.zp == 0, "max": p.zp == qmax, "mid": 0 < p.zp < qmax}[zp_class], p
    if qmax < 256:
        x = np.arange(qmax + 1)                  # every input value
    else:                                         # edges around 0, zp and max, then random
        rng = np.random.default_rng(act_bits)
        edge = {0, 1, p.zp - 1, p.zp, p.zp + 1, qmax - 1, qmax}
        x = np.array(sorted(edge) + list(rng.integers(0, qmax, n - len(edge), endpoint=True)))
    circuit = compile_circuit(wrap(template, args, op.template_file, {"in": n}, n))
    w = circuit.witness({"in": x.tolist()})
    got = outputs(circuit, w, n)
    want = [int(v) for v in op.kernel(p, x)]
    bad = [(int(xi), g, k) for xi, g, k in zip(x, got, want) if g != k]
    assert not bad, f"ReluZp(N={n}, BITS={p.bits}, ZP={p.zp}) (x, witness, kernel): {bad[:5]}"
