"""The whole pipeline through the CLI: compile -> prove -> verify (snarkjs + Python) -> deploy
-> on-chain true, on the digits example and the shared models; tampered proofs, public
inputs + r, a changed claimed output and a key from another setup are all rejected, off-chain
(`zkml verify` exits 1) and on-chain."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import FOUNDATION_MODELS, ROOT, SHARED_MODELS, shared_model
from groth16_fixture import TAMPERS, tampered
from zkml import api, evm

EX = ROOT / "examples" / "digits"


def zkml(*args):
    r = subprocess.run([sys.executable, "-m", "zkml.cli", *map(str, args)], capture_output=True, text=True)
    assert "Traceback" not in r.stderr + r.stdout, r.stderr
    return r


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    build = tmp_path_factory.mktemp("digits") / "build"
    r = zkml("compile", EX / "model.onnx", "--calibration", EX / "calibration.npy", "-o", build)
    assert r.returncode == 0, r.stderr
    assert "constraints" in r.stdout
    r = zkml("prove", build, "--input", EX / "input.json")
    assert r.returncode == 0, r.stderr
    assert "prove time" in r.stdout and "outputs equal the reference runtime" in r.stdout
    return build


@pytest.fixture(scope="module")
def deployed(digits):
    r = zkml("deploy", digits)
    assert r.returncode == 0, r.stderr
    assert "on-chain verifyProof: true" in r.stdout and "gas used" in r.stdout
    dep = json.loads((digits / "deployment.json").read_text())
    # the contract's unpackOutputs decodes the runtime's outputs from the packed signal
    assert dep["outputs"] == api.run(digits, EX / "input.json", reference=False).q_outputs
    return dep


def test_cli_deploy_on_anvil(digits, anvil):
    """`zkml deploy --rpc URL` against a real node (anvil from node_modules)."""
    r = zkml("deploy", digits, "--rpc", anvil)
    assert r.returncode == 0, r.stderr
    assert "on-chain verifyProof: true" in r.stdout and anvil in r.stdout


def test_verify_accepts_the_proof(digits):
    r = zkml("verify", digits)
    assert r.returncode == 0, r.stderr
    assert "snarkjs: true" in r.stdout and "python verifier: true" in r.stdout
    # the public signals are the runtime's integer outputs, packed 31 uint8 per field element
    run = api.run(digits, EX / "input.json", reference=False)
    public = json.loads((digits / "public.json").read_text())
    assert len(public) == 1
    assert api.decode_public(digits, public) == run.q_outputs
    assert int(public[0]) == sum(v << (8 * i) for i, v in enumerate(run.q_outputs))


def test_setup_is_labelled_insecure(digits):
    meta = json.loads((digits / "setup.json").read_text())
    assert meta["insecure"] is True and "INSECURE" in meta["kind"]
    assert "INSECURE" in (digits / "Verifier.sol").read_text() if (digits / "Verifier.sol").exists() else True


@pytest.mark.parametrize("tamper", sorted(TAMPERS))
def test_tampered_proof_rejected_off_chain(digits, tmp_path, tamper):
    proof = json.loads((digits / "proof.json").read_text())
    public = json.loads((digits / "public.json").read_text())
    p2, pub2 = tampered(tamper, proof, public)
    (tmp_path / "proof.json").write_text(json.dumps(p2))
    (tmp_path / "public.json").write_text(json.dumps(pub2))
    r = zkml("verify", digits, "--proof", tmp_path / "proof.json", "--public", tmp_path / "public.json")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "INVALID" in r.stderr


def test_claiming_another_output_rejected(digits, tmp_path):
    public = json.loads((digits / "public.json").read_text())
    public[0] = str(int(public[0]) - (1 << 16))     # claim a lower score for the predicted class (lane 2)
    (tmp_path / "public.json").write_text(json.dumps(public))
    r = zkml("verify", digits, "--public", tmp_path / "public.json")
    assert r.returncode == 1


def test_unpacked_outputs_option(tmp_path):
    """--no-pack-outputs: one public signal per output value, still proven and verified."""
    build = tmp_path / "b"
    r = zkml("compile", EX / "model.onnx", "--calibration", EX / "calibration.npy", "-o", build,
             "--no-pack-outputs")
    assert r.returncode == 0, r.stderr
    api.prove(build, EX / "input.json")
    public = json.loads((build / "public.json").read_text())
    assert [int(v) for v in public] == api.run(build, EX / "input.json", reference=False).q_outputs
    assert api.verify(build).valid


def test_weight_grid_and_mult_error_options(digits, tmp_path):
    """The default (constant weights) puts every Dense's weights on its output's grid: multipliers
    all 1, shorter shifts and fewer constraints than `--weight-grid affine` (uint8 weights and
    multipliers within 1/8 LSB), whose `--mult-error 0` gives every layer 16-significant-bit
    multipliers: longer shifts and more constraints again. All recorded in build.json; the runtime
    equals the witness each time; a budget outside 0..0.5 LSB is refused with exit 2."""
    builds = {"aligned": digits}
    for name, extra in (("affine", []), ("affine16", ["--mult-error", "0"])):
        builds[name] = tmp_path / name
        r = zkml("compile", EX / "model.onnx", "--calibration", EX / "calibration.npy", "-o", builds[name],
                 "--weight-grid", "affine", *extra)
        assert r.returncode == 0, r.stderr
        api.witness(builds[name], EX / "input.json")      # raises unless the witness equals the runtime
    meta = {k: json.loads((b / "build.json").read_text()) for k, b in builds.items()}
    assert [meta[k]["quant"]["weight_grid"] for k in builds] == ["aligned", "affine", "affine"]
    assert [meta[k]["quant"]["mult_error"] for k in builds] == [0.125, 0.125, 0]
    n = [meta[k]["circuit"]["constraints"] for k in builds]
    assert n[0] < n[1] < n[2], n
    dense = {k: [nd.params for nd in api.load_graph(b).nodes if nd.op == "Dense"] for k, b in builds.items()}
    assert all(set(p.mult) == {1} and p.w_bits > 8 for p in dense["aligned"])
    assert all(p.w_bits == 8 for p in dense["affine"] + dense["affine16"])
    shifts = {k: [p.shift for p in v] for k, v in dense.items()}
    assert all(a < b <= c for a, b, c in zip(shifts["aligned"], shifts["affine"], shifts["affine16"])), shifts
    assert shifts["affine"] != shifts["affine16"]
    r = zkml("compile", EX / "model.onnx", "-o", tmp_path / "c", "--mult-error", "0.9")
    assert r.returncode == 2 and "--mult-error" in r.stderr


def test_weight_grid_follows_the_weights_visibility(tmp_path):
    """With weights as signals every weight bit is a range-check constraint, so `auto` keeps
    uint8 weights and multipliers there; `aligned` asked for explicitly still gives a circuit
    whose witness equals the runtime, with wider weights and more constraints."""
    from zkml.quantize import QuantConfig
    from zkml.visibility import Visibility
    vis = Visibility("private", "private", "public")
    builds = {"auto": tmp_path / "auto", "aligned": tmp_path / "aligned"}
    meta = {k: api.compile(EX / "model.onnx", b, EX / "calibration.npy", visibility=vis,
                           cfg=QuantConfig(weight_grid=k)) for k, b in builds.items()}
    assert [meta[k]["quant"]["weight_grid"] for k in builds] == ["affine", "aligned"]
    bits = {k: [n.params.w_bits for n in api.load_graph(b).nodes if n.op == "Dense"] for k, b in builds.items()}
    assert set(bits["auto"]) == {8} and min(bits["aligned"]) > 8
    assert meta["aligned"]["circuit"]["constraints"] > meta["auto"]["circuit"]["constraints"]
    for b in builds.values():
        api.witness(b, EX / "input.json")          # raises unless the witness equals the runtime


def test_key_from_another_setup_rejects(digits, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(digits, other)
    r = zkml("setup", other)
    assert r.returncode == 0, r.stderr
    assert "INSECURE" in r.stdout
    r = zkml("verify", digits, "--vk", other / "verification_key.json")
    assert r.returncode == 1


@pytest.mark.parametrize("tamper", ["a_doubled", "c_negated", "public_changed", "public_plus_r",
                                    "b_c0_c1_swapped"])
def test_tampered_proof_rejected_on_chain(digits, deployed, tamper):
    w3 = evm.connect(None)
    compiled = evm.compile_solidity((digits / "Verifier.sol").read_text())
    addr = evm.deploy(w3, compiled).address
    proof = json.loads((digits / "proof.json").read_text())
    public = json.loads((digits / "public.json").read_text())
    ok, _ = evm.verify_on_chain(w3, addr, compiled.abi, proof, public, send_tx=False)
    assert ok is True
    p2, pub2 = tampered(tamper, proof, public)
    ok, _ = evm.verify_on_chain(w3, addr, compiled.abi, p2, pub2, send_tx=False)
    assert ok is False


@pytest.mark.parametrize("name", FOUNDATION_MODELS)
def test_shared_model_compiles_runs_and_proves(tmp_path, name):
    model = shared_model(name)
    inp = SHARED_MODELS / name / "input.json"
    build = tmp_path / "b"
    # calibration: the shipped input plus random inputs around it (no training data ships)
    x = np.array(json.loads(inp.read_text())["input_data"], dtype=np.float64).reshape(1, -1)
    rng = np.random.default_rng(0)
    np.save(tmp_path / "cal.npy", np.concatenate([x, x + rng.normal(0, 0.5, (63, x.shape[1]))]))
    meta = api.compile(model, build, calibration=tmp_path / "cal.npy")
    assert meta["circuit"]["constraints"] > 0
    run = api.run(build, inp)
    assert run.max_diff_lsb is not None and run.max_diff_lsb <= 2.0, run
    res = api.prove(build, inp)
    assert res["outputs"] == run.q_outputs
    v = api.verify(build)
    assert v.valid and v.snarkjs and v.python
