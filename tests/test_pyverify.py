"""The independent Python Groth16 verifier against real snarkjs proofs (no mocks)."""
from __future__ import annotations

import copy
import json
import time

import pytest

from groth16_fixture import EXPECTED_PUBLIC, TAMPERS, load, session_artifacts, tampered
from zkml import pyverify, toolchain
from zkml.errors import InputError, ToolError, VerificationError

R = pyverify.R


@pytest.fixture(scope="session")
def g16(tmp_path_factory):
    return session_artifacts(tmp_path_factory)


@pytest.fixture(scope="session")
def valid(g16):
    return load(g16.vk), load(g16.proof), load(g16.public)


def _snarkjs_ok(vk, public, proof) -> bool:
    try:
        out = toolchain.snarkjs("groth16", "verify", vk, public, proof).stdout
    except ToolError:
        return False
    return "OK" in out


def test_snarkjs_accepts_the_valid_proof(g16):
    assert load(g16.public) == EXPECTED_PUBLIC
    assert _snarkjs_ok(g16.vk, g16.public, g16.proof)


def test_valid_proof_accepted_and_timed(g16, valid):
    t0 = time.perf_counter()
    assert pyverify.verify_files(g16.vk, g16.proof, g16.public)
    seconds = time.perf_counter() - t0
    print(f"\npyverify: one verification in {seconds:.2f} s")
    assert seconds < 10
    vk, proof, public = valid
    pyverify.check(vk, proof, public)                     # no exception
    assert pyverify.verify(vk, proof, [int(v) for v in public])  # ints are accepted too


@pytest.mark.parametrize("name", sorted(TAMPERS))
def test_tampered_proof_rejected(valid, name):
    vk, proof, public = valid
    p, pub = tampered(name, proof, public)
    assert not pyverify.verify(vk, p, pub)
    with pytest.raises(VerificationError, match="invalid proof"):
        pyverify.check(vk, p, pub)


def test_public_plus_r_fails_the_range_check_not_the_pairing(valid):
    """x + r is x in the field: only the range check stands between it and acceptance."""
    vk, proof, public = valid
    with pytest.raises(VerificationError, match="not below the scalar field order r"):
        pyverify.check(vk, proof, [str(int(public[0]) + R), *public[1:]])


def test_coordinate_plus_q_is_rejected_by_the_range_check(valid):
    vk, proof, public = valid
    p, pub = tampered("a_x_plus_q", proof, public)
    with pytest.raises(VerificationError, match="not below the field modulus q"):
        pyverify.check(vk, p, pub)


def test_g2_outside_subgroup_reason(valid):
    vk, proof, public = valid
    p, pub = tampered("b_outside_subgroup", proof, public)
    with pytest.raises(VerificationError, match="not in the order-r subgroup"):
        pyverify.check(vk, p, pub)


@pytest.mark.parametrize("change", ["drop_last", "extra", "empty"])
def test_wrong_number_of_public_inputs(valid, change):
    vk, proof, public = valid
    pub = {"drop_last": public[:-1], "extra": [*public, "0"], "empty": []}[change]
    assert not pyverify.verify(vk, proof, pub)
    with pytest.raises(VerificationError, match="the verification key expects 3"):
        pyverify.check(vk, proof, pub)


@pytest.mark.parametrize("bad", ["-1", -1, "3.5", 3.5, "0x21", " 33", "", None, True, [33]])
def test_malformed_public_input_rejected(valid, bad):
    vk, proof, public = valid
    assert not pyverify.verify(vk, proof, [bad, *public[1:]])


@pytest.mark.parametrize("mutate", [
    lambda p: p.pop("pi_a"),
    lambda p: p.__setitem__("pi_b", [["1", "2"]]),
    lambda p: p.__setitem__("pi_c", "nonsense"),
    lambda p: p.__setitem__("pi_a", ["1", "2", "1", "4"]),
    lambda p: p.__setitem__("pi_a", [p["pi_a"][0], p["pi_a"][1], "2"]),   # projective z != 1
    lambda p: p.__setitem__("pi_a", ["0", "1", "0"]),                     # infinity
    lambda p: p.__setitem__("curve", "bls12381"),
])
def test_malformed_proof_rejected_without_traceback(valid, mutate):
    vk, proof, public = valid
    p = copy.deepcopy(proof)
    mutate(p)
    assert not pyverify.verify(vk, p, public)


@pytest.mark.parametrize("proof", [None, [], "x", 5])
def test_proof_of_wrong_type_rejected(valid, proof):
    vk, _, public = valid
    assert not pyverify.verify(vk, proof, public)
    assert not pyverify.verify(vk, valid[1], "33")


def test_key_of_another_setup_rejects_the_proof(g16, valid):
    _, proof, public = valid
    other = load(g16.other_vk)
    assert other["vk_delta_2"] != valid[0]["vk_delta_2"]
    pyverify.check_verification_key(other)  # a perfectly good key...
    assert not pyverify.verify(other, proof, public)  # ...for another setup
    assert not _snarkjs_ok(g16.other_vk, g16.public, g16.proof)


@pytest.mark.parametrize("mutate", [
    lambda k: k.pop("vk_delta_2"),
    lambda k: k.__setitem__("IC", []),
    lambda k: k.__setitem__("nPublic", 2),
    lambda k: k.__setitem__("curve", "bls12381"),
    lambda k: k["vk_alpha_1"].__setitem__(1, "5"),                       # off the curve
    lambda k: k["vk_gamma_2"][0].__setitem__(0, str(pyverify.Q)),          # >= q
])
def test_malformed_key_raises_input_error(valid, mutate):
    vk, proof, public = valid
    k = copy.deepcopy(vk)
    mutate(k)
    with pytest.raises(InputError, match="malformed verification key"):
        pyverify.verify(k, proof, public)
    with pytest.raises(InputError):
        pyverify.check_verification_key(k)


@pytest.mark.parametrize("vk", [None, [], "vk", 3])
def test_key_of_wrong_type_raises_input_error(valid, vk):
    with pytest.raises(InputError, match="malformed verification key"):
        pyverify.verify(vk, valid[1], valid[2])


def test_verify_files_errors(g16, tmp_path):
    with pytest.raises(InputError, match="not found"):
        pyverify.verify_files(tmp_path / "nope.json", g16.proof, g16.public)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="cannot read proof"):
        pyverify.verify_files(g16.vk, bad, g16.public)
    pub = tmp_path / "public.json"
    pub.write_text(json.dumps(["34", "36", "11"]))
    assert not pyverify.verify_files(g16.vk, g16.proof, pub)
