"""Development setup without a powers of tau (zkml.devsetup): real circom, snarkjs, py-ecc and EVM.

The strongest check is `test_sections_equal_snarkjs_byte_for_byte`: a powers of tau written from
KNOWN secrets (tau, alpha, beta), prepared by snarkjs and turned into a zkey by `snarkjs groth16
setup` (gamma = delta = 1 there) must equal, section by section, what the development setup
writes for the same secrets. The other tests prove and verify with fresh random secrets.
"""
from __future__ import annotations

import json
import secrets
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from py_ecc import optimized_bn128 as bn

from conftest import mlp_model, save
from zkml import api, binfile, devsetup, evm, pyverify, toolchain
from zkml.errors import ZkmlError

R = devsetup.R

# public inputs a, b; two public outputs; an unused-in-A output (zero points in section 5)
CIRCUIT = """pragma circom 2.0.0;
template T(n) {
    signal input a;
    signal input b;
    signal input priv;
    signal output out;
    signal output out2;
    signal x[n];
    x[0] <== a * priv;
    for (var i = 1; i < n; i++) x[i] <== x[i-1] * x[i-1] + b * 3 + 7;
    out <== x[n-1] * priv + 5 * a;
    out2 <== 2 * x[1] - 11;
}
component main {public [a, b]} = T(6);
"""


@pytest.fixture(scope="module")
def circ(tmp_path_factory):
    d = tmp_path_factory.mktemp("devsetup")
    (d / "circ.circom").write_text(CIRCUIT)
    toolchain.circom(d / "circ.circom", d, flags=["--r1cs", "--wasm", "--O2"])
    (d / "input.json").write_text(json.dumps({"a": "3", "b": "5", "priv": "7"}))
    toolchain.run([toolchain.node(), d / "circ_js" / "generate_witness.js", d / "circ_js" / "circ.wasm",
                   d / "input.json", d / "w.wtns"])
    return d


def snarkjs_verify(vk: Path, public: Path, proof: Path) -> bool:
    """snarkjs groth16 verify: True on OK, False on 'Invalid proof'; anything else fails the test."""
    proc = subprocess.run([toolchain.node(), toolchain.node_modules() / "snarkjs" / "build" / "cli.cjs",
                           "groth16", "verify", vk, public, proof], capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    if proc.returncode == 0 and "OK" in out:
        return True
    assert "Invalid proof" in out, out
    return False


def setup_and_prove(d: Path, tag: str) -> dict:
    info = devsetup.dev_setup(d / "circ.r1cs", d / f"{tag}.zkey")
    toolchain.snarkjs("zkey", "export", "verificationkey", d / f"{tag}.zkey", d / f"{tag}_vk.json")
    toolchain.snarkjs("groth16", "prove", d / f"{tag}.zkey", d / "w.wtns", d / f"{tag}_proof.json",
                      d / f"{tag}_public.json")
    return info


def load(d: Path, tag: str):
    return tuple(json.loads((d / f"{tag}_{x}.json").read_text()) for x in ("vk", "proof", "public"))


@pytest.fixture(scope="module")
def two_setups(circ):
    return setup_and_prove(circ, "k1"), setup_and_prove(circ, "k2")


# --------------------------------------------------------------------------- curve and arithmetic
def test_mcl_is_ethereums_bn254():
    m = devsetup.mcl()
    assert m.lib.mclBn_getCurveType() == devsetup.MCL_BN_SNARK1
    assert (bn.field_modulus, bn.curve_order) == (devsetup.Q, devsetup.R)
    # MCL's generators (as loaded) are py_ecc's bn128 G1 and G2
    g1 = devsetup.lem_to_ints(bytes(m.g1)[:64])
    g2 = devsetup.lem_to_ints(bytes(m.g2)[:128])
    assert g1 == [int(c) for c in bn.normalize(bn.G1)]
    assert g2 == [int(c) for xy in bn.normalize(bn.G2) for c in xy.coeffs]
    assert m.lib.mclBnG1_isValid(m.g1) and m.lib.mclBnG2_isValid(m.g2)
    # y^2 = x^3 + 3 for MCL's multiples, and MCL's k*G equals py_ecc's (random and edge k)
    x, y = devsetup.lem_to_ints(m.g1_mul(12345))
    assert (y * y - x ** 3 - 3) % devsetup.Q == 0
    for k in (1, 2, R - 1, secrets.randbelow(R)):
        devsetup.check_against_py_ecc(m, k)
    assert m.g1_mul(0) == bytes(64) and m.g1_mul(R) == bytes(64)


def test_fixed_base_equals_plain_multiplication():
    m = devsetup.mcl()
    vals = [0, 1, 2, R - 1, R - 2, 2 ** 253, 2 ** 253 - 1, 2 ** 12 - 1, 2 ** 12, 2 ** 247] + \
        [secrets.randbelow(R) for _ in range(300)]
    sc = bytearray(b"".join(v.to_bytes(32, "little") for v in vals))
    for group in (1, 2):
        ref = m.mul_generic(group, bytearray(sc))
        for w in (4, 5, 8, 11, 13):
            assert m.fixed_base(group, bytearray(sc), w) == ref, (group, w)
    assert m.fixed_base(1, bytearray(sc), 8, threads=1) == m.fixed_base(1, bytearray(sc), 8, threads=2)


def test_lagrange_evaluations():
    tau, power = secrets.randbelow(R), 3
    n = 1 << power
    lag, hs = devsetup.lagrange_at(tau, power, n, 1, 1)
    w = devsetup.root_of_unity(power)
    assert pow(w, n, R) == 1 and pow(w, n // 2, R) != 1
    assert devsetup.root_of_unity(28) == 19103219067921713944291392827692070036145651957329286315305642004821462161904
    # sum_i L_i(tau) w^(ik) = tau^k for k < n (interpolation of x^k)
    for k in range(n):
        assert sum(l * pow(w, i * k, R) for i, l in enumerate(lag)) % R == pow(tau, k, R)
    # the odd half of the 2n-domain basis, directly from the product formula
    w2 = devsetup.root_of_unity(power + 1)
    pts = [pow(w2, j, R) for j in range(2 * n)]
    for i in range(n):
        j = 2 * i + 1
        num = den = 1
        for k, p in enumerate(pts):
            if k != j:
                num, den = num * (tau - p) % R, den * (pts[j] - p) % R
        assert hs[i] == num * pow(den, -1, R) % R


# --------------------------------------------------------------------------- byte-exact vs snarkjs
def write_known_ptau(path: Path, power: int, tau: int, alpha: int, beta: int) -> None:
    """A powers-of-tau file (no contributions recorded) for known secrets, in snarkjs' format."""
    m = devsetup.mcl()

    def sc(vals):
        return bytearray(b"".join((v % R).to_bytes(32, "little") for v in vals))

    n = 1 << power
    pw = [pow(tau, i, R) for i in range(2 * n - 1)]
    secs = {1: struct.pack("<I", 32) + devsetup.Q.to_bytes(32, "little") + struct.pack("<II", power, power),
            2: m.mul_generic(1, sc(pw)), 3: m.mul_generic(2, sc(pw[:n])),
            4: m.mul_generic(1, sc([alpha * x for x in pw[:n]])),
            5: m.mul_generic(1, sc([beta * x for x in pw[:n]])), 6: m.g2_mul(beta), 7: struct.pack("<I", 0)}
    with open(path, "wb") as f:
        f.write(b"ptau" + struct.pack("<II", 1, 7))
        for sid in range(1, 8):
            f.write(struct.pack("<IQ", sid, len(secs[sid])) + secs[sid])


def test_sections_equal_snarkjs_byte_for_byte(circ, tmp_path):
    cs = devsetup.R1cs(circ / "circ.r1cs")
    assert cs.n_pub_inputs == 2 and cs.n_outputs == 2
    toxic = dict(tau=secrets.randbelow(R), alpha=secrets.randbelow(R - 1) + 1,
                 beta=secrets.randbelow(R - 1) + 1, gamma=1, delta=1)
    # ptau one power larger than the circuit's domain: for a ptau of exactly the circuit's
    # power, snarkjs derives H from a 2n-domain basis whose last power of tau is zeroed (an
    # equally valid key that differs in section 9)
    write_known_ptau(tmp_path / "k.ptau", cs.power + 1, toxic["tau"], toxic["alpha"], toxic["beta"])
    toolchain.snarkjs("powersoftau", "prepare", "phase2", tmp_path / "k.ptau", tmp_path / "kp.ptau")
    toolchain.snarkjs("groth16", "setup", circ / "circ.r1cs", tmp_path / "kp.ptau", tmp_path / "snarkjs.zkey")
    devsetup.write_zkey(circ / "circ.r1cs", tmp_path / "dev.zkey", toxic)
    a, b = (tmp_path / "snarkjs.zkey").read_bytes(), (tmp_path / "dev.zkey").read_bytes()
    sa, sb = binfile.sections(a, b"zkey"), binfile.sections(b, b"zkey")
    assert list(sa) == list(sb) == [1, 2, 4, 3, 9, 8, 5, 6, 7, 10]
    for sid in range(1, 10):
        assert a[sa[sid][0]:sa[sid][0] + sa[sid][1]] == b[sb[sid][0]:sb[sid][0] + sb[sid][1]], f"section {sid}"
    # section 10: a 64-byte hash and zero contributions (the hash is ours, see devsetup's doc)
    assert sb[10][1] == 68 and struct.unpack_from("<I", b, sb[10][0] + 64)[0] == 0
    # the key has points at infinity (signals absent from A / B): encoded as zeros like snarkjs
    off, size = sb[5]
    assert any(b[off + i:off + i + 64] == bytes(64) for i in range(0, size, 64))


# --------------------------------------------------------------------------- end to end
def test_prove_and_verify_with_public_inputs(circ, two_setups):
    info, _ = two_setups
    assert info["insecure"] and "INSECURE" in info["kind"]
    assert (info["constraints"], info["public"], info["power"]) == (7, 4, 4)
    vk, proof, public = load(circ, "k1")
    assert public[2:] == ["3", "5"] and len(public) == 4 == len(vk["IC"]) - 1
    assert snarkjs_verify(circ / "k1_vk.json", circ / "k1_public.json", circ / "k1_proof.json")
    assert pyverify.verify(vk, proof, public)
    bad = [public[0], public[1], public[2], str(int(public[3]) + 1)]
    assert not pyverify.verify(vk, proof, bad)
    (circ / "bad_public.json").write_text(json.dumps(bad))
    assert not snarkjs_verify(circ / "k1_vk.json", circ / "bad_public.json", circ / "k1_proof.json")
    w3 = evm.connect(None)
    res = evm.deploy_and_verify(vk, proof, public, name="devsetup_test", w3=w3,
                                setup_note="development keys (INSECURE): zkml.devsetup test")
    assert res.valid
    ok, _ = evm.verify_on_chain(w3, res.address, res.abi, proof, bad, send_tx=False)
    assert not ok


def test_proof_of_one_setup_is_rejected_by_another(circ, two_setups):
    vk1, proof1, public1 = load(circ, "k1")
    vk2, proof2, public2 = load(circ, "k2")
    assert vk1["vk_alpha_1"] != vk2["vk_alpha_1"] and vk1["vk_delta_2"] != vk2["vk_delta_2"]
    assert public1 == public2
    assert pyverify.verify(vk2, proof2, public2)
    assert not pyverify.verify(vk2, proof1, public1)
    assert not pyverify.verify(vk1, proof2, public2)
    assert not snarkjs_verify(circ / "k2_vk.json", circ / "k1_public.json", circ / "k1_proof.json")
    assert snarkjs_verify(circ / "k2_vk.json", circ / "k2_public.json", circ / "k2_proof.json")


def test_zkml_model_end_to_end(tmp_path):
    """A compiled ONNX model (public outputs only): dev keys, witness, snarkjs proof, verifiers."""
    model = save(mlp_model((4, 3, 2)), tmp_path / "m.onnx")
    np.save(tmp_path / "cal.npy", np.random.default_rng(0).normal(size=(16, 4)))
    (tmp_path / "x.json").write_text(json.dumps({"input_data": [[0.1, -0.2, 0.3, 0.5]]}))
    build = tmp_path / "b"
    api.compile(model, build, calibration=tmp_path / "cal.npy")
    logs = []
    info = devsetup.dev_setup(build / "main.r1cs", build / "main.zkey", log=logs.append)
    assert any("INSECURE" in line for line in logs)
    assert info["constraints"] == devsetup.R1cs(build / "main.r1cs").n_constraints > 0
    toolchain.snarkjs("zkey", "export", "verificationkey", build / "main.zkey", build / "verification_key.json")
    wtns, _ = api.witness(build, tmp_path / "x.json")
    toolchain.snarkjs("groth16", "prove", build / "main.zkey", wtns, build / "proof.json", build / "public.json")
    assert snarkjs_verify(build / "verification_key.json", build / "public.json", build / "proof.json")
    assert pyverify.verify_files(build / "verification_key.json", build / "proof.json", build / "public.json")


# --------------------------------------------------------------------------- errors
def test_missing_or_wrong_files(tmp_path):
    with pytest.raises(ZkmlError, match="not found"):
        devsetup.dev_setup(tmp_path / "nope.r1cs", tmp_path / "k.zkey")
    (tmp_path / "junk.r1cs").write_bytes(b"nonsense" * 8)
    with pytest.raises(ZkmlError, match="not a .r1cs"):
        devsetup.dev_setup(tmp_path / "junk.r1cs", tmp_path / "k.zkey")
    assert not (tmp_path / "k.zkey").exists()


def test_truncated_r1cs(circ, tmp_path):
    data = (circ / "circ.r1cs").read_bytes()
    secs = binfile.sections(data, b"r1cs")
    pos, size = secs[2]
    bad = bytearray(data)
    struct.pack_into("<Q", bad, pos - 8, size - 36)        # drop the last term of section 2
    del bad[pos + size - 36:pos + size]
    (tmp_path / "bad.r1cs").write_bytes(bytes(bad))
    with pytest.raises(ZkmlError, match="constraint section"):
        devsetup.dev_setup(tmp_path / "bad.r1cs", tmp_path / "k.zkey")
    assert not list(tmp_path.glob("k.zkey*"))


def test_other_prime_is_refused(tmp_path):
    (tmp_path / "c.circom").write_text(CIRCUIT)
    toolchain.circom(tmp_path / "c.circom", tmp_path, flags=["--r1cs", "--prime", "bls12381"])
    with pytest.raises(ZkmlError, match="not over BN254"):
        devsetup.dev_setup(tmp_path / "c.r1cs", tmp_path / "k.zkey")


def test_missing_library_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mclbn256", None)
    monkeypatch.setitem(sys.modules, "mclbn256.mclbn256", None)
    with pytest.raises(ZkmlError, match="pip install mclbn256"):
        devsetup.Mcl()
