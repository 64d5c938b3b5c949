"""Test helper (not a test file): a tiny real Groth16 setup made with circom + snarkjs.

`build_groth16(folder)` compiles a three-public-signal circuit, makes a tiny development
powers of tau (2^6), runs two independent phase-2 setups of the same circuit (so tests
have "a verification key of another setup"), and proves one witness with the first.

`session_artifacts(tmp_path_factory)` builds once per pytest session (cached in this
module, so test files that each define a session fixture share one build).
"""
from __future__ import annotations

import copy
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from py_ecc.optimized_bn128 import (
    FQ, FQ2, b2, curve_order, field_modulus, is_inf, is_on_curve, multiply, neg, normalize,
)

from zkml import toolchain

R, Q = curve_order, field_modulus

# c = a*b and d = c + a are public outputs, b is a public input, a is private.
# snarkjs orders public signals as: outputs, then public inputs  ->  [c, d, b].
CIRCUIT = """pragma circom 2.0.0;

template MulAdd() {
    signal input a;
    signal input b;
    signal output c;
    signal output d;
    c <== a * b;
    d <== c + a;
}

component main {public [b]} = MulAdd();
"""

INPUT = {"a": "3", "b": "11"}
EXPECTED_PUBLIC = ["33", "36", "11"]  # c, d, b


@dataclass(frozen=True)
class Groth16Artifacts:
    folder: Path
    vk: Path          # verification key of the setup that made the proof
    proof: Path
    public: Path
    other_vk: Path    # verification key of a second, independent setup of the same circuit
    zkey: Path
    wtns: Path


def _setup(folder: Path, r1cs: Path, ptau: Path, tag: str) -> tuple[Path, Path]:
    z0, z1 = folder / f"{tag}_0000.zkey", folder / f"{tag}.zkey"
    toolchain.snarkjs("groth16", "setup", r1cs, ptau, z0)
    toolchain.snarkjs("zkey", "contribute", z0, z1, f"--name={tag} contribution",
                      f"-e={secrets.token_hex(32)}")
    vk = folder / f"{tag}_verification_key.json"
    toolchain.snarkjs("zkey", "export", "verificationkey", z1, vk)
    return z1, vk


def build_groth16(folder: Path) -> Groth16Artifacts:
    """Compile, set up (twice) and prove the tiny circuit inside `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    src = folder / "muladd.circom"
    src.write_text(CIRCUIT)
    toolchain.circom(src, folder, flags=["--r1cs", "--wasm", "--sym", "--O2"])
    r1cs = folder / "muladd.r1cs"

    p0, p1, pf = folder / "pot6_0000.ptau", folder / "pot6_0001.ptau", folder / "pot6_final.ptau"
    toolchain.snarkjs("powersoftau", "new", "bn128", "6", p0)
    toolchain.snarkjs("powersoftau", "contribute", p0, p1, "--name=test",
                      f"-e={secrets.token_hex(32)}")
    toolchain.snarkjs("powersoftau", "prepare", "phase2", p1, pf)

    zkey, vk = _setup(folder, r1cs, pf, "setup1")
    _, other_vk = _setup(folder, r1cs, pf, "setup2")

    inp, wtns = folder / "input.json", folder / "witness.wtns"
    inp.write_text(json.dumps(INPUT))
    js = folder / "muladd_js"
    toolchain.run([toolchain.node(), js / "generate_witness.js", js / "muladd.wasm", inp, wtns])
    proof, public = folder / "proof.json", folder / "public.json"
    toolchain.snarkjs("groth16", "prove", zkey, wtns, proof, public)
    if json.loads(public.read_text()) != EXPECTED_PUBLIC:
        raise AssertionError(f"unexpected public signals {public.read_text()}")
    return Groth16Artifacts(folder, vk, proof, public, other_vk, zkey, wtns)


_CACHE: dict[str, Groth16Artifacts] = {}


def session_artifacts(tmp_path_factory) -> Groth16Artifacts:
    """Build once per session (shared by every test module that asks)."""
    if "a" not in _CACHE:
        _CACHE["a"] = build_groth16(tmp_path_factory.mktemp("groth16"))
    return _CACHE["a"]


def load(path: Path):
    return json.loads(Path(path).read_text())


# --------------------------------------------------------------------------- tampering
def _g1_from(p: list) -> tuple:
    return (FQ(int(p[0])), FQ(int(p[1])), FQ(1))


def _g1_json(pt: tuple) -> list:
    x, y = normalize(pt)
    return [str(int(x)), str(int(y)), "1"]


def _g2_from(p: list) -> tuple:
    return (FQ2([int(c) for c in p[0]]), FQ2([int(c) for c in p[1]]), FQ2.one())


def _g2_json(pt: tuple) -> list:
    x, y = normalize(pt)
    return [[str(int(c)) for c in x.coeffs], [str(int(c)) for c in y.coeffs], ["1", "0"]]


def _sqrt_fq(a: int) -> int | None:
    r = pow(a, (Q + 1) // 4, Q)  # q = 3 mod 4
    return r if r * r % Q == a % Q else None


def _sqrt_fq2(a: FQ2) -> FQ2 | None:
    """Square root in F_q[u]/(u^2 + 1) by the norm method, or None."""
    a0, a1 = (int(c) for c in a.coeffs)
    g = _sqrt_fq((a0 * a0 + a1 * a1) % Q)
    if g is None:
        return None
    half = pow(2, Q - 2, Q)
    for d in ((a0 + g) * half % Q, (a0 - g) * half % Q):
        x0 = _sqrt_fq(d)
        if x0:
            y = FQ2([x0, a1 * pow(2 * x0, Q - 2, Q) % Q])
            if y * y == a:
                return y
    return None


def twist_point_outside_subgroup() -> tuple:
    """A point on the BN254 twist curve that is NOT in the order-r subgroup G2."""
    for k in range(1, 1000):
        x = FQ2([k, 1])
        y = _sqrt_fq2(x ** 3 + b2)
        if y is not None:
            pt = (x, y, FQ2.one())
            assert is_on_curve(pt, b2)
            if not is_inf(multiply(pt, R)):
                return pt
    raise AssertionError("no point found")


def _t_a_doubled(p, pub):
    p["pi_a"] = _g1_json(multiply(_g1_from(p["pi_a"]), 2))


def _t_a_off_curve(p, pub):
    p["pi_a"][1] = str((int(p["pi_a"][1]) + 1) % Q)


def _t_a_x_plus_q(p, pub):  # the same point, non-canonically encoded
    p["pi_a"][0] = str(int(p["pi_a"][0]) + Q)


def _t_a_zero(p, pub):  # (0, 0): the precompiles' encoding of infinity
    p["pi_a"] = ["0", "0", "1"]


def _t_b_doubled(p, pub):
    p["pi_b"] = _g2_json(multiply(_g2_from(p["pi_b"]), 2))


def _t_b_off_curve(p, pub):
    p["pi_b"][0][0] = str((int(p["pi_b"][0][0]) + 1) % Q)


def _t_b_outside_subgroup(p, pub):
    p["pi_b"] = _g2_json(twist_point_outside_subgroup())


def _t_b_c0_c1_swapped(p, pub):  # the classic G2 ordering mistake
    p["pi_b"] = [p["pi_b"][0][::-1], p["pi_b"][1][::-1], ["1", "0"]]


def _t_c_negated(p, pub):
    p["pi_c"] = _g1_json(neg(_g1_from(p["pi_c"])))


def _t_public_changed(p, pub):
    pub[0] = str(int(pub[0]) + 1)


def _t_public_last_changed(p, pub):
    pub[-1] = str(int(pub[-1]) + 1)


def _t_public_plus_r(p, pub):  # same value mod r: must fail the range check
    pub[0] = str(int(pub[0]) + R)


TAMPERS = {f.__name__[3:]: f for f in (
    _t_a_doubled, _t_a_off_curve, _t_a_x_plus_q, _t_a_zero, _t_b_doubled, _t_b_off_curve,
    _t_b_outside_subgroup, _t_b_c0_c1_swapped, _t_c_negated, _t_public_changed,
    _t_public_last_changed, _t_public_plus_r)}


def tampered(name: str, proof: dict, public: list) -> tuple[dict, list]:
    """A modified deep copy (proof, public) made by TAMPERS[name]."""
    p, pub = copy.deepcopy(proof), list(public)
    TAMPERS[name](p, pub)
    return p, pub
