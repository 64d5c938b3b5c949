"""Forgery tests: adversarial witnesses that every R1CS must reject.

Each test
  1. compiles a circuit and computes the honest witness, which must pass
     `snarkjs wtns check` (an attack is only meaningful against a witness that passes);
  2. plays an attacker who changes a hinted signal (a `<--` value such as the quotient q or
     remainder r of RequantClamp), a comparator's output bit, a range-checked input or a
     public output, and recomputes every signal that is a deterministic function of the
     changed ones (bit decompositions, comparator internals, clamped outputs, the public
     output) by the template's own formulas — the attacker's best effort to stay consistent;
  3. asserts that snarkjs rejects the witness (`constraints_hold` is False), that the Python
     R1CS evaluator agrees on the first violated constraint, and names the signals of the
     violated constraint(s) — which constraint catches the attack;
  4. where the attacker has a free choice left (e.g. which bits to put into a Num2Bits whose
     value is out of range), enumerates *every* choice of those bits with the Python evaluator
     and asserts that none satisfies the R1CS.

Signals eliminated by circom's --O2 (e.g. RequantClamp's r, whose linear constraint
`in === q*2^SHIFT + r` is substituted into the remainder's bit decomposition, or the top bit of
each Num2Bits) are not in the witness: the R1CS recomputes them from the surviving signals.
The RequantClamp attacks therefore run on two compilations of the same circuit: --O2 (what zkml
ships) and --O1 (which keeps q, r and every template constraint as written, so the catching
constraint can be named exactly as in circuits/requant.circom).

The tests are cited by name in docs/SOUNDNESS.md.
"""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from circuit_harness import (REQUANT_MAIN, O1, O2, P, Circuit, assert_accepted, assert_rejected, bits, compile_circuit,
                             no_assignment_satisfies, r1cs_of, read_sym, snarkjs_check, tally)
from zkml.ops._requant import requant_args, requant_bounds, requant_kernel, requant_path

INV = lambda x: pow(x, -1, P)  # noqa: E731  field inverse


# =========================================================================== signal models
def less_than(m: dict, name: str, x: int, y: int, n: int, forced: int | None = None) -> int:
    """circomlib LessThan(n) at `name`: out = (x < y) via Num2Bits(n+1) of x + 2^n - y.
    With `forced`, the attacker claims out = forced and chooses the bits most consistent with it:
    top bit 1 - forced, low bits = the low n bits of (x + 2^n - y - top*2^n) mod p."""
    d = x + (1 << n) - y
    honest = 1 - bits(d, n + 1)[n]
    out = honest if forced is None else forced
    top = 1 - out
    low = bits(d - top * (1 << n), n)
    m[f"{name}.in[0]"], m[f"{name}.in[1]"], m[f"{name}.out"] = x, y, out
    m[f"{name}.n2b.in"] = d
    for i, b in enumerate(low + [top]):
        m[f"{name}.n2b.out[{i}]"] = b
    return out


def ge_bit(m: dict, name: str, x: int, y: int, n: int, forced: int | None = None) -> int:
    """circomlib Num2Bits(n+1) at `name` of x + 2^n - y, whose top bit is (x >= y) (MaxWindow's
    comparison, circuits/pool.circom). With `forced`, the attacker claims the top bit = forced and
    chooses the low bits most consistent with it: the low n bits of (x + 2^n - y - top*2^n) mod p."""
    d = x + (1 << n) - y
    top = bits(d, n + 1)[n] if forced is None else forced
    m[f"{name}.in"] = d
    for i, b in enumerate(bits(d - top * (1 << n), n) + [top]):
        m[f"{name}.out[{i}]"] = b
    return top


def num2bits(m: dict, name: str, x: int, n: int) -> None:
    m[f"{name}.in"] = x
    for i, b in enumerate(bits(x, n)):
        m[f"{name}.out[{i}]"] = b


def requant_model(prefix: str, n_in: int, c: dict, q: int, *, above: int | None = None,
                  below: int | None = None, in_range: int | None = None, top_flip: bool = False,
                  out_delta: int = 0, out_name: str | None = None) -> dict:
    """Every signal of RequantClamp(c) at `prefix` given input n_in and the attacker's q (and
    optionally lying comparator bits / output), computed with the template's formulas. The
    remainder is whatever keeps `in === q*2^SHIFT + r` true in the field: r = in - q*2^SHIFT.
    On the aligned way (requant_path(c) == "aligned") r and q are the low and high bits of one
    decomposition of in (nBits), and the lies are `in_range` (the IsZero's output) and `top_flip`
    (q's top bit, the below-LO decision, flipped in nBits)."""
    S, QB = c["SHIFT"], c["QBITS"]
    r = n_in - q * (1 << S)
    if requant_path(c) == "aligned":
        # one Num2Bits(S + Q) of in (nBits): the attacker's r in its low S bits, q in the Q above
        m = {f"{prefix}.in": n_in, f"{prefix}.nBits.in": n_in}
        qb = bits(q, QB)
        if top_flip:
            qb[QB - 1] = 1 - qb[QB - 1]
        for i, b in enumerate(bits(r, S) + qb):
            m[f"{prefix}.nBits.out[{i}]"] = b
        B = (c["HI"] - c["LO"] + 1).bit_length() - 1
        low = sum(b << i for i, b in enumerate(qb[:B]))
        high = sum(qb[B:QB - 1])
        z = int(high % P == 0) if in_range is None else in_range
        # IsZero: the attacker picks inv to satisfy out = 1 - in*inv when it can (in != 0)
        inv = (1 - z) * pow(high, -1, P) % P if high % P else 0
        m.update({f"{prefix}.inRange.in": high, f"{prefix}.inRange.inv": inv, f"{prefix}.inRange.out": z})
        cv = low + (1 - z) * ((1 << B) - 1 - low)
        m[f"{prefix}.c"] = cv
        out = c["LO"] - c["OFF"] + qb[QB - 1] * cv + out_delta
        m[f"{prefix}.out"] = out
        if out_name:
            m[out_name] = out
        return m
    m = {f"{prefix}.in": n_in, f"{prefix}.q": q, f"{prefix}.r": r}
    num2bits(m, f"{prefix}.rBits", r, S)
    if not (c["CLAMP_LO"] or c["CLAMP_HI"]):    # with a clamp, its comparator bounds q instead
        num2bits(m, f"{prefix}.qBits", q, QB)
    upper = q
    if c["CLAMP_HI"]:
        a = less_than(m, f"{prefix}.above", c["HI"], q, QB, above)
        upper = q + a * (c["HI"] - q)
    m[f"{prefix}.upper"] = upper
    if c["CLAMP_LO"]:
        b = less_than(m, f"{prefix}.below", q, c["LO"], QB, below)
        out = upper - c["OFF"] + b * (c["LO"] - upper)
    else:
        out = upper - c["OFF"]
    out += out_delta
    m[f"{prefix}.out"] = out
    if out_name:
        m[out_name] = out
    return m


def check_covers(circuit: Circuit, model: dict, prefix: str) -> None:
    """The attacker must have recomputed every surviving signal of the component."""
    missing = [s for s in circuit.names(prefix + ".") if s not in model]
    assert not missing, f"the signal model does not set {missing}"


def honest_model_matches(circuit: Circuit, w: list, model: dict) -> None:
    """Sanity check of the signal model: with no lie it reproduces the honest witness."""
    diff = {s: (v % P, circuit.value(w, s)) for s, v in model.items()
            if s in circuit.sym and circuit.survives(s) and v % P != circuit.value(w, s)}
    assert not diff, f"signal model disagrees with the witness generator: {diff}"


def bit_names(circuit: Circuit, *prefixes: str) -> list[str]:
    return [s for p in prefixes for s in circuit.names(p) if ".out[" in s]


def unsatisfiable_bit_groups(circuit: Circuit, values: list[int], groups: dict[str, list[str]],
                             limit: int = 1 << 16) -> set[str]:
    """Exhaustive check of the attacker's remaining choices, one bit decomposition at a time.

    `groups` maps a name (e.g. "rBits", "above") to the bits of one decomposition. Every other
    signal keeps its value in `values`. The constraints the surviving bits of two groups appear
    in must be disjoint; this is checked. The witness can then be completed iff every group can
    be completed on its own and the constraints touching no group hold.

    Returns the groups for which no 0/1 assignment of their bits satisfies the constraints they
    appear in (every assignment is tried with the Python evaluator), plus "untouched" if a
    constraint touching no group fails. A non-empty result means no choice of all the bits
    satisfies the R1CS, and it names what catches the attack. This keeps the enumeration
    complete where the product over all groups (2^20 for two clamps) is too large to try."""
    r = r1cs_of(circuit)
    p = r.prime
    wires = {g: [circuit.index(n) for n in names if circuit.survives(n)] for g, names in groups.items()}
    touched = {g: {i for w in ws for i in r.constraints_of(w)} for g, ws in wires.items()}
    seen: set[int] = set()
    for g in touched:
        assert not touched[g] & seen, f"group {g} shares constraints with another group: enumerate them together"
        seen |= touched[g]
    out = {"untouched"} if any(i not in seen for i in r.unsatisfied(values)) else set()
    v = list(values)
    for g, idx in wires.items():
        assert 2 ** len(idx) <= limit, f"2^{len(idx)} assignments of {g} is too many"
        cons = [r.constraints[i] for i in sorted(touched[g])]
        ok = False
        for choice in itertools.product((0, 1), repeat=len(idx)):
            for w, x in zip(idx, choice):
                v[w] = x
            if all((r._eval(a, v) * r._eval(b, v) - r._eval(c, v)) % p == 0 for a, b, c in cons):
                ok = True
                break
        for w in idx:
            v[w] = values[w]
        if not ok:
            out.add(g)
            tally("exhaustive bit assignments (Python R1CS)", 2 ** len(idx))
    return out


def requant_bit_groups(circuit: Circuit, prefix: str) -> dict[str, list[str]]:
    """The bit decompositions of one RequantClamp: rBits, and qBits or the comparators' n2b; on
    the aligned way the one decomposition of in (nBits)."""
    groups = {g: bit_names(circuit, f"{prefix}.{g}.") for g in ("rBits", "qBits", "above", "below", "nBits")}
    return {g: names for g, names in groups.items() if names}


# =========================================================================== RequantClamp

# Parameters from the real bound rule: acc in [-600, 600], shift 4, zp 5, relu-fused (lo = zp),
# uint4 output -> K=37, QBITS=7, LO=37, HI=47, OFF=32, CLAMP_LO = CLAMP_HI = 1.
CLAMP_BOTH = dict(amin=-600, amax=600, shift=4, zp=5, lo=5, bits=4)
# acc in [-1000, 1000], shift 6, zp 100, uint8: q never crosses LO/HI -> CLAMP_LO = CLAMP_HI = 0.
CLAMP_NONE = dict(amin=-1000, amax=1000, shift=6, zp=100, lo=0, bits=8)

# named accumulator values (instances of RequantClamp in one circuit)
INSTANCES = {
    "q_zero_clamped_low": -600,     # N = 0: q = 0, r = 0
    "clamped_low": -300,            # q < LO
    "at_lo": -3,                    # q = LO
    "inside": 50,                   # LO < q < HI, r = 10
    "inside_r_max": 55,             # r = 2^SHIFT - 1
    "at_hi": 157,                   # q = HI
    "clamped_high": 600,            # q > HI, r = 0
}


class RequantSetup:
    def __init__(self, params: dict, flags: list, instances: dict = INSTANCES):
        self.params = params
        b = requant_bounds(params["amin"], params["amax"], params["shift"], params["zp"], params["lo"],
                           params["bits"])
        self.c = c = b.circuit
        self.names = list(instances)
        accs = [instances[k] for k in self.names]
        assert all(params["amin"] <= a <= params["amax"] for a in accs)
        self.accs = accs
        self.n = [a + (1 << (c["SHIFT"] - 1)) + c["K"] * (1 << c["SHIFT"]) for a in accs]
        args = ", ".join(str(v) for _, v in requant_args(b))
        self.circuit = compile_circuit(REQUANT_MAIN.format(args=args, n=len(accs)), flags=flags)
        self.w = self.circuit.witness({"in": self.n})
        want = requant_kernel(np.array(accs, dtype=object), params["shift"], params["zp"], params["lo"],
                              params["bits"])
        got = [self.circuit.value(self.w, f"main.out[{i}]") for i in range(len(accs))]
        assert got == [int(v) for v in want]
        # and the definition itself (round half up, add zp, clamp to [lo, 2^bits - 1]), in Python integers
        sh, top = params["shift"], (1 << params["bits"]) - 1
        assert got == [min(max((a + (1 << (sh - 1))) // (1 << sh) + params["zp"], params["lo"]), top) for a in accs]

    def inst(self, name: str) -> tuple[int, str, int, int]:
        """(index, component prefix, N, honest q)"""
        i = self.names.index(name)
        return i, f"main.rq[{i}]", self.n[i], self.n[i] >> self.c["SHIFT"]

    def model(self, name: str, q: int | None = None, **kw) -> dict:
        i, prefix, n, qh = self.inst(name)
        return requant_model(prefix, n, self.c, qh if q is None else q, out_name=f"main.out[{i}]", **kw)

    def other_remainders(self):
        """(instance, prefix, q') for every instance and every remainder r' != r in [0, 2^SHIFT), with
        q' = (in - r') / 2^SHIFT in the field: the only quotient that keeps `in === q*2^SHIFT + r`
        with r' in range (r' = r is checked to give the honest witness back)."""
        S = self.c["SHIFT"]
        for name in self.names:
            _, prefix, n, q = self.inst(name)
            for r2 in range(1 << S):
                q2 = (n - r2) * INV(1 << S) % P
                if r2 == n % (1 << S):
                    assert q2 == q and self.forge(name, q=q2) == self.w
                    continue
                yield name, prefix, q2

    def forge(self, name: str, **kw) -> list[int]:
        m = self.model(name, **kw)
        check_covers(self.circuit, m, self.inst(name)[1])
        return self.circuit.tamper(self.w, m, skip_eliminated=True)


_setups: dict = {}


def setup_for(kind: str, opt: str) -> RequantSetup:
    key = (kind, opt)
    if key not in _setups:
        s = RequantSetup({"both": CLAMP_BOTH, "none": CLAMP_NONE}[kind], {"O1": O1, "O2": O2}[opt])
        assert_accepted(s.circuit, s.w)        # `snarkjs wtns check` CLI + library + Python
        _setups[key] = s
    return _setups[key]


@pytest.fixture(params=["O1", "O2"])
def rq(request) -> RequantSetup:
    s = setup_for("both", request.param)
    assert (s.c["CLAMP_LO"], s.c["CLAMP_HI"]) == (1, 1)
    return s


def test_requant_honest_witness_passes_and_signal_model_matches(rq):
    """Baseline: honest witness accepted; the attacker's signal model with no lie reproduces it."""
    for name in rq.names:
        m = rq.model(name)
        check_covers(rq.circuit, m, rq.inst(name)[1])
        honest_model_matches(rq.circuit, rq.w, m)


def test_snarkjs_cli_and_persistent_checker_agree(rq):
    """The harness checks most attacks with snarkjs's `wtns.check` in a persistent node process;
    the command line `snarkjs wtns check` must give the same verdict and failing constraint."""
    _, prefix, n, q = rq.inst("inside")
    cases = [rq.w, rq.forge("inside", q=q + 1), rq.forge("inside", out_delta=1),
             rq.forge("inside", above=1), rq.forge("clamped_low", below=0)]
    for v in cases:
        assert snarkjs_check(rq.circuit.r1cs, v, cli=True) == snarkjs_check(rq.circuit.r1cs, v)
    assert snarkjs_check(rq.circuit.r1cs, rq.w) is None


def _rq_unsat(s: RequantSetup, prefix: str, bad: list[int]) -> set[str]:
    """Every choice of every bit of the instance (rBits, and the comparators' n2b or qBits),
    tried group by group (unsatisfiable_bit_groups): the decompositions no choice completes."""
    unsat = unsatisfiable_bit_groups(s.circuit, bad, requant_bit_groups(s.circuit, prefix))
    assert unsat, "some choice of the instance's bits satisfies the R1CS"
    return unsat


@pytest.mark.parametrize("inst", ["inside", "inside_r_max", "clamped_high", "at_hi"])
def test_requant_forged_quotient_plus_one_remainder_minus_2shift(rq, inst):
    """Attacker: q+1 and r - 2^SHIFT (so in === q*2^S + r still holds in the field), comparators,
    clamped output and public output recomputed from q+1. r - 2^S < 0 is the field element
    p - (2^S - r): no S bits sum to it. Caught by the remainder's Num2Bits (rBits) alone: q+1 is
    inside both comparators' windows, so their decompositions can be completed."""
    _, prefix, n, q = rq.inst(inst)
    bad = rq.forge(inst, q=q + 1)
    assert_rejected(rq.circuit, bad, caught_in="rBits")
    assert _rq_unsat(rq, prefix, bad) == {"rBits"}


@pytest.mark.parametrize("inst", ["inside", "at_lo", "q_zero_clamped_low", "clamped_low"])
def test_requant_forged_quotient_minus_one_remainder_plus_2shift(rq, inst):
    """Attacker: q-1 and r + 2^SHIFT >= 2^SHIFT (q = 0 becomes p - 1). Caught by rBits (r needs
    SHIFT+1 bits), and only by rBits: for q = 0, q' = p - 1 reads as -1, which lies inside the
    window [LO - 2^QBITS, LO + 2^QBITS) the `below` comparator allows (and the `above` one's),
    so it is the remainder's range check that rules it out (docs/SOUNDNESS.md)."""
    _, prefix, n, q = rq.inst(inst)
    bad = rq.forge(inst, q=q - 1)
    assert_rejected(rq.circuit, bad, caught_in="rBits")
    assert _rq_unsat(rq, prefix, bad) == {"rBits"}


@pytest.mark.parametrize("j", [2, 5, "all"])
def test_requant_forged_remainder_at_least_2shift(rq, j):
    """Attacker: moves j units of 2^SHIFT from q into r (q - j, r + j*2^S >= 2^S); 'all' puts
    the whole input into r (q = 0, r = in). Caught by rBits."""
    _, prefix, n, q = rq.inst("clamped_high")
    j = q if j == "all" else j
    bad = rq.forge("clamped_high", q=q - j)
    assert_rejected(rq.circuit, bad, caught_in="rBits")
    assert _rq_unsat(rq, prefix, bad) == {"rBits"}


@pytest.mark.parametrize("k", [1, 7, 1 << 40, 1 << 200])
def test_requant_forged_field_negative_remainder(rq, k):
    """Attacker: r = p - k (i.e. -k) and q = (in + k) / 2^SHIFT computed in the field, so the
    linear equation holds exactly; q is then a huge field element (2^S does not divide in + k).
    Caught by rBits and by each clamp comparator's decomposition of LO/HI + 2^QBITS - q."""
    _, prefix, n, q = rq.inst("inside")
    qf = (n + k) * INV(1 << rq.c["SHIFT"]) % P
    bad = rq.forge("inside", q=qf)
    assert (qf * (1 << rq.c["SHIFT"]) + (P - k)) % P == n
    assert_rejected(rq.circuit, bad, caught_in=("rBits", "above.", "below."))
    assert _rq_unsat(rq, prefix, bad) == {"rBits", "above", "below"}


def test_requant_every_other_in_range_remainder_forces_quotient_out_of_range(rq):
    """Attacker: any other remainder r' in [0, 2^SHIFT) (r' != r), q' = (in - r') / 2^S in the
    field. All 2^S - 1 choices are enumerated; each is rejected (snarkjs and the Python evaluator
    on each, every choice of the bits tried). q' is a huge field element, outside the window of
    each comparator: caught by the `above` and by the `below` decomposition, each on its own."""
    _, prefix, n, q = rq.inst("inside")
    S = rq.c["SHIFT"]
    r_honest = n % (1 << S)
    others = [r for r in range(1 << S) if r != r_honest]
    for r in others:
        qf = (n - r) * INV(1 << S) % P
        assert (1 << (rq.c["QBITS"] + 1)) <= qf <= P - (1 << (rq.c["QBITS"] + 1))
        bad = rq.forge("inside", q=qf)
        names = assert_rejected(rq.circuit, bad, caught_in=("above.", "below."))
        assert any(".above." in x for x in names) and any(".below." in x for x in names)
        assert _rq_unsat(rq, prefix, bad) == {"above", "below"}


@pytest.mark.parametrize("delta", [+1, -1])
@pytest.mark.parametrize("inst", ["inside", "clamped_high", "clamped_low"])
def test_requant_forged_output_off_by_one(rq, inst, delta):
    """Attacker: the public output out +-1 with every hint honest. Caught by the output
    constraint out <== upper - OFF + below.out * (LO - upper)."""
    bad = rq.forge(inst, out_delta=delta)
    assert_rejected(rq.circuit, bad, caught_in=("main.out", ".upper", "below.out"))


@pytest.mark.parametrize("comparator,inst", [
    ("above", "clamped_high"),     # true HI < q claimed false: output q - OFF instead of HI - OFF
    ("above", "inside"),           # false claimed true: output clamped to HI - OFF
    ("above", "at_hi"),            # q = HI claimed HI < q: same output, the comparator still lies
    ("below", "clamped_low"),      # true q < LO claimed false: output q - OFF (below LO)
    ("below", "q_zero_clamped_low"),
    ("below", "inside"),           # false claimed true: output clamped to LO - OFF
])
def test_requant_forged_comparator_flipped(rq, comparator, inst):
    """Attacker: q and r honest, the clamp comparator's output bit flipped (clamp on the wrong
    side); upper / out / public output recomputed from the lying bit, the comparator's Num2Bits
    top bit set to match (1 - out) and its low bits enumerated over every choice. Caught by the
    comparator's bit decomposition (n2b) of LO/HI + 2^QBITS - q."""
    _, prefix, n, q = rq.inst(inst)
    honest = rq.model(inst)[f"{prefix}.{comparator}.out"]
    bad = rq.forge(inst, **{comparator: 1 - honest})
    assert_rejected(rq.circuit, bad, caught_in=f"{comparator}.")
    assert no_assignment_satisfies(rq.circuit, bad, bit_names(rq.circuit, f"{prefix}.{comparator}.n2b."))


@pytest.mark.parametrize("attack", ["q_plus_one", "q_minus_one", "other_remainder", "out_plus_one"])
def test_requant_without_clamps_forgeries_rejected(attack):
    """CLAMP_LO = CLAMP_HI = 0 (out <== q - OFF, no comparator), --O2: the quotient keeps its
    Num2Bits (qBits). q +- 1 is caught by rBits; another remainder r' (q' = (in - r')/2^S in the
    field) by qBits; the output forgery by the output constraint. The group-by-group enumeration
    agrees with the joint one over all of the instance's bits (small enough here to try)."""
    s = setup_for("none", "O2")
    assert (s.c["CLAMP_LO"], s.c["CLAMP_HI"]) == (0, 0)
    _, prefix, n, q = s.inst("inside")
    r2 = (n + 1) % (1 << s.c["SHIFT"])
    kw = {"q_plus_one": dict(q=q + 1), "q_minus_one": dict(q=q - 1), "out_plus_one": dict(out_delta=1),
          "other_remainder": dict(q=(n - r2) * INV(1 << s.c["SHIFT"]) % P)}[attack]
    bad = s.forge("inside", **kw)
    want = {"out_plus_one": "main.out", "other_remainder": "qBits"}.get(attack, "rBits")
    assert_rejected(s.circuit, bad, caught_in=want)
    if attack != "out_plus_one":
        assert _rq_unsat(s, prefix, bad) == {want}
        assert no_assignment_satisfies(s.circuit, bad, bit_names(s.circuit, f"{prefix}.rBits.", f"{prefix}.qBits."))


# ------------------------------------------------- the quotient bounded by a clamp comparator alone
# One parameter set per clamp mode, from the real bound rule (checked below), SHIFT = 4 so that
# every remainder can be enumerated: (params, accumulator values of the instances).
CLAMP_MODES = {
    # acc in [0, 600], zp 0, uint4: q in [0, 38], LO = 0 never crossed, HI = 15 -> CLAMP_HI only
    "hi": (dict(amin=0, amax=600, shift=4, zp=0, lo=0, bits=4), (1, 0)),
    # acc in [-600, 100], relu-fused (lo = zp = 5), uint8: q in [0, 43], LO = 37, HI = 287 -> CLAMP_LO only
    "lo": (dict(amin=-600, amax=100, shift=4, zp=5, lo=5, bits=8), (0, 1)),
    "both": (CLAMP_BOTH, (1, 1)),
    # acc in [-200, 200], zp 100, uint8: q in [88, 113], OFF = 0 -> no clamp
    "none": (dict(amin=-200, amax=200, shift=4, zp=100, lo=0, bits=8), (0, 0)),
}


def _mode_setup(mode: str, opt: str) -> RequantSetup:
    key = ("mode", mode, opt)
    if key not in _setups:
        params, (hi, lo) = CLAMP_MODES[mode]
        a, z = params["amin"], params["amax"]
        accs = {"amin": a, "low": a + (z - a) // 5 + 3, "mid": (a + z) // 2 + 9, "high": z - (z - a) // 7, "amax": z}
        s = RequantSetup(params, {"O1": O1, "O2": O2}[opt], accs)
        assert (s.c["CLAMP_HI"], s.c["CLAMP_LO"]) == (hi, lo)
        assert_accepted(s.circuit, s.w)
        _setups[key] = s
    return _setups[key]


@pytest.mark.parametrize("opt", ["O1", "O2"])
@pytest.mark.parametrize("mode", list(CLAMP_MODES))
def test_requant_every_other_quotient_remainder_pair_rejected(mode, opt):
    """The claim of circuits/requant.circom: with a clamp comparator present, the quotient needs no
    Num2Bits of its own. For each clamp mode (HI only, LO only, both; none keeps qBits), on --O1
    and --O2, for every instance and every remainder r' in [0, 2^SHIFT): q' = (in - r') / 2^SHIFT in
    the field is the only quotient that keeps `in === q*2^SHIFT + r` with r' in range. r' = r gives
    the honest witness back; every other r' is rejected by snarkjs and the Python evaluator, and
    the decomposition of EACH comparator present (or qBits without a clamp) cannot be completed
    by any choice of its bits, whatever the attacker claims as that comparator's output (upper,
    out and the public output recomputed from the claim). rBits is satisfiable: it is the
    comparator alone that rules q' out."""
    s = _mode_setup(mode, opt)
    S, c = s.c["SHIFT"], s.c
    present = [g for g, on in (("above", c["CLAMP_HI"]), ("below", c["CLAMP_LO"])) if on] or ["qBits"]
    assert any(".qBits." in x for x in s.circuit.sym) == (mode == "none")
    claims = [dict(zip([g for g in present if g != "qBits"], bs))
              for bs in itertools.product((0, 1), repeat=len([g for g in present if g != "qBits"]))]
    rejected = 0
    for name, prefix, q2 in s.other_remainders():
        bad = s.forge(name, q=q2)
        names = assert_rejected(s.circuit, bad, caught_in=tuple(f".{g}." for g in present))
        assert all(any(f".{g}." in x for x in names) for g in present), (present, sorted(names))
        assert _rq_unsat(s, prefix, bad) == set(present)
        for claim in claims:            # every output the comparators could claim
            bad = s.forge(name, q=q2, **claim)
            assert r1cs_of(s.circuit).unsatisfied(bad)
            assert set(present) <= _rq_unsat(s, prefix, bad)
        rejected += 1
    assert rejected == len(s.names) * ((1 << S) - 1)


# SHIFT + QBITS = 252 (the largest the bound analysis allows): q's window edges, read from
# circomlib's LessThan(QBITS) = Num2Bits(QBITS+1) of in[0] + 2^QBITS - in[1]:
#     above (HI, q):  q~ in [HI - 2^QBITS + 1, HI + 2^QBITS]
#     below (q, LO):  q~ in [LO - 2^QBITS, LO + 2^QBITS - 1]
WIDE_MODES = {
    # acc in [0, 2^251], uint4: q in [0, 128], QBITS = 8, HI = 15 -> CLAMP_HI only
    "hi": dict(amin=0, amax=1 << 251, shift=244, zp=0, lo=0, bits=4),
    # acc in [-2^251, 2^251 - 2^244], uint8: K = 128, q in [0, 255], LO = 128 -> CLAMP_LO only
    "lo": dict(amin=-(1 << 251), amax=(1 << 251) - (1 << 244), shift=244, zp=0, lo=0, bits=8),
    "both_small": CLAMP_BOTH,
}


@pytest.mark.parametrize("opt", ["O1", "O2"])
@pytest.mark.parametrize("mode", list(WIDE_MODES))
def test_requant_comparator_window_edges(mode, opt):
    """The soundness argument's bound, at its edges: a comparator alone lets q~ range over its
    window (above), 2^(QBITS+1) values; the attacker takes q' at each edge of the window and
    r' = in - q'*2^SHIFT. Inside the window the comparator's decomposition is satisfiable (the
    window is exactly as wide as the argument says) and the remainder's range check rejects r'
    (snarkjs + Python; with SHIFT = 4 also every choice of r's bits); one step outside, the
    comparator itself rejects. Includes SHIFT + QBITS = 252, where q'*2^SHIFT + r' reaches
    2^253 in magnitude: still below p, so nothing wraps."""
    params = WIDE_MODES[mode]
    b = requant_bounds(params["amin"], params["amax"], params["shift"], params["zp"], params["lo"], params["bits"])
    c = b.circuit
    if mode != "both_small":
        assert c["SHIFT"] + c["QBITS"] == 252 and b.max_bits == 252
        assert (c["CLAMP_HI"], c["CLAMP_LO"]) == ({"hi": (1, 0), "lo": (0, 1)}[mode])
    s = RequantSetup(params, {"O1": O1, "O2": O2}[opt], {"amin": params["amin"], "amax": params["amax"]})
    assert_accepted(s.circuit, s.w)
    S, Q = c["SHIFT"], c["QBITS"]
    windows = []
    if c["CLAMP_HI"]:
        windows.append(("above", c["HI"] - (1 << Q) + 1, c["HI"] + (1 << Q)))
    if c["CLAMP_LO"]:
        windows.append(("below", c["LO"] - (1 << Q), c["LO"] + (1 << Q) - 1))
    assert windows
    for name in s.names:
        _, prefix, n, q = s.inst(name)
        for g, lo_edge, hi_edge in windows:
            assert -(1 << Q) <= lo_edge <= q <= hi_edge < 1 << (Q + 1)
            for q2, inside in ((lo_edge, True), (hi_edge, True), (lo_edge - 1, False), (hi_edge + 1, False)):
                bad = s.forge(name, q=q2 % P)
                r2 = n - q2 * (1 << S)
                assert not 0 <= r2 < 1 << S
                groups = requant_bit_groups(s.circuit, prefix)
                if S > 12:
                    groups.pop("rBits")          # 2^244 choices: the snarkjs / Python verdict stands
                unsat = unsatisfiable_bit_groups(s.circuit, bad, groups)
                if inside:
                    assert_rejected(s.circuit, bad, caught_in="rBits")
                    assert g not in unsat
                    if S <= 12:
                        assert "rBits" in unsat
                else:
                    assert_rejected(s.circuit, bad, caught_in=f".{g}.")
                    assert g in unsat


# ------------------------------------------------- the aligned way: the clamp read from q's bits
# From the real bound rule: acc in [-600, 600], shift 4, zp 3, uint4 (16 values: a power of two)
# -> K raised to 67 so that LO = 64 = 2^(QBITS-1): QBITS = 7, HI = 79, OFF = 64, both clamps.
CLAMP_ALIGNED = dict(amin=-600, amax=600, shift=4, zp=3, lo=0, bits=4)
ALIGNED_INSTANCES = {
    "lowest": -600,                 # q = 30, far below LO
    "clamped_low": -300,            # q < LO
    "at_lo": -50,                   # q = LO
    "inside": 45,                   # LO < q < HI
    "inside_r_max": 55,             # r = 2^SHIFT - 1
    "at_hi": 190,                   # q = HI
    "clamped_high": 600,            # q > HI
}


def _aligned_setup(opt: str) -> RequantSetup:
    key = ("aligned", opt)
    if key not in _setups:
        s = RequantSetup(CLAMP_ALIGNED, {"O1": O1, "O2": O2}[opt], ALIGNED_INSTANCES)
        assert requant_path(s.c) == "aligned"
        assert (s.c["QBITS"], s.c["LO"], s.c["HI"], s.c["OFF"]) == (7, 64, 79, 64)
        assert_accepted(s.circuit, s.w)
        _setups[key] = s
    return _setups[key]


@pytest.fixture(params=["O1", "O2"])
def al(request) -> RequantSetup:
    return _aligned_setup(request.param)


def test_requant_aligned_honest_witness_and_regimes(al):
    """Baseline: every regime occurs, the honest witness is accepted and the attacker's signal
    model with no lie reproduces it; the aligned way has no comparator."""
    qs = {name: al.inst(name)[3] for name in al.names}
    assert qs["clamped_low"] < 64 == qs["at_lo"] < qs["inside"] < 79 == qs["at_hi"] < qs["clamped_high"]
    assert not any(".above." in x or ".below." in x for x in al.circuit.sym)
    for name in al.names:
        m = al.model(name)
        check_covers(al.circuit, m, al.inst(name)[1])
        honest_model_matches(al.circuit, al.w, m)


def _al_part(s: RequantSetup, prefix: str, part: str) -> list[str]:
    """The bits of the aligned way's one decomposition of N (nBits) that hold r (its low SHIFT bits)
    or q (the QBITS above them)."""
    S, Q = s.c["SHIFT"], s.c["QBITS"]
    return [f"{prefix}.nBits.out[{i}]" for i in (range(S) if part == "r" else range(S, S + Q))]


def test_requant_aligned_every_other_quotient_remainder_pair_rejected(al):
    """Every remainder r' != r in [0, 2^SHIFT) in the low bits of N's decomposition, with q' =
    (in - r') / 2^SHIFT in the field in the high bits, for every instance, whatever the attacker
    claims for the IsZero and for q's top bit: rejected by nBits, and with r' in the low bits no
    choice of q's bits completes the witness (no sum of them times 2^SHIFT makes up in - r')."""
    S = al.c["SHIFT"]
    rejected = 0
    for name, prefix, q2 in al.other_remainders():
        for in_range, top_flip in [(None, False), *itertools.product((0, 1), (False, True))]:
            bad = al.forge(name, q=q2, in_range=in_range, top_flip=top_flip)
            assert_rejected(al.circuit, bad, caught_in=".nBits.")
            assert no_assignment_satisfies(al.circuit, bad, _al_part(al, prefix, "q"))
        rejected += 1
    assert rejected == len(al.names) * ((1 << S) - 1)


@pytest.mark.parametrize("dq", [1, -1, 2, 1 << 7, -(1 << 7)])
def test_requant_aligned_forged_quotient_shift(al, dq):
    """q + dq in the high bits of N's decomposition and the low bits of r = in - (q + dq)*2^S (mod p)
    below them: rejected by nBits, and with q + dq's bits fixed no choice of r's bits completes the
    witness. q +- 2^QBITS has q's own QBITS bits: that claim is not expressible in a QBITS-bit
    decomposition (the forged bits then differ from the honest ones only in r's part, if at all)."""
    Q = al.c["QBITS"]
    for name in al.names:
        _, prefix, n, q = al.inst(name)
        bad = al.forge(name, q=(q + dq) % P)
        if bad == al.w:
            assert (q + dq) % (1 << Q) == q
            continue
        assert_rejected(al.circuit, bad, caught_in=".nBits.")
        if (q + dq) % (1 << Q) != q:
            assert no_assignment_satisfies(al.circuit, bad, _al_part(al, prefix, "r"))


@pytest.mark.parametrize("name", list(ALIGNED_INSTANCES))
def test_requant_aligned_forged_in_range_flipped(al, name):
    """q and r honest, the IsZero's output (is q - LO within HI - LO?) flipped, c and the output
    recomputed from the lie (the attacker picks inv as well as it can): caught by the IsZero."""
    _, prefix, n, q = al.inst(name)
    honest = al.model(name)[f"{prefix}.inRange.out"]
    bad = al.forge(name, in_range=1 - honest)
    assert_rejected(al.circuit, bad, caught_in=".inRange.")


@pytest.mark.parametrize("name", list(ALIGNED_INSTANCES))
def test_requant_aligned_forged_top_bit_flipped(al, name):
    """q and r honest, q's top bit (the below-LO decision) flipped in its Num2Bits, the output
    recomputed from it: rejected, and where the lie changes the output (c != 0: every instance but
    q = LO) no choice of q's bits completes the witness."""
    _, prefix, n, q = al.inst(name)
    bad = al.forge(name, top_flip=True)
    i = al.inst(name)[0]
    changes = al.model(name, top_flip=True)[f"main.out[{i}]"] != al.model(name)[f"main.out[{i}]"]
    assert changes == (q != al.c["LO"])
    if bad == al.w:          # --O2 eliminated the bit and the output is the same: no lie to submit
        assert not changes
        return
    assert_rejected(al.circuit, bad, caught_in=".nBits.")
    if changes:
        S = al.c["SHIFT"]
        assert no_assignment_satisfies(al.circuit, bad, [f"{prefix}.nBits.out[{S + i}]" for i in range(al.c["QBITS"])])


@pytest.mark.parametrize("delta", [1, -1])
@pytest.mark.parametrize("what", ["out", "c"])
def test_requant_aligned_forged_output_or_clamped_value(al, what, delta):
    """Every hint honest, the output (or the clamped value c, the output recomputed from it) off
    by one: caught by the output's (or c's) own constraint."""
    for name in al.names:
        _, prefix, n, q = al.inst(name)
        m = al.model(name)
        if what == "out":
            m = al.model(name, out_delta=delta)
        else:
            top = m[f"{prefix}.nBits.out[{al.c['SHIFT'] + al.c['QBITS'] - 1}]"]
            m[f"{prefix}.c"] += delta
            m[f"{prefix}.out"] += top * delta
            m[f"main.out[{al.inst(name)[0]}]"] = m[f"{prefix}.out"]
        bad = al.circuit.tamper(al.w, m, skip_eliminated=True)
        if bad == al.w:
            continue                     # c eliminated (--O2) or a lie that changes nothing
        assert_rejected(al.circuit, bad, caught_in=("main.out", f"{prefix}.c", f"{prefix}.out", ".nBits.",
                                                     ".inRange."))


@pytest.mark.parametrize("opt", ["O1", "O2"])
def test_requant_aligned_at_252_bits(opt):
    """SHIFT + QBITS = 252, the largest the bound analysis allows, on the aligned way: q' = q +- 1,
    q +- 2^QBITS and a field-negative remainder are rejected; nothing wraps below p."""
    params = dict(amin=-(1 << 251), amax=(1 << 251) - (1 << 244), shift=244, zp=0, lo=0, bits=4)
    b = requant_bounds(params["amin"], params["amax"], params["shift"], params["zp"], params["lo"], params["bits"])
    assert requant_path(b.circuit) == "aligned" and b.max_bits == 252
    s = RequantSetup(params, {"O1": O1, "O2": O2}[opt], {"amin": params["amin"], "mid": 0, "amax": params["amax"]})
    assert_accepted(s.circuit, s.w)
    S, Q = s.c["SHIFT"], s.c["QBITS"]
    tried = 0
    for name in s.names:
        _, prefix, n, q = s.inst(name)
        for q2 in (q + 1, q - 1, q + (1 << Q), q - (1 << Q), (n + 1) * INV(1 << S)):
            bad = s.forge(name, q=q2 % P)
            if bad == s.w:      # the claim's bits are the honest ones (q2 = q mod 2^QBITS): nothing to submit
                assert q2 % P % (1 << Q) == q
                continue
            assert_rejected(s.circuit, bad, caught_in=".nBits.")
            tried += 1
    assert tried >= 3 * len(s.names)


# =========================================================================== ReluZp
RELU_MAIN = """pragma circom 2.1.0;
include "relu.circom";

template Main() {
    signal input in[5];
    signal output out[5];
    component relu = ReluZp(5, 8, 100);
    relu.in <== in;
    out <== relu.out;
}

component main = Main();
"""
RELU_X = [30, 99, 100, 101, 250]
ZP, RBITS = 100, 8


@pytest.fixture(scope="module")
def relu():
    c = compile_circuit(RELU_MAIN)
    w = c.witness({"in": RELU_X})
    assert [c.value(w, f"main.out[{i}]") for i in range(5)] == [max(x - ZP, 0) for x in RELU_X]
    assert_accepted(c, w)
    return c, w


def relu_model(i: int, x: int, pos: int | None = None, out_delta: int = 0) -> dict:
    m = {}
    p = less_than(m, f"main.relu.pos[{i}]", ZP, x, RBITS, pos)
    m[f"main.relu.out[{i}]"] = m[f"main.out[{i}]"] = p * (x - ZP) + out_delta
    return m


@pytest.mark.parametrize("i", range(5), ids=[f"x{x}" for x in RELU_X])
def test_relu_forged_comparator_flipped(relu, i):
    """Attacker: the comparator bit pos = (ZP < x) flipped, the output recomputed from it:
    x < ZP gets out = x - ZP (a field-negative value p - (ZP - x)); x > ZP gets out = 0;
    x = ZP keeps out = 0 with a lying bit. pos's Num2Bits top bit set to 1 - pos, low bits
    enumerated over all 2^BITS choices. Caught by the comparator's bit decomposition."""
    c, w = relu
    x = RELU_X[i]
    honest_model_matches(c, w, relu_model(i, x))
    m = relu_model(i, x, pos=0 if x > ZP else 1)
    check_covers(c, m, f"main.relu.pos[{i}]")
    bad = c.tamper(w, m, skip_eliminated=True)
    assert_rejected(c, bad, caught_in=f"pos[{i}].")
    assert no_assignment_satisfies(c, bad, bit_names(c, f"main.relu.pos[{i}].n2b."))


@pytest.mark.parametrize("delta", [+1, -1])
def test_relu_forged_output_off_by_one(relu, delta):
    """Attacker: out +-1 with the comparator honest. Caught by out <== pos.out * (in - ZP)."""
    c, w = relu
    for i in (0, 3, 4):
        bad = c.tamper(w, relu_model(i, RELU_X[i], out_delta=delta), skip_eliminated=True)
        assert_rejected(c, bad, caught_in=f"main.out[{i}]")


# =========================================================================== UintRange
RANGE_MAIN = """pragma circom 2.1.0;
include "range.circom";

template Main() {
    signal input in[3];
    signal output out[3];
    component r = UintRange(3, 8);
    r.in <== in;
    out <== r.out;
}

component main = Main();
"""


@pytest.fixture(scope="module")
def uint_range():
    c = compile_circuit(RANGE_MAIN)
    w = c.witness({"in": [0, 17, 255]})
    assert_accepted(c, w)
    return c, w


@pytest.mark.parametrize("value", [256, 256 + 17, 1 << 9, 1 << 100, P - 1, P - 256],
                         ids=["2^8", "2^8+17", "2^9", "2^100", "p-1", "p-256"])
def test_uint_range_rejects_input_at_least_2_bits(uint_range, value):
    """Attacker: an input >= 2^BITS (BITS = 8), including field-negative p-1 and p-256, with
    out = in and the 8 bits set to in's low bits, then every choice of the surviving bits
    enumerated. Caught by Num2Bits: sum(bits * 2^i) === in, bits boolean."""
    c, w = uint_range
    m = {"main.in[1]": value, "main.out[1]": value, "main.r.in[1]": value, "main.r.out[1]": value}
    num2bits(m, "main.r.bits[1]", value, 8)
    check_covers(c, m, "main.r.bits[1]")
    bad = c.tamper(w, m, skip_eliminated=True)
    assert_rejected(c, bad, caught_in="main.r.bits[1]")
    assert no_assignment_satisfies(c, bad, bit_names(c, "main.r.bits[1]."))


# =========================================================================== whole model
@pytest.fixture(scope="module")
def model_build(tmp_path_factory):
    """The shared 1l_mlp (Gemm + Relu -> one Dense with fused Relu), or a tiny Gemm+Relu model."""
    from onnx import helper

    from conftest import SHARED_MODELS, const, make_model, save, vinfo
    from zkml import api
    src = SHARED_MODELS / "1l_mlp" / "network.onnx"
    folder = tmp_path_factory.mktemp("forgery_model")
    inp = SHARED_MODELS / "1l_mlp" / "input.json"
    if not src.exists():
        rng = np.random.default_rng(3)
        m = make_model([helper.make_node("Gemm", ["x", "w", "b"], ["h"], name="fc", transB=1),
                        helper.make_node("Relu", ["h"], ["y"], name="relu")],
                       [vinfo("x", [1, 3])], [vinfo("y", [1, 4])],
                       [const("w", rng.normal(0, 0.6, (4, 3))), const("b", rng.normal(0, 0.3, 4))])
        src = save(m, folder / "gemm_relu.onnx")
        inp = folder / "input.json"
        inp.write_text('{"input_data": [[1.5, 0.5, -1.2]]}')
    build = folder / "build"
    api.compile(src, build, pack_outputs=False)   # main.out[j] is lane j
    wtns, outs = api.witness(build, inp)
    from zkml.wtns import read_wtns
    w, _ = read_wtns(wtns)
    c = Circuit(build, "main", O2, read_sym(build / "main.sym"))
    assert_accepted(c, w)
    return build, c, w, inp


def _model_requant(build: Path, c: Circuit, inp: Path):
    """The (first) Dense node's RequantClamp bounds and its N = acc*M + 2^(S-1) + K*2^S per output."""
    import zkml_runtime as rt
    from zkml.api import load_graph
    from zkml.inputs import load_input
    from zkml.ir import verify
    g = load_graph(build)
    node = next(n for n in g.nodes if n.op == "Dense")
    b = verify(g)[node.name].circuit
    assert node.inputs[0] == g.inputs[0]
    x = load_input(inp, g.tensors[g.inputs[0]].shape)
    q, _ = rt.quantize_input(g, x)
    p = node.params
    xs = [int(v) for v in q.reshape(-1)]
    ns = []
    for j in range(p.n_out):
        acc = sum((xs[k] - p.x_zp) * (p.w[j][k] - p.w_zp[j]) for k in range(p.n_in)) + p.bias[j]
        ns.append(acc * p.mult[j] + (1 << (b["SHIFT"] - 1)) + b["K"] * (1 << b["SHIFT"]))
    comp = next(s for s in c.sym if s.endswith(".rq[0].out")).rsplit(".rq[0].out", 1)[0]
    assert g.outputs[0] == node.output, "the forgery test expects the Dense output to be the model output"
    return b, ns, comp


def test_model_forged_public_output_plus_one(model_build):
    """Whole compiled model (main.r1cs from zkml compile): the honest witness with public output
    out[0] + 1. Caught by the output constraint of the Dense node's RequantClamp."""
    build, c, w, inp = model_build
    bad = c.tamper(w, {"main.out[0]": c.value(w, "main.out[0]") + 1})
    assert_rejected(c, bad, caught_in="main.out[0]", cli=True)


def test_model_forged_requant_quotient_plus_one(model_build):
    """Whole compiled model: the attacker wants public output out[j] + 1 and makes it look
    consistent on output j's RequantClamp: q+1 with r - 2^SHIFT; q's bits, the comparators, the
    clamped output and out[j] recomputed from q+1. Done for every output j (those where q+1
    moves the clamped output really change the public output). Caught by the remainder's
    Num2Bits (rBits; on the aligned way the decomposition of N, nBits)."""
    build, c, w, inp = model_build
    b, ns, comp = _model_requant(build, c, inp)
    changed = 0
    for j, n in enumerate(ns):
        prefix = f"{comp}.rq[{j}]"
        honest = requant_model(prefix, n, b, n >> b["SHIFT"], out_name=f"main.out[{j}]")
        check_covers(c, honest, prefix)
        honest_model_matches(c, w, honest)
        m = requant_model(prefix, n, b, (n >> b["SHIFT"]) + 1, out_name=f"main.out[{j}]")
        changed += m[f"main.out[{j}]"] != honest[f"main.out[{j}]"]
        bad = c.tamper(w, m, skip_eliminated=True)
        assert_rejected(c, bad, caught_in=("rBits", "nBits"), cli=True)
        # (SHIFT is ~20 here: the exhaustive bit enumeration is done on the small templates above)
    assert changed, "no output of this model/input lets q+1 change the public output"
