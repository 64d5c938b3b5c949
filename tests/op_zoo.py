"""Test helper (not a test file): every registered operator as a tiny standalone circuit, with
the attacks that apply to it and the hypothesis strategies of its parameters and inputs.

`SPECS` is keyed by IR operator name (the keys of `zkml.ops.REGISTRY`). A registered operator
whose `circom()` emits a template must have a spec here: tests/test_op_attacks.py and
tests/test_properties.py parametrize over the registry and FAIL for an operator without one
("add attacks for op X"). Operators that only relabel signals (`circom()` returns None) are
listed in `RELABELING` with the reason they have nothing to attack.

Every case goes through the real code path: the operator's `quantize` (real `quantize.Ctx`
and `QuantConfig`) makes its Params from float weights and ranges, its `bounds` rule the
circuit constants, its `circom` method the template name and arguments (test_templates'
`make_ctx` / `build_node`). `OpCase.source(k)` wraps k independent copies of the component
in a `main` (inputs and outputs concatenated copy after copy), so one witness computation
checks k cases; attacks target `main.op[c]`. As in every model zkml emits, the component's
inputs come from a range-checked producer (a UintRange on each input port): the templates'
precondition. Without it an attack could "change the output" of a relabeling-like instance
(ReluZp with ZP = 0 is `out <== in`) by silently changing the private input it aliases.

The attacker's signal models (RequantClamp, circomlib LessThan / Num2Bits) are those of
tests/test_forgery.py: every signal that is a deterministic function of the lie is recomputed
by the template's own formulas, so an attack is the attacker's best effort to stay consistent.

Adding an operator (append at the END of this file, one section per operator):

    MYOP_ATTACKS = ["...", ...]               # attack kind names (reuse REQUANT_ATTACKS where it fits)

    class MyOpSpec(OpSpec):                   # or RequantOpSpec if every output is one RequantClamp rq[i]
        name, template_file = "MyOp", "myop.circom"     # REGISTRY key and its template file
        attacks = MYOP_ATTACKS
        attack_cfgs = [dict(...), ...]        # build() kwargs; together they must apply every attack
        def build(self, **cfg) -> OpCase      # the op's real quantize/bounds/circom (build_node)
        def forgeries(...) / honest_models(...)          # (RequantOpSpec: requant_ns instead)
        @staticmethod
        def param_strategy(): ...             # hypothesis strategy of build() kwargs
        # optional: ports(), edge_inputs(), input_strategy(), kernel()

    SPECS.update({s.name: s for s in (MyOpSpec(),)})

A build() whose parameters make the operator emit no component raises `_NoTemplate` (the
property test then discards that example). Nothing else needs editing: both suites pick the
spec up from `SPECS`.
"""
from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from hypothesis import strategies as st

from circuit_harness import P
from test_forgery import ge_bit, less_than, num2bits, requant_model
from test_templates import build_node, make_ctx
from zkml.emit import _circom_value
from zkml.fgraph import FNode
from zkml.ir import Tensor
from zkml.ops import REGISTRY, Bounds
from zkml.ops._requant import requant_args, requant_path
from zkml.quantize import QuantConfig

INV = lambda x: pow(x, -1, P)  # noqa: E731

# Operators with no template: the emitter wires the consumer to the producer's signals.
RELABELING = {
    "Reshape": "Reshape/Flatten/Identity/Dropout relabel the producer's signals: circom() returns None, "
               "no signal and no constraint exist to forge (the producer's constraints pin the values)",
}

# Attack kinds (the names tests/test_op_attacks.py and docs/SOUNDNESS.md use)
REQUANT_ATTACKS = [
    "quotient_plus_one",          # q+1, r - 2^S: r field-negative
    "quotient_minus_one",         # q-1, r + 2^S: r >= divisor
    "remainder_ge_divisor",       # q-2 and q=0 (r = N): r >= 2*divisor
    "field_negative_remainder",   # r = p - k, q = (N + k) / 2^S in the field
    "other_remainder",            # any other r' < 2^S, q' = (N - r') / 2^S in the field
    "output_above_bits",          # out = 2^bits: q = HI + 1 and the HI comparator claims "not above"
    "output_negative",            # out = -1 (p - 1): q = OFF - 1 and the LO comparator claims "not below"
    "clamp_wrong_side",           # a clamp comparator bit flipped, everything recomputed from it
    "output_off_by_one",          # out +-1 with every hint honest
]
RELU_ATTACKS = [
    "relu_wrong_side",            # comparator (ZP < x) flipped: out = x - ZP for x <= ZP, 0 for x > ZP
    "output_negative",            # x < ZP with out = x - ZP (a field-negative value)
    "output_above_bits",          # out + 2^BITS
    "output_off_by_one",
]
RANGE_ATTACKS = [
    "input_above_bits",           # in >= 2^BITS with its low bits in the decomposition
    "field_negative_input",       # in = p - k
]


# =========================================================================== cases
@dataclass
class OpCase:
    spec: "OpSpec"
    params: Any
    ins: list[Tensor]
    out: Tensor
    bounds: Bounds
    template: str
    args: list
    cfg: dict = field(default_factory=dict)

    @property
    def ports(self) -> dict[str, int]:
        return self.spec.ports(self)

    @property
    def n_out(self) -> int:
        return self.out.size

    def source(self, k: int = 1) -> str:
        """circom source of a main with k independent copies of the component."""
        funcs, rendered = [], []
        for name, v in self.args:
            if isinstance(v, (list, tuple)):
                funcs.append(f"function arg_{name}() {{\n    return {_circom_value(v)};\n}}\n")
                rendered.append(f"arg_{name}()")
            else:
                rendered.append(f"{_circom_value(v)} /*{name}*/")
        ports = self.ports
        decl = "".join(f"    signal input {p}[{k * n}];\n" for p, n in ports.items())
        # as in every emitted model, the component's inputs come from range-checked producers
        decl += "".join(f"    component range_{p} = UintRange({k * n}, {t.bits});\n    range_{p}.in <== {p};\n"
                        for (p, n), t in zip(ports.items(), self.ins))
        # the copy counter is `cp`, not `c`: Concat's third input port is named c
        wires = "".join(f"        for (var i = 0; i < {n}; i++) {{ op[cp].{p}[i] <== range_{p}.out[cp * {n} + i]; }}\n"
                        for p, n in ports.items())
        return (f'pragma circom 2.1.0;\ninclude "range.circom";\ninclude "{self.spec.template_file}";\n\n'
                f'{"".join(funcs)}\n'
                f"template Main() {{\n{decl}    signal output out[{k * self.n_out}];\n"
                f"    component op[{k}];\n    for (var cp = 0; cp < {k}; cp++) {{\n"
                f"        op[cp] = {self.template}({', '.join(rendered)});\n{wires}"
                f"        for (var i = 0; i < {self.n_out}; i++) {{ out[cp * {self.n_out} + i] <== op[cp].out[i]; }}\n"
                "    }\n}\n\ncomponent main = Main();\n")

    def kernel(self, inputs: dict[str, list[int]]) -> list[int]:
        return self.spec.kernel(self, inputs)


def stack_inputs(case: OpCase, batch: list[dict[str, list[int]]]) -> dict[str, list[int]]:
    """k per-copy input dicts -> the main's concatenated input arrays."""
    return {p: [int(v) for b in batch for v in b[p]] for p in case.ports}


# =========================================================================== attacks
@dataclass
class Forgery:
    attack: str
    label: str
    assign: dict                      # signal name -> value (mod p)
    free_bits: list = field(default_factory=list)   # bits an attacker may still choose
    instance: str = ""                # the attacked instance (e.g. main.op[0].rq[3])
    regime: str = ""                  # where the honest value lies (clamped low, inside, ...)
    # the signal(s) carrying the lie: when the optimizer eliminated all of them, the lie is not
    # expressible (e.g. a private input replaced by the sum of its range-check bits) and
    # enumerating the free bits would only find honest witnesses of other inputs
    lie: list = field(default_factory=list)


def requant_forgeries(prefix: str, n: int, c: dict, bits: int, out_names: list[str]) -> list[Forgery]:
    """Every requantization attack on one RequantClamp instance at `prefix` with input N = n."""
    S = c["SHIFT"]
    q = n >> S
    out: list[Forgery] = []
    regime = requant_regime(n, c)

    # the decompositions that must reject each attack (their bits are the attacker's free choice):
    # the remainder's rBits, and what bounds q: each clamp comparator's n2b (circuits/requant.circom)
    # or, without a clamp, q's own Num2Bits. On the aligned way "rBits" and "qBits" name the low
    # SHIFT and the high QBITS bits of the one decomposition of N (nBits), which carry the lie.
    aligned = requant_path(c) == "aligned"
    q_check = ["qBits"] if aligned else \
        [g for g, on in (("above", c["CLAMP_HI"]), ("below", c["CLAMP_LO"])) if on] or ["qBits"]
    Q = c["QBITS"]
    if aligned:
        named = {"rBits": [f"{prefix}.nBits.out[{i}]" for i in range(S)],
                 "qBits": [f"{prefix}.nBits.out[{S + i}]" for i in range(Q)]}
        lie = named["qBits"]
    else:
        named = {"rBits": [f"{prefix}.rBits.out[{i}]" for i in range(S)],
                 "qBits": [f"{prefix}.qBits.out[{i}]" for i in range(Q)]}
        lie = [f"{prefix}.q"]

    def model(attack, label, qq, catch, **kw):
        m = requant_model(prefix, n, c, qq % P, **kw)
        for name in out_names:
            m[name] = m[f"{prefix}.out"]
        bits_of = [b for g in catch if g in named for b in named[g]]
        bits_of += [f"{prefix}.{g}.n2b.out[{i}]" for g in catch if g in ("above", "below") for i in range(Q + 1)]
        out.append(Forgery(attack, label, m, bits_of, prefix, regime, lie))

    model("quotient_plus_one", "q+1", q + 1, ["rBits"])
    model("quotient_minus_one", "q-1", q - 1, ["rBits"])
    model("remainder_ge_divisor", "q-2", q - 2, ["rBits"])
    if q > 0:
        model("remainder_ge_divisor", "q=0,r=N", 0, ["rBits"])
    for k in (1, (1 << S) - 1, 1 << 100):
        model("field_negative_remainder", f"r=p-{k}", (n + k) * INV(1 << S), ["rBits", *q_check])
    for r2 in sorted({0, (1 << S) - 1, (n + 1) % (1 << S)} - {n % (1 << S)}):
        model("other_remainder", f"r'={r2}", (n - r2) * INV(1 << S), q_check)
    honest = requant_model(prefix, n, c, q)
    if aligned:
        # the clamp is read from q's bits: to publish q = HI + 1 or OFF - 1 the attacker must also
        # claim the IsZero says "in range" / flip the top bit, i.e. lie in q's decomposition
        model("output_above_bits", "q=HI+1", c["HI"] + 1, ["rBits", "qBits"], in_range=1)
        model("output_negative", "q=OFF-1", c["OFF"] - 1, ["rBits", "qBits"], top_flip=True)
        model("clamp_wrong_side", "inRange flipped", q, [], in_range=1 - honest[f"{prefix}.inRange.out"])
        model("clamp_wrong_side", "top bit flipped", q, ["qBits"], top_flip=True)
    else:
        kw_hi = {"above": 0} if c["CLAMP_HI"] else {}
        model("output_above_bits", "q=HI+1", c["HI"] + 1, ["rBits", *kw_hi], **kw_hi)
        kw_lo = {"below": 0} if c["CLAMP_LO"] else {}
        model("output_negative", "q=OFF-1", c["OFF"] - 1, ["rBits", *kw_lo], **kw_lo)
    if c["CLAMP_HI"] and not aligned:
        model("clamp_wrong_side", "above flipped", q, ["above"], above=1 - honest[f"{prefix}.above.out"])
    if c["CLAMP_LO"] and not aligned:
        model("clamp_wrong_side", "below flipped", q, ["below"], below=1 - honest[f"{prefix}.below.out"])
    for d in (1, -1):
        model("output_off_by_one", f"out{d:+d}", q, [], out_delta=d)   # caught by the output constraint
    assert {f.attack for f in out} >= set(REQUANT_ATTACKS) - {"clamp_wrong_side"}
    _ = bits  # the output width is implied by HI - OFF = 2^bits - 1
    return out


def requant_regime(n: int, c: dict) -> str:
    """Where an honest RequantClamp instance lies: which clamp (if any) acts, and remainder edges."""
    S = c["SHIFT"]
    q, r = n >> S, n % (1 << S)
    where = ("q=0" if q == 0 else "below LO" if q < c["LO"] else "at LO" if q == c["LO"] else
             "above HI" if q > c["HI"] else "at HI" if q == c["HI"] else "inside")
    return where + (", r=0" if r == 0 else ", r=max" if r == (1 << S) - 1 else "")


def requant_honest(prefix: str, n: int, c: dict, out_names: list[str]) -> dict:
    m = requant_model(prefix, n, c, n >> c["SHIFT"])
    for name in out_names:
        m[name] = m[f"{prefix}.out"]
    return m


def relu_model(prefix: str, i: int, x: int, zp: int, bits: int, pos: int | None = None,
               out_delta: int = 0, out_names: list[str] = ()) -> dict:
    m = {}
    if zp == 0:
        y = x + out_delta
    else:
        p = less_than(m, f"{prefix}.pos[{i}]", zp, x, bits, pos)
        y = p * (x - zp) + out_delta
    m[f"{prefix}.out[{i}]"] = y
    for name in out_names:
        m[name] = y
    return m


def relu_forgeries(prefix: str, i: int, x: int, zp: int, bits: int, out_names: list[str]) -> list[Forgery]:
    out = _relu_forgeries(prefix, i, x, zp, bits, out_names)
    regime = ("x=0" if x == 0 else "x<ZP" if x < zp else "x=ZP" if x == zp else "x=max" if x == (1 << bits) - 1
              else "x>ZP")
    for f in out:
        f.instance, f.regime = f"{prefix}[{i}]", regime
    return out


def _relu_forgeries(prefix: str, i: int, x: int, zp: int, bits: int, out_names: list[str]) -> list[Forgery]:
    out = []
    free = [f"{prefix}.pos[{i}].n2b.out[{b}]" for b in range(bits + 1)]
    if zp:
        honest = 1 if zp < x else 0
        out.append(Forgery("relu_wrong_side", f"x={x} pos flipped",
                           relu_model(prefix, i, x, zp, bits, pos=1 - honest, out_names=out_names), free))
        if x < zp:
            out.append(Forgery("output_negative", f"x={x} out=x-ZP",
                               relu_model(prefix, i, x, zp, bits, pos=1, out_names=out_names), free))
    out.append(Forgery("output_above_bits", f"x={x} out+2^BITS",
                       relu_model(prefix, i, x, zp, bits, out_delta=1 << bits, out_names=out_names)))
    if zp == 0:
        out.append(Forgery("output_negative", f"x={x} out=-1-x",
                           relu_model(prefix, i, x, zp, bits, out_delta=-1 - x, out_names=out_names)))
    for d in (1, -1):
        out.append(Forgery("output_off_by_one", f"x={x} out{d:+d}",
                           relu_model(prefix, i, x, zp, bits, out_delta=d, out_names=out_names)))
    return out


def range_forgeries(prefix: str, i: int, bits: int, in_names: list[str]) -> list[Forgery]:
    out = []
    for attack, v in (("input_above_bits", 1 << bits), ("input_above_bits", (1 << bits) + 5),
                      ("input_above_bits", 1 << 200), ("field_negative_input", P - 1),
                      ("field_negative_input", P - (1 << bits))):
        m = {f"{prefix}.in[{i}]": v, f"{prefix}.out[{i}]": v}
        for name in in_names:
            m[name] = v
        num2bits(m, f"{prefix}.bits[{i}]", v, bits)
        out.append(Forgery(attack, f"in={v if v < 1 << 64 else hex(v)[:12] + '...'}", m,
                           [f"{prefix}.bits[{i}].out[{b}]" for b in range(bits)], f"{prefix}[{i}]", "input",
                           [f"{prefix}.in[{i}]", *in_names]))
    return out


# =========================================================================== specs
class OpSpec:
    name = ""
    template_file = ""
    attacks: list[str] = []
    attack_cfgs: list[dict] = []       # parameter sets of the attack circuits (cover every clamp mode)

    def build(self, **cfg) -> OpCase:  # pragma: no cover - interface
        raise NotImplementedError

    def make(self, **cfg) -> OpCase:
        case = self.build(**cfg)
        case.cfg = dict(cfg)
        return case

    def ports(self, case: OpCase) -> dict[str, int]:
        return {"in": case.ins[0].size}

    def kernel(self, case: OpCase, inputs: dict) -> list[int]:
        op = REGISTRY[self.name]
        args = [np.array(inputs[p], dtype=np.int64) for p in self.ports(case)]
        return [int(v) for v in np.asarray(op.kernel(case.params, *args)).reshape(-1)]

    def edge_inputs(self, case: OpCase) -> list[dict]:
        """Zeros, all max, zero points: every port at the same edge value."""
        vals = {0, case.ins[0].qmax, case.ins[0].zero_point}
        return [{p: [v] * n for p, n in self.ports(case).items()} for v in sorted(vals)]

    def input_strategy(self, case: OpCase):
        """One case: {port: [ints]} with edge values mixed in."""
        def port(n, t: Tensor):
            edge = st.sampled_from(sorted({0, 1, t.zero_point, max(t.zero_point - 1, 0),
                                           min(t.zero_point + 1, t.qmax), t.qmax - 1, t.qmax}))
            v = st.one_of(edge, st.integers(0, t.qmax))
            return st.lists(v, min_size=n, max_size=n)
        ports = self.ports(case)
        return st.fixed_dictionaries({p: port(n, t) for (p, n), t in zip(ports.items(), case.ins)})

    def forgeries(self, case: OpCase, prefix: str, inputs: dict, out_names: Callable[[int], list[str]]) -> list[Forgery]:
        raise NotImplementedError  # pragma: no cover

    def honest_models(self, case: OpCase, prefix: str, inputs: dict, out_names) -> list[dict]:
        raise NotImplementedError  # pragma: no cover


class RequantOpSpec(OpSpec):
    """An operator whose every output is one RequantClamp instance rq[i] (Dense, Add)."""
    attacks = REQUANT_ATTACKS

    def requant_ns(self, case: OpCase, inputs: dict) -> list[int]:  # pragma: no cover - interface
        raise NotImplementedError

    def forgeries(self, case, prefix, inputs, out_names):
        c = case.bounds.circuit
        return [f for i, n in enumerate(self.requant_ns(case, inputs))
                for f in requant_forgeries(f"{prefix}.rq[{i}]", n, c, case.out.bits, out_names(i))]

    def honest_models(self, case, prefix, inputs, out_names):
        c = case.bounds.circuit
        return [(f"{prefix}.rq[{i}]", requant_honest(f"{prefix}.rq[{i}]", n, c, out_names(i)))
                for i, n in enumerate(self.requant_ns(case, inputs))]


class DenseSpec(RequantOpSpec):
    name, template_file = "Dense", "dense.circom"
    attack_cfgs = [
        dict(n_in=3, n_out=2, relu=True, x=(-1.0, 2.0), y=(-0.3, 0.5), seed=1),         # clamps both sides
        dict(n_in=3, n_out=2, relu=False, x=(0.0, 1.0), y=(-60.0, 60.0), seed=2,
             per_channel=False),                                                      # no clamp
        dict(n_in=2, n_out=2, relu=False, x=(-2.0, 1.0), y=(-1.0, 1.0), seed=3, act_bits=4,
             weight_bits=4, rows=2),                                                  # uint4, 2 rows
    ]

    def build(self, n_in=3, n_out=2, rows=1, relu=False, x=(-1.0, 1.0), y=(-1.0, 1.0), seed=0,
              act_bits=8, weight_bits=8, per_channel=True, precision=16, wscale=1.0, **_):
        cfg = QuantConfig(act_bits, weight_bits, per_channel, precision)
        rng = np.random.default_rng(seed)
        W = rng.normal(0, 1, (n_out, n_in)) * wscale
        b = rng.normal(0, 0.3, n_out)
        ctx = make_ctx({"x": [rows, n_in], "y": [rows, n_out]}, {"x": x, "y": y}, cfg, ["x"])
        op, p, ins, out, bd, template, args = build_node(
            "Dense", FNode("Dense", "fc", ["x"], "y", {"W": W, "b": b, "relu": relu}), ctx)
        return OpCase(self, p, ins, out, bd, template, args)

    def requant_ns(self, case, inputs):
        p, c = case.params, case.bounds.circuit
        xs = inputs["in"]
        ns = []
        for r in range(p.rows):
            for j in range(p.n_out):
                acc = sum((xs[r * p.n_in + k] - p.x_zp) * (p.w[j][k] - p.w_zp[j]) for k in range(p.n_in)) + p.bias[j]
                ns.append(acc * p.mult[j] + (1 << (c["SHIFT"] - 1)) + c["K"] * (1 << c["SHIFT"]))
        return ns

    def edge_inputs(self, case):
        p, xmax = case.params, case.ins[0].qmax
        wc = np.array(p.w, dtype=np.int64) - np.array(p.w_zp, dtype=np.int64)[:, None]
        rows = super().edge_inputs(case)
        for j in range(p.n_out):     # the rows reaching output j's accumulator max and min
            pos = wc[j] > 0
            for row in (np.where(pos, xmax, 0), np.where(pos, 0, xmax)):
                rows.append({"in": [int(v) for v in np.tile(row, p.rows)]})
        return rows

    @staticmethod
    def param_strategy():
        return st.fixed_dictionaries(dict(
            n_in=st.integers(1, 6), n_out=st.integers(1, 4), rows=st.integers(1, 2), relu=st.booleans(),
            x=st.tuples(st.sampled_from([-2.0, -1.0, -0.1, 0.0]), st.sampled_from([0.05, 1.0, 3.0])),
            y=st.tuples(st.sampled_from([-40.0, -1.0, -0.2, 0.0]), st.sampled_from([0.3, 1.0, 40.0])),
            seed=st.integers(0, 2 ** 16), act_bits=st.sampled_from([2, 4, 8, 12, 16]),
            weight_bits=st.sampled_from([2, 4, 8]), per_channel=st.booleans(),
            precision=st.sampled_from([8, 16, 24]), wscale=st.sampled_from([1e-3, 1.0, 30.0])))


class AddSpec(RequantOpSpec):
    name, template_file = "Add", "add.circom"
    attack_cfgs = [
        dict(sa=[2, 2], sb=[1, 2], relu=True, ra=(-1.0, 1.0), rb=(-2.0, 0.5), ro=(-0.5, 0.5)),  # clamps both
        dict(sa=[3], sb=[3], relu=False, ra=(-1.0, 1.0), rb=(0.0, 3.0), ro=(-20.0, 20.0)),       # no clamp
    ]

    def build(self, sa=(3,), sb=(3,), relu=False, ra=(-1.0, 1.0), rb=(-1.0, 1.0), ro=(-2.0, 2.0),
              act_bits=8, precision=16, **_):
        cfg = QuantConfig(act_bits=act_bits, precision=precision)
        so = list(np.broadcast_shapes(tuple(sa), tuple(sb)))
        ctx = make_ctx({"a": list(sa), "b": list(sb), "y": so}, {"a": ra, "b": rb, "y": ro}, cfg, ["a", "b"])
        op, p, ins, out, bd, template, args = build_node(
            "Add", FNode("Add", "sum", ["a", "b"], "y", {"relu": relu}), ctx)
        return OpCase(self, p, ins, out, bd, template, args)

    def ports(self, case):
        return {"a": case.ins[0].size, "b": case.ins[1].size}

    def requant_ns(self, case, inputs):
        p, c = case.params, case.bounds.circuit
        a, b = inputs["a"], inputs["b"]
        ia = p.a_index if p.a_index is not None else list(range(p.n))
        ib = p.b_index if p.b_index is not None else list(range(p.n))
        return [(a[ia[i]] - p.a_zp) * p.ma + (b[ib[i]] - p.b_zp) * p.mb + (1 << (c["SHIFT"] - 1))
                + c["K"] * (1 << c["SHIFT"]) for i in range(p.n)]

    def edge_inputs(self, case):
        ta, tb = case.ins
        na, nb = ta.size, tb.size
        combos = [(0, 0), (ta.qmax, tb.qmax), (ta.zero_point, tb.zero_point), (ta.qmax, 0), (0, tb.qmax)]
        return [{"a": [x] * na, "b": [y] * nb} for x, y in combos]

    @staticmethod
    def param_strategy():
        shapes = st.sampled_from([([3], [3]), ([2, 3], [1, 3]), ([1, 3], [2, 3]), ([2, 2], [1]),
                                  ([1], [4]), ([2, 1], [1, 2])])
        rng_ = st.tuples(st.sampled_from([-3.0, -1.0, -0.1, 0.0]), st.sampled_from([0.1, 1.0, 4.0]))
        return st.builds(lambda s, relu, ra, rb, ro, bits, prec: dict(sa=s[0], sb=s[1], relu=relu, ra=ra, rb=rb,
                                                                      ro=ro, act_bits=bits, precision=prec),
                         shapes, st.booleans(), rng_, rng_,
                         st.tuples(st.sampled_from([-30.0, -1.0, -0.2, 0.0]), st.sampled_from([0.2, 1.0, 30.0])),
                         st.sampled_from([2, 4, 8, 12, 16]), st.sampled_from([8, 16, 24]))


class ReluSpec(OpSpec):
    name, template_file = "Relu", "relu.circom"
    attacks = RELU_ATTACKS
    attack_cfgs = [dict(n=5, x=(-1.0, 1.0), act_bits=8),     # zero point inside: comparator in use
                   dict(n=3, x=(0.0, 1.0), act_bits=4)]      # zero point 0: out <== in

    def build(self, n=4, x=(-1.0, 1.0), act_bits=8, **_):
        cfg = QuantConfig(act_bits=act_bits)
        ctx = make_ctx({"x": [n], "y": [n]}, {"x": x}, cfg, ["x"])
        op, p, ins, out, bd, template, args = build_node("Relu", FNode("Relu", "relu", ["x"], "y", {}), ctx)
        return OpCase(self, p, ins, out, bd, template, args)

    def forgeries(self, case, prefix, inputs, out_names):
        p = case.params
        return [f for i, x in enumerate(inputs["in"]) for f in relu_forgeries(prefix, i, x, p.zp, p.bits, out_names(i))]

    def honest_models(self, case, prefix, inputs, out_names):
        p = case.params
        return [(f"{prefix}.pos[{i}]" if p.zp else f"{prefix}.out[{i}]",
                 relu_model(prefix, i, x, p.zp, p.bits, out_names=out_names(i)))
                for i, x in enumerate(inputs["in"])]

    @staticmethod
    def param_strategy():
        return st.fixed_dictionaries(dict(
            n=st.integers(1, 4),
            x=st.tuples(st.sampled_from([-5.0, -1.0, -0.01, 0.0]), st.sampled_from([0.0, 0.01, 1.0, 5.0])),
            act_bits=st.sampled_from([2, 3, 4, 8, 12, 16, 20])))


SPECS: dict[str, OpSpec] = {s.name: s for s in (DenseSpec(), AddSpec(), ReluSpec())}  # + CNN specs below

# Operators registered without a spec here yet: the registry-parametrized suites mark them xfail
# with the reason given. This is a to-do list, not an exemption: it is empty and must stay so
# (every operator zkml ships is attacked and property-checked through its spec).
PENDING: dict[str, str] = {}


def has_template(op_name: str) -> bool:
    """Does the operator emit a component? (Asked of the operator itself, not of a list.)"""
    return bool(REGISTRY[op_name].template_file)


def registry_ops() -> list[str]:
    return sorted(REGISTRY)


def select(forgeries: list[Forgery], per_regime: int = 2) -> list[Forgery]:
    """The forgeries of at most `per_regime` instances per regime (first come), all attacks each."""
    chosen: dict[str, list[str]] = {}
    keep = []
    for f in forgeries:
        inst = chosen.setdefault(f.regime, [])
        if f.instance not in inst and len(inst) < per_regime:
            inst.append(f.instance)
        if f.instance in inst:
            keep.append(f)
    return keep


# =========================================================================== CNN operators
from onnx import helper as _onnx_helper  # noqa: E402

from zkml.ops._window import Geometry, check_windows_nonempty, padded_counts, tap_table, window_geometry  # noqa: E402

from zkml.errors import ZkmlError as _ZkmlError  # noqa: E402


class _NoTemplate(_ZkmlError):
    """A drawn parameter set whose operator emits no component (nothing to test)."""


CLIP_ATTACKS = [
    "clamp_wrong_side",           # below / above comparator flipped, t and out recomputed from it
    "output_outside_range",       # out < LO, > HI, 2^BITS, p-1: the last comparator "bit" solves the selection
    "output_off_by_one",
]
MAXPOOL_ATTACKS = [
    "max_wrong_index",            # one running-max comparator flipped, the rest recomputed
    "value_not_in_window",        # out = max+1, 0, p-1, 2^BITS: the last comparator "bit" solves the selection
    "output_off_by_one",
]


def _window_geom(op: str, shape, kernel=None, strides=None, pads=None, dilations=None, ceil_mode=0,
                 global_pool=False) -> Geometry:
    """The real geometry resolution of an ONNX Conv / pool node over input `shape`."""
    if global_pool:
        from zkml.ops.pool import _global_geometry
        return _global_geometry(list(shape))
    attrs = {"kernel_shape": list(kernel)}
    for k, v in (("strides", strides), ("pads", pads), ("dilations", dilations)):
        if v is not None:
            attrs[k] = list(v)
    if ceil_mode:
        attrs["ceil_mode"] = 1
    node = _onnx_helper.make_node(op, ["x"], ["y"], name="w", **attrs)
    if op == "Conv":
        return window_geometry(node, list(shape), list(kernel), 13)
    return window_geometry(node, list(shape), None, 13, ceil_ok=True)


def _out_shape(geo: Geometry, channels: int, one_d: bool) -> list[int]:
    return [geo.n, channels, geo.ow] if one_d else [geo.n, channels, geo.oh, geo.ow]


def _pool_param_strategy():
    """1-D / 2-D / global pools with strides, pads, dilations and ceil_mode; tiny tensors."""
    @st.composite
    def strat(draw):
        one_d = draw(st.booleans())
        glob = draw(st.integers(0, 5)) == 0
        c = draw(st.integers(1, 2))
        if one_d:
            shape = [1, c, draw(st.integers(1, 6))]
            k = [draw(st.integers(1, 3))]
            s = [draw(st.integers(1, 2))]
            d = [draw(st.integers(1, 2))]
            pads = [draw(st.integers(0, k[0] - 1)), draw(st.integers(0, k[0] - 1))]
        else:
            shape = [1, c, draw(st.integers(1, 4)), draw(st.integers(1, 4))]
            k = [draw(st.integers(1, 3)), draw(st.integers(1, 3))]
            s = [draw(st.integers(1, 2)), draw(st.integers(1, 2))]
            d = [draw(st.integers(1, 2)), draw(st.integers(1, 2))]
            pads = [draw(st.integers(0, k[i % 2] - 1)) for i in range(4)]
        return dict(shape=shape, kernel=k, strides=s, pads=pads, dilations=d, ceil_mode=draw(st.integers(0, 1)),
                    global_pool=glob,
                    x=draw(st.tuples(st.sampled_from([-2.0, -1.0, -0.1, 0.0]), st.sampled_from([0.05, 1.0, 3.0]))),
                    act_bits=draw(st.sampled_from([2, 3, 4, 8, 12, 16])),
                    count_include_pad=draw(st.integers(0, 1)), relu=draw(st.booleans()),
                    y=draw(st.tuples(st.sampled_from([-3.0, -1.0, -0.2, 0.0]), st.sampled_from([0.1, 0.5, 3.0]))),
                    precision=draw(st.sampled_from([8, 16, 24])))
    return strat()


# --------------------------------------------------------------------------- Clip (ClampQ)
def clip_model(prefix: str, i: int, x: int, c: dict, below: int | None = None, above: int | None = None,
               out: int | None = None, out_delta: int = 0, out_names: list[str] = ()) -> dict:
    """Every signal of ClampQ's element i with input x; the attacker may force a comparator and/or
    the output (then the last active comparator is the field element satisfying its selection)."""
    m = {}
    bits, lo, hi = c["BITS"], c["LO"], c["HI"]
    if c["CLAMP_LO"]:
        if out is not None and not c["CLAMP_HI"] and below is None:
            below = (out - x) * INV(lo - x) % P if lo != x else 0
        b = less_than(m, f"{prefix}.below[{i}]", x, lo, bits, below)
        t = (x + b * (lo - x)) % P
    else:
        t = x
    m[f"{prefix}.t[{i}]"] = t
    if c["CLAMP_HI"]:
        if out is not None and above is None:
            above = (out - t) * INV(hi - t) % P if hi != t else 0
        a = less_than(m, f"{prefix}.above[{i}]", hi, t, bits, above)
        y = (t + a * (hi - t)) % P
    else:
        y = t
    if out is not None:
        y = out % P
    y = (y + out_delta) % P
    m[f"{prefix}.out[{i}]"] = y
    for name in out_names:
        m[name] = y
    return m


class ClipSpec(OpSpec):
    name, template_file = "Clip", "clip.circom"
    attacks = CLIP_ATTACKS
    attack_cfgs = [dict(n=6, x=(-1.0, 1.0), lo=-0.5, hi=0.6, act_bits=8),      # both sides
                   dict(n=4, x=(-1.0, 1.0), lo=0.25, hi=None, act_bits=4),     # low side only
                   dict(n=4, x=(0.0, 3.0), lo=None, hi=2.0, act_bits=3)]       # high side only

    def build(self, n=4, x=(-1.0, 1.0), lo=None, hi=None, act_bits=8, **_):
        import math
        cfg = QuantConfig(act_bits=act_bits)
        ctx = make_ctx({"x": [n], "y": [n]}, {"x": x}, cfg, ["x"])
        attrs = {"min": -math.inf if lo is None else lo, "max": math.inf if hi is None else hi}
        try:
            op, p, ins, out, bd, template, args = build_node("Clip", FNode("Clip", "clip", ["x"], "y", attrs), ctx)
        except TypeError:           # circom() returned None: neither side active, no component
            raise _NoTemplate("Clip with no active side emits no component") from None
        return OpCase(self, p, ins, out, bd, template, args)

    @staticmethod
    def _c(case):
        return dict(case.args)

    def edge_inputs(self, case):
        c = self._c(case)
        qmax = case.ins[0].qmax
        vals = sorted({0, qmax, case.ins[0].zero_point} |
                      {v for t in (c["LO"], c["HI"]) for v in (t - 1, t, t + 1) if 0 <= v <= qmax})
        return [{"in": [v] * case.ins[0].size} for v in vals]

    def input_strategy(self, case):
        c, t = self._c(case), case.ins[0]
        edge = st.sampled_from(sorted({0, 1, t.qmax - 1, t.qmax} | {v for b in (c["LO"], c["HI"])
                                                                   for v in (b - 1, b, b + 1) if 0 <= v <= t.qmax}))
        return st.fixed_dictionaries({"in": st.lists(st.one_of(edge, st.integers(0, t.qmax)),
                                                     min_size=t.size, max_size=t.size)})

    def forgeries(self, case, prefix, inputs, out_names):
        c = self._c(case)
        bits = c["BITS"]
        out = []
        for i, x in enumerate(inputs["in"]):
            names = out_names(i)
            y = min(max(x, c["LO"]), c["HI"])
            regime = "x<LO" if x < c["LO"] else "x=LO" if x == c["LO"] else "x>HI" if x > c["HI"] else \
                "x=HI" if x == c["HI"] else "inside"
            fs = []
            honest = clip_model(prefix, i, x, c)
            if c["CLAMP_LO"]:
                hb = honest[f"{prefix}.below[{i}].out"]
                fs.append(Forgery("clamp_wrong_side", f"x={x} below flipped",
                                  clip_model(prefix, i, x, c, below=1 - hb, out_names=names),
                                  [f"{prefix}.below[{i}].n2b.out[{b}]" for b in range(bits + 1)]))
            if c["CLAMP_HI"]:
                ha = honest[f"{prefix}.above[{i}].out"]
                fs.append(Forgery("clamp_wrong_side", f"x={x} above flipped",
                                  clip_model(prefix, i, x, c, above=1 - ha, out_names=names),
                                  [f"{prefix}.above[{i}].n2b.out[{b}]" for b in range(bits + 1)]))
            last = "above" if c["CLAMP_HI"] else "below"
            for v in sorted({c["LO"] - 1, c["HI"] + 1, 1 << bits, P - 1} - {y}):
                fs.append(Forgery("output_outside_range", f"x={x} out={v if v < 1 << 64 else 'p-1'}",
                                  clip_model(prefix, i, x, c, out=v % P, out_names=names),
                                  [f"{prefix}.{last}[{i}].n2b.out[{b}]" for b in range(bits + 1)]))
            for d in (1, -1):
                fs.append(Forgery("output_off_by_one", f"x={x} out{d:+d}",
                                  clip_model(prefix, i, x, c, out_delta=d, out_names=names)))
            for f in fs:
                f.instance, f.regime = f"{prefix}[{i}]", regime
            out += fs
        return out

    def honest_models(self, case, prefix, inputs, out_names):
        c = self._c(case)
        res = []
        for i, x in enumerate(inputs["in"]):
            m = clip_model(prefix, i, x, c, out_names=out_names(i))
            comps = [s for s, on in (("below", c["CLAMP_LO"]), ("above", c["CLAMP_HI"])) if on]
            res += [(f"{prefix}.{s}[{i}]", m) for s in comps]
        return res

    @staticmethod
    def param_strategy():
        return st.fixed_dictionaries(dict(
            n=st.integers(1, 4),
            x=st.tuples(st.sampled_from([-5.0, -1.0, -0.01, 0.0]), st.sampled_from([0.01, 1.0, 5.0])),
            lo=st.sampled_from([None, -2.0, -0.5, 0.0, 0.01, 0.3]),
            hi=st.sampled_from([None, -0.2, 0.0, 0.2, 0.9, 3.0]),
            act_bits=st.sampled_from([2, 3, 4, 8, 12, 16, 20])))


SPECS.update({s.name: s for s in (ClipSpec(),)})


# --------------------------------------------------------------------------- MaxPool / AvgPool
def _pool_build(spec, op_name, shape=(1, 1, 3, 3), kernel=(2, 2), strides=None, pads=None, dilations=None,
                ceil_mode=0, global_pool=False, x=(-1.0, 1.0), y=(-1.0, 1.0), act_bits=8, count_include_pad=0,
                relu=False, precision=16, **_):
    geo = _window_geom("MaxPool", shape, kernel, strides, pads, dilations, ceil_mode, global_pool)
    check_windows_nonempty(geo, op_name, 13, "pool")
    cfg = QuantConfig(act_bits=act_bits, precision=precision)
    oshape = [geo.n, shape[1], geo.oh, geo.ow] if len(shape) == 4 else [geo.n, shape[1], geo.oh * geo.ow]
    ctx = make_ctx({"x": list(shape), "y": oshape}, {"x": x, "y": y}, cfg, ["x"])
    attrs = {"geom": geo.as_dict(), "count_include_pad": count_include_pad, "relu": relu}
    try:
        op, p, ins, out, bd, template, args = build_node(op_name, FNode(op_name, "pool", ["x"], "y", attrs), ctx)
    except TypeError:               # circom() returned None (1x1 identity MaxPool)
        raise _NoTemplate("identity pool emits no component") from None
    return OpCase(spec, p, ins, out, bd, template, args)


def _pool_windows(p) -> list[list[int]]:
    """Per output o (row-major N, C, OH, OW): the input indices of the present taps, in template order."""
    index, inside = tap_table(p.geometry())
    wins = []
    for nc in range(p.n * p.c):
        for pos in range(p.oh * p.ow):
            wins.append([nc * p.h * p.w + int(j) for j, ok in zip(index[pos], inside[pos]) if ok])
    return wins


def running_max_model(m: dict, xs: list[int], bits: int, ge_name, m_name, flip: int | None = None,
                      out: int | None = None) -> int:
    """The signals of a running maximum over xs (circuits/pool.circom MaxWindow, and the same
    steps written out in conv.circom ConvMaxPool2D): step t's Num2Bits at ge_name(t), its result
    at m_name(t). Comparator `flip` may be flipped (the rest recomputed); `out` forces the result
    (the last comparator's top bit then solves the selection). Returns the claimed maximum."""
    cur = xs[0]
    for t in range(1, len(xs)):
        a, b = cur, xs[t]
        forced = None
        if flip == t:
            forced = 1 - int(a >= b)
        if out is not None and t == len(xs) - 1:
            forced = (out - b) * INV(a - b) % P if b != a else 0
        ge = ge_bit(m, ge_name(t), a, b, bits, forced)
        cur = (b + ge * (a - b)) % P
        m[m_name(t)] = cur
    if out is not None and len(xs) > 1:
        m[m_name(len(xs) - 1)] = out % P
    return out % P if out is not None else cur


def maxpool_model(prefix: str, o: int, xs: list[int], bits: int, flip: int | None = None,
                  out: int | None = None, out_delta: int = 0, out_names: list[str] = ()) -> dict:
    """Every signal of MaxWindow at prefix.win[o] for window values xs (see running_max_model)."""
    pre = f"{prefix}.win[{o}]"
    m = {f"{pre}.in[{t}]": v for t, v in enumerate(xs)}
    m[f"{pre}.m[0]"] = xs[0]
    y = (running_max_model(m, xs, bits, lambda t: f"{pre}.ge[{t}]", lambda t: f"{pre}.m[{t}]",
                           flip, out) + out_delta) % P         # out_delta: the lie is in out alone
    m[f"{pre}.out"] = y
    m[f"{prefix}.out[{o}]"] = y
    for name in out_names:
        m[name] = y
    return m


class MaxPoolSpec(OpSpec):
    name, template_file = "MaxPool", "pool.circom"
    attacks = MAXPOOL_ATTACKS
    attack_cfgs = [dict(shape=[1, 1, 3, 3], kernel=[2, 2], act_bits=8),                       # 4 taps
                   dict(shape=[1, 2, 5], kernel=[3], strides=[2], pads=[1, 1], act_bits=4),   # 1-D, padded edges
                   dict(shape=[1, 1, 2, 2], global_pool=True, act_bits=3)]

    def build(self, **cfg):
        return _pool_build(self, "MaxPool", **cfg)

    def edge_inputs(self, case):
        n, qmax = case.ins[0].size, case.ins[0].qmax
        rows = super().edge_inputs(case)
        rows += [{"in": [i % (qmax + 1) for i in range(n)]}, {"in": [(qmax - i) % (qmax + 1) for i in range(n)]}]
        return rows

    def forgeries(self, case, prefix, inputs, out_names):
        p, bits = case.params, case.params.bits
        res = []
        for o, idx in enumerate(_pool_windows(p)):
            xs = [inputs["in"][j] for j in idx]
            names = out_names(o)
            mx = max(xs)
            k = len(xs)
            regime = ("one tap" if k == 1 else "tie" if xs.count(mx) > 1 else
                      "max first" if xs[0] == mx else "max last" if xs[-1] == mx else "max inside")
            fs = []
            for t in range(1, k):
                fs.append(Forgery("max_wrong_index", f"ge[{t}] flipped",
                                  maxpool_model(prefix, o, xs, bits, flip=t, out_names=names),
                                  [f"{prefix}.win[{o}].ge[{t}].out[{b}]" for b in range(bits)]))
                lo_vals = {mx + 1, (mx + min(xs)) // 2, 0, 1 << bits, P - 1} - {mx}
                if t == k - 1:
                    for v in sorted(lo_vals):
                        fs.append(Forgery("value_not_in_window", f"out={v if v < 1 << 64 else 'p-1'}",
                                          maxpool_model(prefix, o, xs, bits, out=v, out_names=names),
                                          [f"{prefix}.win[{o}].ge[{t}].out[{b}]" for b in range(bits)]))
            for d in (1, -1):
                fs.append(Forgery("output_off_by_one", f"out{d:+d}",
                                  maxpool_model(prefix, o, xs, bits, out_delta=d, out_names=names)))
            for f in fs:
                f.instance, f.regime = f"{prefix}.win[{o}]", regime
            res += fs
        return res

    def honest_models(self, case, prefix, inputs, out_names):
        p = case.params
        return [(f"{prefix}.win[{o}]", maxpool_model(prefix, o, [inputs["in"][j] for j in idx], p.bits,
                                                    out_names=out_names(o)))
                for o, idx in enumerate(_pool_windows(p))]

    @staticmethod
    def param_strategy():
        return _pool_param_strategy()


class AvgPoolSpec(RequantOpSpec):
    name, template_file = "AvgPool", "pool.circom"
    attack_cfgs = [
        dict(shape=[1, 1, 3, 3], kernel=[2, 2], pads=[1, 1, 0, 0], relu=True, x=(-1.0, 1.0), y=(-0.2, 0.3)),
        dict(shape=[1, 2, 4], kernel=[3], strides=[2], pads=[1, 1], count_include_pad=1, x=(0.0, 1.0),
             y=(-3.0, 3.0)),                                                                  # no clamp
        dict(shape=[1, 1, 2, 2], global_pool=True, x=(-1.0, 2.0), y=(-0.5, 0.5), act_bits=4),
    ]

    def build(self, **cfg):
        return _pool_build(self, "AvgPool", **cfg)

    def requant_ns(self, case, inputs):
        p, c = case.params, case.bounds.circuit
        ns = []
        for o, idx in enumerate(_pool_windows(p)):
            pos = o % (p.oh * p.ow)
            acc = sum(inputs["in"][j] - p.x_zp for j in idx)
            ns.append(acc * p.mult[p.cls[pos]] + (1 << (c["SHIFT"] - 1)) + c["K"] * (1 << c["SHIFT"]))
        return ns

    @staticmethod
    def param_strategy():
        return _pool_param_strategy()


SPECS.update({s.name: s for s in (MaxPoolSpec(), AvgPoolSpec())})


# --------------------------------------------------------------------------- Conv
class ConvSpec(RequantOpSpec):
    name, template_file = "Conv", "conv.circom"
    attack_cfgs = [
        dict(shape=[1, 1, 3, 3], m=1, kernel=[2, 2], pads=[1, 0, 0, 1], relu=True, y=(-0.3, 0.5), seed=1),
        dict(shape=[1, 2, 4], m=2, group=2, kernel=[2], strides=[2], y=(-60.0, 60.0), seed=2),   # no clamp
    ]

    def build(self, shape=(1, 1, 3, 3), m=1, group=1, kernel=(2, 2), strides=None, pads=None, dilations=None,
              relu=False, x=(-1.0, 1.0), y=(-1.0, 1.0), seed=0, act_bits=8, weight_bits=8, per_channel=True,
              precision=16, **_):
        geo = _window_geom("Conv", shape, kernel, strides, pads, dilations)
        cfg = QuantConfig(act_bits, weight_bits, per_channel, precision)
        rng = np.random.default_rng(seed)
        W = rng.normal(0, 1, (m, shape[1] // group * geo.kh * geo.kw))
        b = rng.normal(0, 0.3, m)
        oshape = [geo.n, m, geo.oh, geo.ow] if len(shape) == 4 else [geo.n, m, geo.ow]
        ctx = make_ctx({"x": list(shape), "y": oshape}, {"x": x, "y": y}, cfg, ["x"])
        attrs = {"W": W, "b": b, "geom": geo.as_dict(), "group": group, "relu": relu}
        op, p, ins, out, bd, template, args = build_node("Conv", FNode("Conv", "conv", ["x"], "y", attrs), ctx)
        return OpCase(self, p, ins, out, bd, template, args)

    @staticmethod
    def accs(p, xs) -> list[tuple[int, int]]:
        """(output channel, accumulator) of every Conv output, in output order (independent of the kernel)."""
        index, inside = tap_table(p.geometry())
        cg, mg, T = p.c // p.group, p.m // p.group, p.kh * p.kw
        res = []
        for n in range(p.n):
            for mo in range(p.m):
                g = mo // mg
                for pos in range(p.oh * p.ow):
                    acc = p.bias[mo]
                    for ci in range(cg):
                        for t in range(T):
                            if inside[pos, t]:
                                xv = xs[(n * p.c + g * cg + ci) * p.h * p.w + int(index[pos, t])]
                                acc += (xv - p.x_zp) * (p.wq[mo][ci * T + t] - p.w_zp[mo])
                    res.append((mo, acc))
        return res

    def requant_ns(self, case, inputs):
        p, c = case.params, case.bounds.circuit
        return [acc * p.mult[mo] + (1 << (c["SHIFT"] - 1)) + c["K"] * (1 << c["SHIFT"])
                for mo, acc in self.accs(p, inputs["in"])]

    @staticmethod
    def param_strategy():
        @st.composite
        def strat(draw):
            one_d = draw(st.booleans())
            group = draw(st.integers(1, 2))
            c = group * draw(st.integers(1, 2))
            m = group * draw(st.integers(1, 2))
            if one_d:
                shape, k = [1, c, draw(st.integers(1, 5))], [draw(st.integers(1, 3))]
                s, d = [draw(st.integers(1, 2))], [draw(st.integers(1, 2))]
                pads = [draw(st.integers(0, 1)) for _ in range(2)]
            else:
                shape = [1, c, draw(st.integers(1, 3)), draw(st.integers(1, 3))]
                k = [draw(st.integers(1, 2)), draw(st.integers(1, 2))]
                s, d = [draw(st.integers(1, 2))] * 2, [draw(st.integers(1, 2))] * 2
                pads = [draw(st.integers(0, 1)) for _ in range(4)]
            return dict(shape=shape, m=m, group=group, kernel=k, strides=s, dilations=d, pads=pads,
                        relu=draw(st.booleans()), seed=draw(st.integers(0, 2 ** 16)),
                        x=draw(st.tuples(st.sampled_from([-2.0, -0.1, 0.0]), st.sampled_from([0.05, 1.0, 3.0]))),
                        y=draw(st.tuples(st.sampled_from([-40.0, -1.0, 0.0]), st.sampled_from([0.3, 1.0, 40.0]))),
                        act_bits=draw(st.sampled_from([2, 4, 8, 12])), weight_bits=draw(st.sampled_from([2, 4, 8])),
                        per_channel=draw(st.booleans()), precision=draw(st.sampled_from([8, 16, 24])))
        return strat()


SPECS.update({s.name: s for s in (ConvSpec(),)})


# --------------------------------------------------------------------------- IndexMap (Transpose, Pad)
INDEXMAP_ATTACKS = [
    "output_not_source",          # out[i] != in[IDX[i]]: +-1, another input element's value, 2^BITS
    "fill_changed",               # a constant-padded out[i] != FILL: +-1, 0, p-1
]


def _fake_fgraph(shapes: dict, constants: dict | None = None):
    """The part of an FGraph the ONNX rules read (shapes of activations, folded constants)."""
    from types import SimpleNamespace
    return SimpleNamespace(shapes=shapes, constants=constants or {}, opset=13)


class IndexMapSpec(OpSpec):
    """Transpose and Pad (every mode) through their real ONNX rules in zkml/ops/layout.py."""
    name, template_file = "IndexMap", "layout.circom"
    attacks = INDEXMAP_ATTACKS
    attack_cfgs = [
        dict(kind="Transpose", shape=[1, 2, 3], perm=[0, 2, 1], act_bits=8),
        dict(kind="Pad", shape=[1, 2, 2], pads=[0, 0, 1, 0, 1, 2], mode="constant", value=0.5, act_bits=8),
        dict(kind="Pad", shape=[1, 3], pads=[0, 2, 0, 2], mode="reflect", act_bits=4),       # duplicated sources
        dict(kind="Pad", shape=[1, 4], pads=[0, 1, 0, -2], mode="edge", x=(0.0, 1.0), act_bits=3),  # crop
    ]

    def build(self, kind="Transpose", shape=(1, 2, 3), perm=None, pads=None, mode="constant", value=None,
              x=(-1.0, 1.0), act_bits=8, **_):
        from zkml.ops.layout import pad_rule, transpose_rule
        shape = list(shape)
        if kind == "Transpose":
            node = _onnx_helper.make_node("Transpose", ["x"], ["y"], name="t",
                                          **({} if perm is None else {"perm": list(perm)}))
            [f] = transpose_rule(node, _fake_fgraph({"x": shape}), 13)
        else:
            consts = {"pads": np.array(pads, dtype=np.int64)}
            inputs = ["x", "pads"]
            if value is not None:
                consts["pv"] = np.array(value, dtype=np.float32)
                inputs.append("pv")
            node = _onnx_helper.make_node("Pad", inputs, ["y"], name="p", mode=mode)
            [f] = pad_rule(node, _fake_fgraph({"x": shape}, consts), 13)
        cfg = QuantConfig(act_bits=act_bits)
        ctx = make_ctx({"x": shape, "y": [len(f.attrs["idx"])]}, {"x": x}, cfg, ["x"])
        try:
            op, p, ins, out, bd, template, args = build_node("IndexMap", f, ctx)
        except TypeError:           # circom() returned None: the identity map emits no component
            raise _NoTemplate("identity IndexMap emits no component") from None
        return OpCase(self, p, ins, out, bd, template, args)

    def edge_inputs(self, case):
        n, qmax = case.ins[0].size, case.ins[0].qmax
        return super().edge_inputs(case) + [{"in": [i % (qmax + 1) for i in range(n)]}]

    def forgeries(self, case, prefix, inputs, out_names):
        p, bits, xs = case.params, case.ins[0].bits, inputs["in"]
        uses = collections.Counter(p.idx)
        res = []
        for i, src in enumerate(p.idx):
            names = [f"{prefix}.out[{i}]", *out_names(i)]
            lie = lambda v, names=names: {n: v % P for n in names}  # noqa: E731
            fs = []
            if src >= 0:
                y = xs[src]
                regime = "copy" if uses[src] == 1 else "copy of a duplicated source"
                others = sorted({xs[j] for j in range(len(xs))} - {y})
                for v, label in [(y + 1, "+1"), (y - 1, "-1"), (1 << bits, "2^BITS")] + \
                        [(v, f"in[j]={v}") for v in others[:1]]:
                    fs.append(Forgery("output_not_source", f"out[{i}]{label}", lie(v)))
            else:
                regime = "fill"
                for v, label in ((p.fill + 1, "FILL+1"), (p.fill - 1, "FILL-1"), (0, "0"), (P - 1, "p-1")):
                    if v % P != p.fill:
                        fs.append(Forgery("fill_changed", f"out[{i}]={label}", lie(v)))
            for f in fs:
                f.instance, f.regime = f"{prefix}.out[{i}]", regime
            res += fs
        return res

    def honest_models(self, case, prefix, inputs, out_names):
        p, xs = case.params, inputs["in"]
        return [(f"{prefix}.out[{i}]", {n: (xs[src] if src >= 0 else p.fill)
                                        for n in (f"{prefix}.out[{i}]", *out_names(i))})
                for i, src in enumerate(p.idx)]

    @staticmethod
    def param_strategy():
        @st.composite
        def strat(draw):
            r = draw(st.integers(1, 4))
            shape = [draw(st.integers(1, 3)) for _ in range(r)]
            common = dict(shape=shape, act_bits=draw(st.sampled_from([1, 2, 3, 4, 8, 12, 16, 20])),
                          x=draw(st.tuples(st.sampled_from([-3.0, -1.0, -0.1, 0.0]),
                                           st.sampled_from([0.05, 1.0, 4.0]))))
            if draw(st.booleans()):
                return dict(kind="Transpose", perm=draw(st.permutations(range(r))), **common)
            mode = draw(st.sampled_from(["constant", "edge", "reflect", "wrap"]))
            # reflect: 0 <= pad < axis; otherwise up to 2, and a crop of 1 where the axis keeps >= 1
            pads = [draw(st.integers(0, s - 1) if mode == "reflect" else st.integers(-1 if s > 2 else 0, 2))
                    for s in shape + shape]
            value = draw(st.sampled_from([None, 0.0, -0.05, 0.5, 3.0])) if mode == "constant" else None
            return dict(kind="Pad", pads=pads, mode=mode, value=value, **common)
        return strat()


SPECS.update({s.name: s for s in (IndexMapSpec(),)})


# --------------------------------------------------------------------------- Concat
CONCAT_ATTACKS = REQUANT_ATTACKS + [
    "output_not_source",          # a copied (not requantized) element changed: +-1, 2^BITS
    "constant_changed",           # a constant element != CV: +-1, p-1
]
_CONCAT_PORTS = ("a", "b", "c", "d")


class ConcatSpec(OpSpec):
    """Concat through its real ONNX rule and quantization (zkml/ops/concat.py): each activation
    input either copied (same scale and zero point as the output) or requantized by one
    RequantClamp per element (ConcatSegment), constants placed as template constants."""
    name, template_file = "Concat", "layout.circom"
    attacks = CONCAT_ATTACKS
    attack_cfgs = [
        # two inputs requantized, the output range narrower than both: both clamps act; a constant
        dict(shapes=[[1, 2], [1, 3]], ranges=[(-1.0, 1.0), (0.0, 4.0)], y=(-0.5, 2.0), const=[[0.7, -0.3]],
             axis=1),
        # a copied input (same range as the output) next to a requantized one, duplicated input on axis 0
        dict(shapes=[[1, 2], [1, 2]], ranges=[(-1.0, 1.0), (0.0, 0.5)], y=(-1.0, 1.0), axis=0, dup=True,
             act_bits=4),
        # one input and a constant representable at its scale: Concat1, pure placement
        dict(shapes=[[2, 2]], ranges=[(-1.0, 1.0)], y=(-1.0, 1.0), const=[[0.25, -0.5]], axis=0),
    ]

    def build(self, shapes=([1, 2],), ranges=((-1.0, 1.0),), y=(-1.0, 1.0), const=None, axis=0, dup=False,
              act_bits=8, precision=16, **_):
        from zkml.ops.concat import concat_rule
        names = [f"x{k}" for k in range(len(shapes))]
        consts = {} if const is None else {"k": np.array(const, dtype=np.float64)}
        order = names + (["k"] if const is not None else []) + (names[:1] if dup else [])
        node = _onnx_helper.make_node("Concat", order, ["y"], name="cat", axis=axis)
        shape_of = {n: list(s) for n, s in zip(names, shapes)}
        [f] = concat_rule(node, _fake_fgraph(shape_of, consts), 13)
        parts = [np.zeros(shape_of[n] if n in shape_of else consts[n].shape) for n in order]
        shape_of["y"] = list(np.concatenate(parts, axis=axis).shape)
        cfg = QuantConfig(act_bits=act_bits, precision=precision)
        ctx = make_ctx(shape_of, {**dict(zip(names, ranges)), "y": y}, cfg, names)
        try:
            op, p, ins, out, bd, template, args = build_node("Concat", f, ctx)
        except TypeError:           # circom() returned None: a single input copied as it is
            raise _NoTemplate("identity Concat emits no component") from None
        return OpCase(self, p, ins, out, bd, template, args)

    def ports(self, case):
        if len(case.ins) == 1:
            return {"in": case.ins[0].size}
        return {p: t.size for p, t in zip(_CONCAT_PORTS, case.ins)}

    def edge_inputs(self, case):
        ports = self.ports(case)
        rows = [{p: [v(t)] * n for (p, n), t in zip(ports.items(), case.ins)}
                for v in (lambda t: 0, lambda t: t.qmax, lambda t: t.zero_point)]
        rows.append({p: [(i + 3 * k) % (t.qmax + 1) for i in range(n)]
                     for k, ((p, n), t) in enumerate(zip(ports.items(), case.ins))})
        return rows

    @staticmethod
    def _segment(case, prefix: str, k: int) -> str:
        return f"{prefix}.cat.s{'abcd'[k]}" if len(case.ins) == 1 else f"{prefix}.s{'abcd'[k]}"

    def _elements(self, case, prefix, inputs, out_names):
        """Per (input k, element j) or constant: (kind, value or N, signal names carrying the output)."""
        p, c = case.params, case.bounds.circuit
        xs = list(inputs.values())
        where: dict = collections.defaultdict(list)
        for i, (k, j) in enumerate(zip(p.part, p.index)):
            where[(k, j)].append(i)
        inner = (lambda i: [f"{prefix}.cat.out[{i}]"]) if len(case.ins) == 1 else (lambda i: [])  # noqa: E731
        res = []
        for (k, j), outs in where.items():
            names = [n for i in outs for n in (f"{prefix}.out[{i}]", *inner(i), *out_names(i))]
            if k < 0:
                res.append(("constant", p.const[j], names, outs))
            elif p.ident[k]:
                seg = self._segment(case, prefix, k)
                res.append(("copy", xs[k][j], names + [f"{seg}.out[{j}]"], outs))
            else:
                seg = self._segment(case, prefix, k)
                n = (xs[k][j] - p.zp[k]) * p.mult[k] + (1 << (c["SHIFT"] - 1)) + c["K"] * (1 << c["SHIFT"])
                res.append(("requant", (f"{seg}.rq[{j}]", n), names + [f"{seg}.out[{j}]"], outs))
        return res

    def forgeries(self, case, prefix, inputs, out_names):
        c, bits = case.bounds.circuit, case.out.bits
        res = []
        for kind, v, names, outs in self._elements(case, prefix, inputs, out_names):
            if kind == "requant":
                res += requant_forgeries(v[0], v[1], c, bits, names)
                continue
            lie = lambda x, names=names: {n: x % P for n in names}  # noqa: E731
            attack = "constant_changed" if kind == "constant" else "output_not_source"
            lies = [(v + 1, "+1"), (v - 1, "-1"), ((1 << bits) if kind == "copy" else P - 1, "far")]
            for x, label in lies:
                res.append(Forgery(attack, f"out{outs}{label}", lie(x), instance=f"{prefix}.out[{outs[0]}]",
                                   regime=kind))
        return res

    def honest_models(self, case, prefix, inputs, out_names):
        c = case.bounds.circuit
        res = []
        for kind, v, names, outs in self._elements(case, prefix, inputs, out_names):
            if kind == "requant":
                res.append((v[0], requant_honest(v[0], v[1], c, names)))
            else:
                res.append((f"{prefix}.out[{outs[0]}]", {n: v for n in names}))
        return res

    @staticmethod
    def param_strategy():
        @st.composite
        def strat(draw):
            k = draw(st.integers(1, 3))
            axis = draw(st.integers(0, 1))
            other = draw(st.integers(1, 3))
            shapes = [[draw(st.integers(1, 3)), other] if axis == 0 else [other, draw(st.integers(1, 3))]
                      for _ in range(k)]
            rng_ = st.tuples(st.sampled_from([-3.0, -1.0, -0.1, 0.0]), st.sampled_from([0.05, 1.0, 4.0]))
            ranges = [draw(rng_) for _ in range(k)]
            if draw(st.booleans()):                 # every input at the output's parameters (copies)
                ranges = [ranges[0]] * k
            y = ranges[0] if draw(st.booleans()) else draw(rng_)
            const = None
            if k == 1 or draw(st.booleans()):
                n = draw(st.integers(1, 2))
                cshape = [n, other] if axis == 0 else [other, n]
                vals = draw(st.lists(st.sampled_from([-2.0, -0.3, 0.0, 0.1, 0.9, 5.0]),
                                     min_size=cshape[0] * cshape[1], max_size=cshape[0] * cshape[1]))
                const = np.array(vals).reshape(cshape).tolist()
            return dict(shapes=shapes, ranges=ranges, y=y, const=const, axis=axis, dup=draw(st.booleans()),
                        act_bits=draw(st.sampled_from([2, 3, 4, 8, 12, 16])),
                        precision=draw(st.sampled_from([8, 16, 24])))
        return strat()


SPECS.update({s.name: s for s in (ConcatSpec(),)})


# --------------------------------------------------------------------------- Affine, Sub, ConvTranspose
# (Sub/Mul/Div by a constant, ReduceSum/ReduceMean; Sub of two tensors; ConvTranspose)
class AffineSpec(RequantOpSpec):
    """Affine: per output i, RequantClamp of (sum_t (x[idx] - zp)) * MULT[cls] + BIAS[cls]. The configs cover
    T = 1 (Sub/Mul/Div by per-element constants, broadcast index, negative constants) and T > 1 (reductions)."""
    name, template_file = "Affine", "affine.circom"
    attack_cfgs = [
        dict(n_out=3, t=1, c=[1.5, -2.0, 0.5], b=[0.1, -0.3, 0.0], relu=True, x=(-1.0, 1.0), y=(-0.4, 0.6)),
        dict(n_out=2, t=3, c=[1.0, 1.0 / 3], b=[0.0, 0.0], x=(0.0, 1.0), y=(-10.0, 10.0)),      # no clamp
        dict(n_out=4, t=1, bcast=2, c=[-1.0, -1.0, 3.0, 0.25], b=[0.5, 0.5, -1.0, 0.0], x=(-2.0, 1.0),
             y=(-1.0, 2.0), act_bits=4),                                                        # broadcast, uint4
    ]

    def build(self, n_out=2, t=1, c=(1.0, 1.0), b=(0.0, 0.0), bcast=0, relu=False, x=(-1.0, 1.0), y=(-1.0, 1.0),
              act_bits=8, precision=16, **_):
        cfg = QuantConfig(act_bits=act_bits, precision=precision)
        if bcast:      # output i reads x[i % bcast] (NumPy broadcasting of x against a bigger constant)
            n_in, idx = bcast, [[i % bcast] for i in range(n_out)]
        else:
            n_in, idx = n_out * t, np.arange(n_out * t).reshape(n_out, t)
        ctx = make_ctx({"x": [n_in], "y": [n_out]}, {"x": x, "y": y}, cfg, ["x"])
        attrs = {"idx": np.asarray(idx), "c": np.asarray(c, dtype=np.float64), "b": np.asarray(b, dtype=np.float64),
                 "relu": relu}
        op, p, ins, out, bd, template, args = build_node("Affine", FNode("Affine", "affine", ["x"], "y", attrs), ctx)
        return OpCase(self, p, ins, out, bd, template, args)

    def requant_ns(self, case, inputs):
        p, c = case.params, case.bounds.circuit
        xs = inputs["in"]
        return [sum(xs[j] - p.x_zp for j in p.idx[i * p.t:(i + 1) * p.t]) * p.mult[k] + p.bias[k]
                + (1 << (c["SHIFT"] - 1)) + c["K"] * (1 << c["SHIFT"]) for i, k in enumerate(p.cls)]

    @staticmethod
    def param_strategy():
        @st.composite
        def strat(draw):
            n_out, t = draw(st.integers(1, 4)), draw(st.integers(1, 3))
            vals = st.sampled_from([-3.0, -1.0, -0.25, 0.0, 0.5, 1.0, 2.5])
            return dict(n_out=n_out, t=t, bcast=draw(st.sampled_from([0, 0, 1, 2])) if t == 1 else 0,
                        c=draw(st.lists(vals, min_size=n_out, max_size=n_out)),
                        b=draw(st.lists(st.sampled_from([-2.0, 0.0, 0.3, 1.5]), min_size=n_out, max_size=n_out)),
                        relu=draw(st.booleans()),
                        x=draw(st.tuples(st.sampled_from([-2.0, -0.1, 0.0]), st.sampled_from([0.05, 1.0, 3.0]))),
                        y=draw(st.tuples(st.sampled_from([-40.0, -1.0, 0.0]), st.sampled_from([0.3, 1.0, 40.0]))),
                        act_bits=draw(st.sampled_from([2, 4, 8, 12, 16])), precision=draw(st.sampled_from([8, 16, 24])))
        return strat()


class SubSpec(AddSpec):
    """Sub of two activations: AddRequant with a negative MB (AddSpec's attacks and N formula)."""
    name, template_file = "Sub", "add.circom"

    def build(self, sa=(3,), sb=(3,), relu=False, ra=(-1.0, 1.0), rb=(-1.0, 1.0), ro=(-2.0, 2.0),
              act_bits=8, precision=16, **_):
        cfg = QuantConfig(act_bits=act_bits, precision=precision)
        so = list(np.broadcast_shapes(tuple(sa), tuple(sb)))
        ctx = make_ctx({"a": list(sa), "b": list(sb), "y": so}, {"a": ra, "b": rb, "y": ro}, cfg, ["a", "b"])
        op, p, ins, out, bd, template, args = build_node(
            "Sub", FNode("Sub", "diff", ["a", "b"], "y", {"relu": relu}), ctx)
        assert p.mb <= 0
        return OpCase(self, p, ins, out, bd, template, args)


def convtranspose_fnode(shape, W, b, **attrs) -> FNode:
    """The ConvTranspose FNode of zkml's ONNX rule for a real ONNX node (output shape by onnx's inference)."""
    from types import SimpleNamespace

    from onnx import TensorProto, numpy_helper, shape_inference
    from zkml.ops.convtranspose import convtranspose_rule
    node = _onnx_helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], name="convt", **attrs)
    inits = [numpy_helper.from_array(np.asarray(W, np.float32), "w"), numpy_helper.from_array(np.asarray(b, np.float32), "b")]
    graph = _onnx_helper.make_graph([node], "g", [_onnx_helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                                    [_onnx_helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    m = shape_inference.infer_shapes(_onnx_helper.make_model(graph, opset_imports=[_onnx_helper.make_opsetid("", 13)]))
    y = next(o for o in m.graph.output if o.name == "y")
    oshape = [d.dim_value for d in y.type.tensor_type.shape.dim]
    g = SimpleNamespace(constants={"w": np.asarray(W), "b": np.asarray(b)}, shapes={"x": list(shape), "y": oshape})
    return convtranspose_rule(node, g, 13)[0], oshape


class ConvTransposeSpec(ConvSpec):
    """ConvTranspose2D: Conv's attacks on its RequantClamps (prefix.rq[i]); the requantization inputs from
    Conv's formula over the zero-inserted input (the template sums only the taps on real inputs: the
    same linear combination)."""
    name, template_file = "ConvTranspose", "convtranspose.circom"
    attack_cfgs = [
        dict(shape=[1, 1, 2, 2], m=1, kernel=[2, 2], strides=[2, 2], pads=[1, 0, 0, 1], output_padding=[1, 0],
             relu=True, y=(-0.3, 0.5), seed=1),
        dict(shape=[1, 2, 3], m=2, group=2, kernel=[2], strides=[2], y=(-60.0, 60.0), seed=2),    # no clamp
    ]

    def build(self, shape=(1, 1, 2, 2), m=1, group=1, kernel=(2, 2), strides=None, pads=None, dilations=None,
              output_padding=None, relu=False, x=(-1.0, 1.0), y=(-1.0, 1.0), seed=0, act_bits=8, weight_bits=8,
              per_channel=True, precision=16, **_):
        cfg = QuantConfig(act_bits, weight_bits, per_channel, precision)
        rng = np.random.default_rng(seed)
        W = rng.normal(0, 1, (shape[1], m // group, *kernel))
        b = rng.normal(0, 0.3, m)
        attrs = {k: list(v) for k, v in (("strides", strides), ("pads", pads), ("dilations", dilations),
                                         ("output_padding", output_padding)) if v is not None}
        try:
            f, oshape = convtranspose_fnode(shape, W, b, group=group, **attrs)
        except Exception as e:   # onnx refuses the attribute set: not a case
            raise _NoTemplate(f"ONNX rejects ConvTranspose {attrs}: {e}") from None
        f.attrs["relu"] = relu
        ctx = make_ctx({"x": list(shape), "y": oshape}, {"x": x, "y": y}, cfg, ["x"])
        op, p, ins, out, bd, template, args = build_node("ConvTranspose", f, ctx)
        return OpCase(self, p, ins, out, bd, template, args)

    def requant_ns(self, case, inputs):
        p = case.params
        return super().requant_ns(case, {"in": [inputs["in"][j] if j >= 0 else p.x_zp for j in p.up_idx]})

    @staticmethod
    def param_strategy():
        @st.composite
        def strat(draw):
            one_d = draw(st.booleans())
            group = draw(st.integers(1, 2))
            c, m = group * draw(st.integers(1, 2)), group * draw(st.integers(1, 2))
            nd = 1 if one_d else 2
            shape = [1, c] + [draw(st.integers(1, 3 if one_d else 2)) for _ in range(nd)]
            k = [draw(st.integers(1, 2)) for _ in range(nd)]
            s = [draw(st.integers(1, 2)) for _ in range(nd)]
            d = [draw(st.integers(1, 2)) for _ in range(nd)]
            op = [draw(st.integers(0, max(si, di) - 1)) for si, di in zip(s, d)]
            pads = [draw(st.integers(0, 1)) for _ in range(2 * nd)]
            return dict(shape=shape, m=m, group=group, kernel=k, strides=s, dilations=d, pads=pads, output_padding=op,
                        relu=draw(st.booleans()), seed=draw(st.integers(0, 2 ** 16)),
                        x=draw(st.tuples(st.sampled_from([-2.0, -0.1, 0.0]), st.sampled_from([0.05, 1.0, 3.0]))),
                        y=draw(st.tuples(st.sampled_from([-40.0, -1.0, 0.0]), st.sampled_from([0.3, 1.0, 40.0]))),
                        act_bits=draw(st.sampled_from([2, 4, 8])), weight_bits=draw(st.sampled_from([2, 4, 8])),
                        per_channel=draw(st.booleans()), precision=draw(st.sampled_from([8, 16, 24])))
        return strat()


SPECS.update({s.name: s for s in (AffineSpec(), SubSpec(), ConvTransposeSpec())})


# --------------------------------------------------------------------------- Lut (activations) / ArgMax
from test_ops_activations import argmax_index, argmax_model, lut_model  # noqa: E402  (signal models)
from zkml.ops.activations import FUNCTIONS  # noqa: E402

LUT_ATTACKS = [
    "wrong_table_entry",          # out = T[x] +- 1 or another entry, every other signal honest
    "other_input_decomposition",  # bits, selectors, multiplexer and out all of another input x'
    "selector_lie",               # a low-bit selector product + 1, everything after it recomputed
    "mux_lie",                    # a multiplexer product + 1, everything after it recomputed
]
ARGMAX_ATTACKS = [
    "wrong_index",                # a one-hot selection of a smaller element
    "tie_broken_wrong_way",       # another maximal element than ONNX's (first / last) index
    "not_one_hot",                # selections summing to 1 that are not 0/1 (2, -1; 1/2, 1/2)
    "output_off_by_one",
]


class LutSpec(OpSpec):
    name, template_file = "Lut", "lut.circom"
    attacks = LUT_ATTACKS
    attack_cfgs = [dict(fn="Sigmoid", shape=[3], x=(-6.0, 6.0), act_bits=8),
                   dict(fn="PRelu", shape=[1, 2, 2], x=(-1.0, 2.0), act_bits=4, alphas=[0.25, -0.5]),
                   dict(fn="HardSwish", shape=[2], x=(-4.0, 4.0), act_bits=5)]

    def build(self, fn="Sigmoid", shape=(3,), x=(-1.0, 1.0), act_bits=8, alpha=0.3, beta=0.5, alphas=(0.1, -0.2),
              **_):
        cfg = QuantConfig(act_bits=act_bits)
        f, defaults = FUNCTIONS[fn]
        n = int(np.prod(shape))
        if fn == "PRelu":      # per channel (axis 1 of [N, C, ...] or the only axis)
            ch = shape[1] if len(shape) > 1 else shape[0]
            inner = n // (shape[0] * ch) if len(shape) > 1 else 1
            per = [alphas[(i // inner) % ch % len(alphas)] for i in range(n)]
            vals = sorted(set(per))
            attrs = {"fn": fn, "alphas": vals, "alpha_index": [vals.index(a) for a in per]}
            grid = np.linspace(*x, 257)
            ys = np.concatenate([f(grid, {"alpha": a}) for a in vals])
        else:
            attrs = {"fn": fn, **{k: {"alpha": alpha, "beta": beta}[k] for k in defaults}}
            ys = f(np.linspace(*x, 257), attrs)
        ctx = make_ctx({"x": list(shape), "y": list(shape)}, {"x": x, "y": (float(ys.min()), float(ys.max()))},
                       cfg, ["x"])
        op, p, ins, out, bd, template, args = build_node("Lut", FNode("Lut", "act", ["x"], "y", attrs), ctx)
        return OpCase(self, p, ins, out, bd, template, args)

    @staticmethod
    def _table(case, i):
        p = case.params
        return p.tables[0 if p.cls is None else p.cls[i]]

    def edge_inputs(self, case):
        t = case.ins[0]
        rows = super().edge_inputs(case)
        codes = list(range(t.qmax + 1))       # every table entry, a few copies
        for k in range(0, len(codes), t.size * 4):
            rows.append({"in": [codes[(k + j) % len(codes)] for j in range(t.size)]})
        return rows[:8]

    def forgeries(self, case, prefix, inputs, out_names):
        p = case.params
        L, H = p.in_bits // 2, p.in_bits - p.in_bits // 2
        res = []
        for i, x in enumerate(inputs["in"]):
            table, pre, names = self._table(case, i), f"{prefix}.lut[{i}]", out_names(i)

            def forge(attack, label, free=(), **lie):
                m = lut_model(pre, x, table, p.in_bits, **lie)
                for name in names:
                    m[name] = m[f"{pre}.out"]
                res.append(Forgery(attack, label, m, list(free), pre, regime, [f"{pre}.{lie_sig(lie)}"]))

            def lie_sig(lie):
                return (f"sel[{lie['sel_lie']}]" if "sel_lie" in lie else f"mux[{lie['mux_lie']}]" if "mux_lie" in lie
                        else "out")

            regime = ("x=0" if x == 0 else "x=max" if x == case.ins[0].qmax else
                      "saturated" if table[x] in (0, case.out.qmax) else "inside")
            for d in (1, -1):
                forge("wrong_table_entry", f"x={x} out{d:+d}", out=table[x] + d)
            other = next((v for v in table if v != table[x]), None)
            if other is not None:
                forge("wrong_table_entry", f"x={x} out=T'={other}", out=other)
                claim = next(v for v in range(len(table)) if table[v] != table[x])
                forge("other_input_decomposition", f"x={x} as {claim}", claim=claim,
                      free=[f"{pre}.n2b.out[{b}]" for b in range(p.in_bits)])
            for k in range((1 << L) - 2 if L else 0):
                forge("selector_lie", f"x={x} sel[{k}]+1", sel_lie=k)
            for k in range((1 << H) - 1):
                forge("mux_lie", f"x={x} mux[{k}]+1", mux_lie=k)
        return res

    def honest_models(self, case, prefix, inputs, out_names):
        res = []
        for i, x in enumerate(inputs["in"]):
            pre = f"{prefix}.lut[{i}]"
            m = lut_model(pre, x, self._table(case, i), case.params.in_bits)
            for name in out_names(i):
                m[name] = m[f"{pre}.out"]
            res.append((pre, m))
        return res

    @staticmethod
    def param_strategy():
        return st.fixed_dictionaries(dict(
            fn=st.sampled_from(sorted(FUNCTIONS)),
            shape=st.sampled_from([[1], [3], [1, 2, 2], [2, 3]]),
            x=st.tuples(st.sampled_from([-8.0, -1.0, -0.1, 0.0]), st.sampled_from([0.05, 1.0, 8.0])),
            act_bits=st.sampled_from([2, 3, 4, 5, 8]),
            alpha=st.sampled_from([0.01, 0.2, 1.5, -0.3]), beta=st.sampled_from([0.0, 0.5, 0.9]),
            alphas=st.lists(st.sampled_from([0.01, -0.25, 0.5, 2.0]), min_size=1, max_size=3)))


class ArgMaxSpec(OpSpec):
    name, template_file = "ArgMax", "argmax.circom"
    attacks = ARGMAX_ATTACKS
    attack_cfgs = [dict(shape=[2, 5], axis=1, last=0, act_bits=3),
                   dict(shape=[1, 4, 2], axis=1, last=1, act_bits=8),
                   dict(shape=[3, 1], axis=0, last=0, act_bits=2)]

    def build(self, shape=(2, 5), axis=1, last=0, x=(-1.0, 1.0), act_bits=8, **_):
        cfg = QuantConfig(act_bits=act_bits)
        oshape = [1 if a == axis else d for a, d in enumerate(shape)]
        ctx = make_ctx({"x": list(shape), "y": oshape}, {"x": x}, cfg, ["x"])
        op, p, ins, out, bd, template, args = build_node(
            "ArgMax", FNode("ArgMax", "am", ["x"], "y", {"axis": axis, "last": last}), ctx)
        return OpCase(self, p, ins, out, bd, template, args)

    @staticmethod
    def _groups(case, xs):
        p = case.params
        return [[xs[(o * p.k + k) * p.inner + i] for k in range(p.k)] for o in range(p.outer) for i in range(p.inner)]

    def edge_inputs(self, case):
        n, qmax = case.ins[0].size, case.ins[0].qmax
        rows = super().edge_inputs(case)       # all equal: every group a tie
        rows += [{"in": [(7 * i) % 3 % (qmax + 1) for i in range(n)]}, {"in": [(qmax - i) % (qmax + 1) for i in range(n)]}]
        return rows

    def forgeries(self, case, prefix, inputs, out_names):
        p = case.params
        res = []
        for g, xs in enumerate(self._groups(case, inputs["in"])):
            pre, names, t = f"{prefix}.am[{g}]", out_names(g), argmax_index(xs, p.last)
            mx = max(xs)
            regime = "K=1" if p.k == 1 else "tie" if xs.count(mx) > 1 else "unique max"

            def forge(attack, label, free=(), **lie):
                m = argmax_model(pre, xs, p.bits, p.last, **lie)
                for name in names:
                    m[name] = m[f"{pre}.out"]
                res.append(Forgery(attack, label, m, list(free), pre, regime, [f"{pre}.e[0]", f"{pre}.out"]))

            for j in range(p.k):
                if j == t:
                    continue
                kind = "tie_broken_wrong_way" if xs[j] == mx else "wrong_index"
                forge(kind, f"e at {j}", free=[f"{pre}.d[{t}].out[{b}]" for b in range(p.bits)],
                      e=[int(k == j) for k in range(p.k)])
                forge("not_one_hot", f"e[{t}]=2 e[{j}]=-1", e=[2 if k == t else -1 if k == j else 0 for k in range(p.k)])
                forge("not_one_hot", f"e[{t}]=e[{j}]=1/2", e=[INV(2) if k in (t, j) else 0 for k in range(p.k)])
            for d in (1, -1):
                forge("output_off_by_one", f"out{d:+d}", out_delta=d)
        return res

    def honest_models(self, case, prefix, inputs, out_names):
        p = case.params
        res = []
        for g, xs in enumerate(self._groups(case, inputs["in"])):
            pre = f"{prefix}.am[{g}]"
            m = argmax_model(pre, xs, p.bits, p.last)
            for name in out_names(g):
                m[name] = m[f"{pre}.out"]
            res.append((pre, m))
        return res

    @staticmethod
    def param_strategy():
        @st.composite
        def strat(draw):
            shape = draw(st.sampled_from([[1, 4], [2, 3], [3, 1], [1, 2, 3], [2, 2, 2], [1, 6]]))
            return dict(shape=shape, axis=draw(st.integers(0, len(shape) - 1)), last=draw(st.integers(0, 1)),
                        x=draw(st.tuples(st.sampled_from([-3.0, -0.1, 0.0]), st.sampled_from([0.05, 1.0, 4.0]))),
                        act_bits=draw(st.sampled_from([2, 3, 4, 8, 12, 16])))
        return strat()


SPECS.update({s.name: s for s in (LutSpec(), ArgMaxSpec())})


# --------------------------------------------------------------------------- ConvMaxPool (fused)
class ConvMaxPoolSpec(OpSpec):
    """A Conv and the MaxPool over its output, fused by zkml.ops.convpool.fuse_params: the running
    maximum over the accumulators A = acc + AOFF (steps ge[k], mx[k]), then one RequantClamp
    (rq[o]) per pooled output."""
    name, template_file = "ConvMaxPool", "conv.circom"
    attacks = sorted(set(REQUANT_ATTACKS) | set(MAXPOOL_ATTACKS))
    attack_cfgs = [
        dict(conv=dict(shape=[1, 1, 4, 4], m=2, kernel=[2, 2], pads=[1, 1, 0, 0], relu=True, y=(-0.3, 0.5),
                       seed=1), pool=dict(kernel=[2, 2], strides=[2, 2])),                  # clamps both sides
        dict(conv=dict(shape=[1, 2, 5], m=2, group=2, kernel=[2], y=(-60.0, 60.0), seed=2),
             pool=dict(kernel=[3], strides=[2], pads=[1, 1])),                              # 1-D, no clamp, padding
    ]

    def build(self, conv=None, pool=None, **_):
        from zkml.ir import Node
        from zkml.ops.convpool import fuse_params
        from zkml.ops.pool import MaxParams, _geom_fields
        cc = ConvSpec().build(**(conv or {}))
        cp = cc.params
        one_d = len(cc.out.shape) == 3
        grid = [cp.n, cp.m, cp.ow] if one_d else [cp.n, cp.m, cp.oh, cp.ow]
        try:
            geo = _window_geom("MaxPool", grid, **(pool or dict(kernel=[2] * (len(grid) - 2))))
            check_windows_nonempty(geo, "MaxPool", 13, "pool")
        except _ZkmlError as e:
            raise _NoTemplate(f"pool window does not fit the conv output: {e}") from None
        p = fuse_params(cp, MaxParams(*_geom_fields(geo), cp.out_bits))
        oshape = [geo.n, cp.m, geo.ow] if one_d else [geo.n, cp.m, geo.oh, geo.ow]
        out = Tensor("y", oshape, cc.out.bits, cc.out.scale, cc.out.zero_point)
        op = REGISTRY[self.name]
        node = Node(self.name, "convpool", ["x"], "y", p)
        b = op.bounds(node, cc.ins, out)
        template, args = op.circom(node, cc.ins, out, b)
        return OpCase(self, p, cc.ins, out, b, template, args)

    def _windows(self, case, inputs):
        """Per pooled output o: (channel, [A of the window's present taps, template order])."""
        p, aoff = case.params, case.bounds.circuit["AOFF"]
        accs = ConvSpec.accs(p, inputs["in"])
        return [(accs[idx[0]][0], [accs[j][1] + aoff for j in idx]) for idx in _pool_windows(p.pool())]

    def _n(self, case, mo, a):
        p, c = case.params, case.bounds.circuit
        return (a - c["AOFF"]) * p.mult[mo] + (1 << (c["SHIFT"] - 1)) + c["K"] * (1 << c["SHIFT"])

    @staticmethod
    def _steps(windows) -> list[int]:
        """The first running-maximum step (ge[k], mx[k]) of each window: the template numbers
        them over the windows in output order, taps - 1 per window."""
        first, k = [], 0
        for _, xs in windows:
            first.append(k)
            k += len(xs) - 1
        return first

    def _max(self, case, prefix, k0, xs, out_delta=0, **kw):
        """The written-out running maximum's signals (ge[k0 + t - 1], mx[k0 + t - 1]) and the claimed
        maximum; out_delta puts the lie into the last step's result (with one tap there is no signal)."""
        m = {}
        y = running_max_model(m, xs, case.bounds.circuit["ABITS"], lambda t: f"{prefix}.ge[{k0 + t - 1}]",
                              lambda t: f"{prefix}.mx[{k0 + t - 1}]", **kw)
        if out_delta:
            y = (y + out_delta) % P
            m[f"{prefix}.mx[{k0 + len(xs) - 2}]"] = y
        return m, y

    def forgeries(self, case, prefix, inputs, out_names):
        c, abits = case.bounds.circuit, case.bounds.circuit["ABITS"]
        res = []
        windows = self._windows(case, inputs)
        for o, ((mo, xs), k0) in enumerate(zip(windows, self._steps(windows))):
            res += requant_forgeries(f"{prefix}.rq[{o}]", self._n(case, mo, max(xs)), c, case.out.bits,
                                     out_names(o))
            mx, k = max(xs), len(xs)
            if k == 1:                      # the maximum is the tap's linear combination: nothing to forge
                continue
            regime = "tie" if xs.count(mx) > 1 else "max inside"
            lies = []
            for t in range(1, k):
                lies.append(("max_wrong_index", f"ge[{t}] flipped", dict(flip=t), t))
                if t == k - 1:
                    for v in sorted({mx + 1, (mx + min(xs)) // 2, 0, 1 << abits, P - 1} - {mx}):
                        lies.append(("value_not_in_window", f"max={v if v < 1 << 64 else 'p-1'}", dict(out=v), t))
            lies += [("output_off_by_one", f"max{d:+d}", dict(out_delta=d), None) for d in (1, -1)]
            for attack, label, kw, t in lies:
                m, y = self._max(case, prefix, k0, xs, **kw)
                m.update(requant_honest(f"{prefix}.rq[{o}]", self._n(case, mo, y) % P, c, out_names(o)))
                free = [] if t is None else [f"{prefix}.ge[{k0 + t - 1}].out[{b}]" for b in range(abits)]
                res.append(Forgery(attack, label, m, free, f"{prefix}.mx[{k0 + k - 2}]", regime))
        return res

    def honest_models(self, case, prefix, inputs, out_names):
        c = case.bounds.circuit
        res = []
        windows = self._windows(case, inputs)
        for o, ((mo, xs), k0) in enumerate(zip(windows, self._steps(windows))):
            m, _ = self._max(case, prefix, k0, xs)
            res += [(f"{prefix}.ge[{k0 + t - 1}]", m) for t in range(1, len(xs))]
            res.append((f"{prefix}.rq[{o}]", requant_honest(f"{prefix}.rq[{o}]", self._n(case, mo, max(xs)), c,
                                                            out_names(o))))
        return res

    @staticmethod
    def param_strategy():
        @st.composite
        def strat(draw):
            conv = draw(ConvSpec.param_strategy())
            nd = len(conv["shape"]) - 2
            k = [draw(st.integers(1, 3)) for _ in range(nd)]
            pool = dict(kernel=k, strides=[draw(st.integers(1, 2)) for _ in range(nd)],
                        pads=[draw(st.integers(0, k[i % nd] - 1)) for i in range(2 * nd)])
            return dict(conv=conv, pool=pool)
        return strat()


SPECS.update({s.name: s for s in (ConvMaxPoolSpec(),)})
