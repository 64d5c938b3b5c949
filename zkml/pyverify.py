"""An independent Groth16 verifier (BN254) in pure Python on py_ecc, for snarkjs files.

It shares no code with snarkjs, so a bug in one is caught by the other. Inputs are the
snarkjs JSON forms: `verification_key.json`, `proof.json` and `public.json`.

Error policy:
  * `verify(vk, proof, public) -> bool` returns False for ANY problem with the proof or the
    public inputs: malformed JSON shapes, non-decimal strings, coordinates >= q, points off the
    curve / outside the subgroup / at infinity, public inputs >= r or negative, a wrong count,
    or a failing pairing equation.
  * `check(vk, proof, public)` does the same but raises VerificationError with the reason.
  * A malformed verification key raises InputError from both (it is not "an invalid proof",
    it is a broken build), as does an unreadable file in `verify_files`.

The equation checked (with ONE final exponentiation of the product of four Miller loops):

    e(-A, B) · e(alpha, beta) · e(vk_x, gamma) · e(C, delta) == 1,
    vk_x = IC[0] + sum_i public[i] · IC[i+1]
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from py_ecc.optimized_bn128 import (
    FQ, FQ2, FQ12, add, b, b2, curve_order, field_modulus, final_exponentiate, is_inf,
    is_on_curve, multiply, neg, pairing,
)

#: py_ecc raises the interpreter's recursion limit to 100,000 when it is imported. With that,
#: C code recursing on hostile data (json.loads of a proof.json holding "[[[[...", 100k deep)
#: overflows the C stack: SIGSEGV instead of a RecursionError. py-evm asks for 12,288 (1024 EVM
#: call frames); nothing in zkml recurses deeper (py_ecc's multiply: ~256 frames).
SAFE_RECURSION_LIMIT = 12_288


def cap_recursion_limit() -> None:
    """Undo py_ecc's (and py-evm's) raise of the recursion limit past what the C stack holds."""
    if sys.getrecursionlimit() > SAFE_RECURSION_LIMIT:
        sys.setrecursionlimit(SAFE_RECURSION_LIMIT)


cap_recursion_limit()

from .errors import InputError, VerificationError

#: scalar field order r (public inputs live in F_r) and base field modulus q (coordinates)
R = curve_order
Q = field_modulus
assert R == 21888242871839275222246405745257275088548364400416034343698204186575808495617
assert Q == 21888242871839275222246405745257275088696311157297823662689037894645226208583

_DECIMAL = re.compile(r"[0-9]{1,80}")  # snarkjs writes plain decimal strings

G1Point = tuple  # (FQ, FQ, FQ) projective
G2Point = tuple  # (FQ2, FQ2, FQ2) projective


class _Bad(Exception):
    """Internal: a malformed or invalid value; turned into VerificationError/InputError."""


# --------------------------------------------------------------------------- parsing
def _int(v: Any, bound: int, what: str) -> int:
    """A non-negative integer below `bound`, from a decimal string or a Python int."""
    if isinstance(v, bool):
        raise _Bad(f"{what}: expected a decimal string, got a boolean")
    if isinstance(v, int):
        n = v
    elif isinstance(v, str):
        if not _DECIMAL.fullmatch(v):
            raise _Bad(f"{what}: {v[:40]!r} is not a non-negative decimal integer")
        n = int(v)
    else:
        raise _Bad(f"{what}: expected a decimal string, got {type(v).__name__}")
    if n < 0:
        raise _Bad(f"{what}: {n} is negative")
    if n >= bound:
        raise _Bad(f"{what}: {n} is not below the {'scalar field order r' if bound == R else 'field modulus q'}")
    return n


def _seq(v: Any, n: int, what: str) -> list:
    if not isinstance(v, (list, tuple)) or len(v) != n:
        raise _Bad(f"{what}: expected a list of {n} elements")
    return list(v)


def _g1(v: Any, what: str) -> G1Point:
    """snarkjs G1 [x, y, z] (z == "1"; affine) or [x, y] -> a checked point on the curve."""
    if not isinstance(v, (list, tuple)) or len(v) not in (2, 3):
        raise _Bad(f"{what}: expected [x, y, z] with decimal strings")
    x, y = (_int(c, Q, f"{what} coordinate") for c in v[:2])
    z = _int(v[2], Q, f"{what} z") if len(v) == 3 else 1
    if z == 0:
        raise _Bad(f"{what} is the point at infinity")
    if z != 1:
        raise _Bad(f"{what}: z coordinate must be 1 (affine, as snarkjs writes it)")
    pt = (FQ(x), FQ(y), FQ(1))
    if not is_on_curve(pt, b):
        raise _Bad(f"{what} is not on the BN254 curve")
    # G1 of BN254 has cofactor 1: every curve point is in the order-r group.
    return pt


def _fq2(v: Any, what: str) -> FQ2:
    c0, c1 = _seq(v, 2, what)  # snarkjs order: [c0, c1] = c0 + c1·u
    return FQ2([_int(c0, Q, what), _int(c1, Q, what)])


def _g2(v: Any, what: str) -> G2Point:
    """snarkjs G2 [[x.c0,x.c1],[y.c0,y.c1],[z.c0,z.c1]] -> a checked point of the order-r group."""
    if not isinstance(v, (list, tuple)) or len(v) not in (2, 3):
        raise _Bad(f"{what}: expected [[x0,x1],[y0,y1],[z0,z1]]")
    x, y = _fq2(v[0], f"{what} x"), _fq2(v[1], f"{what} y")
    z = _fq2(v[2], f"{what} z") if len(v) == 3 else FQ2.one()
    if z == FQ2.zero():
        raise _Bad(f"{what} is the point at infinity")
    if z != FQ2.one():
        raise _Bad(f"{what}: z coordinate must be [1, 0] (affine, as snarkjs writes it)")
    pt = (x, y, FQ2.one())
    if not is_on_curve(pt, b2):
        raise _Bad(f"{what} is not on the BN254 twist curve")
    # The twist has a large cofactor: on-curve points outside the order-r subgroup exist and
    # must be rejected. r·P == infinity is the plain definition (py_ecc's multiply does not
    # reduce the scalar mod r, so this really multiplies by r).
    if not is_inf(multiply(pt, R)):
        raise _Bad(f"{what} is on the twist curve but not in the order-r subgroup")
    return pt


def _field(d: Any, key: str, what: str) -> Any:
    if not isinstance(d, dict):
        raise _Bad(f"{what} must be a JSON object")
    if key not in d:
        raise _Bad(f"{what} has no '{key}'")
    return d[key]


def _parse_vk(vk: Any) -> tuple:
    try:
        if not isinstance(vk, dict):
            raise _Bad("it must be a JSON object")
        for key, want in (("protocol", "groth16"), ("curve", "bn128")):
            if key in vk and vk[key] != want:
                raise _Bad(f"{key} is {vk[key]!r}, only {want!r} is supported")
        alpha = _g1(_field(vk, "vk_alpha_1", "verification key"), "vk_alpha_1")
        beta = _g2(_field(vk, "vk_beta_2", "verification key"), "vk_beta_2")
        gamma = _g2(_field(vk, "vk_gamma_2", "verification key"), "vk_gamma_2")
        delta = _g2(_field(vk, "vk_delta_2", "verification key"), "vk_delta_2")
        ic_raw = _field(vk, "IC", "verification key")
        if not isinstance(ic_raw, list) or not ic_raw:
            raise _Bad("IC must be a non-empty list of G1 points")
        ic = [_g1(p, f"IC[{i}]") for i, p in enumerate(ic_raw)]
        if "nPublic" in vk and vk["nPublic"] != len(ic) - 1:
            raise _Bad(f"nPublic is {vk['nPublic']!r} but IC has {len(ic)} points (nPublic + 1 expected)")
    except _Bad as e:
        raise InputError(f"malformed verification key: {e}") from None
    return alpha, beta, gamma, delta, ic


def _parse_proof(proof: Any) -> tuple:
    for key, want in (("protocol", "groth16"), ("curve", "bn128")):
        if isinstance(proof, dict) and key in proof and proof[key] != want:
            raise _Bad(f"proof {key} is {proof[key]!r}, expected {want!r}")
    a = _g1(_field(proof, "pi_a", "proof"), "proof pi_a")
    bb = _g2(_field(proof, "pi_b", "proof"), "proof pi_b")
    c = _g1(_field(proof, "pi_c", "proof"), "proof pi_c")
    return a, bb, c


def _parse_public(public: Any, n: int) -> list[int]:
    if not isinstance(public, (list, tuple)):
        raise _Bad("public inputs must be a list of decimal strings")
    if len(public) != n:
        raise _Bad(f"{len(public)} public inputs given, the verification key expects {n}")
    return [_int(v, R, f"public input {i}") for i, v in enumerate(public)]


# --------------------------------------------------------------------------- verification
def check_verification_key(vk: dict) -> None:
    """Raise InputError unless `vk` is a well-formed BN254 Groth16 key (points on the curve,
    G2 points in the order-r subgroup, nPublic consistent with IC)."""
    _parse_vk(vk)


def check(vk: dict, proof: dict, public: list) -> None:
    """Verify; raise VerificationError (proof/public problem) or InputError (bad vk)."""
    alpha, beta, gamma, delta, ic = _parse_vk(vk)
    try:
        a, bb, c = _parse_proof(proof)
        pub = _parse_public(public, len(ic) - 1)
    except _Bad as e:
        raise VerificationError(f"invalid proof: {e}") from None

    # vk_x = IC0 + sum pub_i · IC_{i+1}  (multiply(P, 0) is the point at infinity)
    vk_x = ic[0]
    for s, p in zip(pub, ic[1:]):
        vk_x = add(vk_x, multiply(p, s))

    # Product of the four Miller loops, then one final exponentiation.
    # py_ecc's pairing takes (G2 point, G1 point); at infinity it returns 1.
    f = FQ12.one()
    for g2, g1 in ((bb, neg(a)), (beta, alpha), (gamma, vk_x), (delta, c)):
        f = f * pairing(g2, g1, final_exponentiate=False)
    if final_exponentiate(f) != FQ12.one():
        raise VerificationError("invalid proof: the pairing equation does not hold")


def verify(vk: dict, proof: dict, public: list) -> bool:
    """True iff the Groth16 proof is valid for these public inputs under this key.

    Returns False for any malformed or invalid proof/public input; raises InputError only
    for a malformed verification key.
    """
    try:
        check(vk, proof, public)
    except VerificationError:
        return False
    return True


def _load(path: str | Path, what: str) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError(f"{what} file {path} not found") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise InputError(f"cannot read {what} file {path}: {e}") from None


def verify_files(vk_path: str | Path, proof_path: str | Path, public_path: str | Path) -> bool:
    """`verify` on snarkjs files; InputError if a file is missing or is not JSON."""
    return verify(_load(vk_path, "verification key"), _load(proof_path, "proof"),
                  _load(public_path, "public inputs"))


__all__ = ["R", "Q", "check", "check_verification_key", "verify", "verify_files"]
