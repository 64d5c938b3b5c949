"""The Solidity verifier on a real EVM: embedded py-evm (eth-tester) and an anvil node (no mocks)."""
from __future__ import annotations

import json
import re
import time

import pytest

from conftest import free_port
from groth16_fixture import TAMPERS, load, session_artifacts, tampered
from zkml import evm, toolchain
from zkml.errors import BuildError, InputError, ToolError, ZkmlError

NOTE = "DEVELOPMENT KEYS — INSECURE, NOT FOR PRODUCTION"


@pytest.fixture(scope="session")
def g16(tmp_path_factory):
    return session_artifacts(tmp_path_factory)


@pytest.fixture(scope="module")
def valid(g16):
    return load(g16.vk), load(g16.proof), load(g16.public)


@pytest.fixture(scope="module")
def compiled(valid):
    return evm.compile_solidity(evm.render_verifier(valid[0], "muladd", NOTE))


@pytest.fixture(scope="module")
def chain(compiled):
    """(w3, address) of the verifier on a fresh embedded py-evm chain."""
    w3 = evm.connect(None)
    dep = evm.deploy(w3, compiled)
    print(f"\nembedded deploy: {dep.gas_used} gas, {dep.code_size} bytes of code "
          f"(block gas limit {w3.eth.get_block('latest')['gasLimit']})")
    return w3, dep.address


# --------------------------------------------------------------------------- rendering
def test_rendered_header_and_abi(valid, compiled):
    src = evm.render_verifier(valid[0], "muladd", NOTE)
    assert "pragma solidity ^0.8.20;" in src
    assert "//   circuit:        muladd" in src
    assert "//   public inputs:  3" in src
    assert f"//   setup:          {NOTE}" in src
    fn = next(e for e in compiled.abi if e.get("name") == "verifyProof")
    assert [i["type"] for i in fn["inputs"]] == ["uint256[2]", "uint256[2][2]", "uint256[2]", "uint256[3]"]
    assert fn["stateMutability"] == "view" and fn["outputs"][0]["type"] == "bool"
    assert 0 < compiled.code_size < evm.EIP170_LIMIT
    print(f"\nverifier: {compiled.code_size} bytes of deployed code (EIP-170 limit {evm.EIP170_LIMIT})")


def test_g2_constants_in_eip197_order(valid):
    vk = valid[0]
    src = evm.render_verifier(vk, "muladd", NOTE)
    assert f"BETA_X_C1 = {vk['vk_beta_2'][0][1]};" in src
    assert f"BETA_X_C0 = {vk['vk_beta_2'][0][0]};" in src
    assert f"DELTA_Y_C1 = {vk['vk_delta_2'][1][1]};" in src
    assert src.index("mstore(add(m, 0x100), BETA_X_C1)") < src.index("mstore(add(m, 0x120), BETA_X_C0)")


def test_header_strings_cannot_inject_code(valid):
    src = evm.render_verifier(valid[0], "evil\ncontract X {}", "note\r\nfunction f() {}\u2028x")
    assert "\ncontract X" not in src and "\nfunction f()" not in src
    assert "//   circuit:        evil contract X {}" in src
    with pytest.raises(InputError):
        evm.render_verifier(valid[0], "x", NOTE, contract_name="Bad Name")


def test_bad_key_is_refused_before_rendering(valid):
    vk = json.loads(json.dumps(valid[0]))
    vk["IC"][1][0] = "12345; function pwn() {}"
    with pytest.raises(InputError, match="malformed verification key"):
        evm.render_verifier(vk, "x", NOTE)


def test_solc_errors_become_tool_errors():
    with pytest.raises(ToolError) as e:
        evm.compile_solidity("pragma solidity ^0.8.20; contract Groth16Verifier { function f( }")
    assert "ParserError" in str(e.value)


def test_calldata_matches_snarkjs_soliditycalldata(g16, valid):
    """Our conversion (with the G2 swap) equals `snarkjs zkey export soliditycalldata`."""
    out = toolchain.snarkjs("zkey", "export", "soliditycalldata", g16.public, g16.proof).stdout
    theirs = json.loads("[" + out[out.index("["):].strip() + "]")
    to_int = lambda v: [to_int(x) for x in v] if isinstance(v, list) else int(v, 16)  # noqa: E731
    assert list(evm.proof_to_calldata(valid[1], valid[2])) == to_int(theirs)


# --------------------------------------------------------------------------- embedded chain
def test_valid_proof_verifies_on_embedded_chain(chain, compiled, valid):
    w3, address = chain
    _, proof, public = valid
    t0 = time.perf_counter()
    ok, _ = evm.verify_on_chain(w3, address, compiled.abi, proof, public, send_tx=False)
    seconds = time.perf_counter() - t0
    assert ok
    ok, gas = evm.verify_on_chain(w3, address, compiled.abi, proof, public)
    assert ok and 150_000 < gas < 400_000
    print(f"\nembedded py-evm: verifyProof eth_call {seconds:.2f} s, transaction gas {gas}")


@pytest.mark.parametrize("name", sorted(TAMPERS))
def test_tampered_proof_rejected_on_chain(chain, compiled, valid, name):
    w3, address = chain
    _, proof, public = valid
    p, pub = tampered(name, proof, public)  # test_pyverify checks the same cases off-chain
    ok, _ = evm.verify_on_chain(w3, address, compiled.abi, p, pub, send_tx=False)
    assert ok is False  # false, not a revert


def test_invalid_proof_transaction_does_not_revert(chain, compiled, valid):
    w3, address = chain
    p, pub = tampered("a_doubled", valid[1], valid[2])
    ok, gas = evm.verify_on_chain(w3, address, compiled.abi, p, pub)
    assert ok is False and gas > 100_000  # the receipt had status 1


def test_too_little_gas_makes_a_valid_proof_fail(chain, compiled, valid):
    """Why verify_on_chain always passes an explicit gas limit (and estimate_gas is useless)."""
    w3, address = chain
    ok, _ = evm.verify_on_chain(w3, address, compiled.abi, valid[1], valid[2], gas=100_000, send_tx=False)
    assert ok is False


def test_wrong_number_of_public_inputs_is_an_input_error(chain, compiled, valid):
    w3, address = chain
    with pytest.raises(InputError, match="2 public inputs"):
        evm.verify_on_chain(w3, address, compiled.abi, valid[1], valid[2][:2], send_tx=False)
    with pytest.raises(InputError, match="uint256"):
        evm.verify_on_chain(w3, address, compiled.abi, valid[1], [str(1 << 256), *valid[2][1:]])


def test_key_of_another_setup_rejects_on_chain(g16, chain, valid):
    w3, _ = chain
    other = evm.compile_solidity(evm.render_verifier(load(g16.other_vk), "muladd", NOTE))
    dep = evm.deploy(w3, other)
    ok, _ = evm.verify_on_chain(w3, dep.address, other.abi, valid[1], valid[2], send_tx=False)
    assert ok is False


def test_deploy_build_writes_files(g16, tmp_path):
    build = tmp_path / "build"
    build.mkdir()
    for src, dst in ((g16.vk, "verification_key.json"), (g16.proof, "proof.json"),
                     (g16.public, "public.json")):
        (build / dst).write_text(src.read_text())
    (build / "setup.json").write_text(json.dumps({"kind": "development", "insecure": True}))
    (build / "build.json").write_text(json.dumps({"source": "/models/tiny_mlp.onnx"}))
    res = evm.deploy_build(build)
    assert res.valid and res.verify_gas and res.code_size < evm.EIP170_LIMIT
    assert "embedded py-evm" in res.chain
    sol = (build / "Verifier.sol").read_text()
    assert "circuit:        tiny_mlp" in sol and "INSECURE" in sol
    rec = json.loads((build / "deployment.json").read_text())
    assert rec["address"] == res.address and rec["valid"] is True
    with pytest.raises(BuildError, match="not found"):
        evm.deploy_build(tmp_path)


# --------------------------------------------------------------------------- anvil (fixture in conftest)
def test_deploy_and_verify_on_anvil(anvil, g16, valid):
    res = evm.deploy_and_verify(g16.vk, g16.proof, g16.public, name="muladd", setup_note=NOTE, rpc=anvil)
    assert res.valid and anvil in res.chain
    assert 150_000 < res.verify_gas < 400_000
    print(f"\nanvil: deploy gas {res.deploy_gas}, code {res.code_size} bytes, "
          f"verifyProof gas {res.verify_gas}, eth_call {res.verify_seconds:.3f} s")
    w3 = evm.connect(anvil)
    for name in ("a_doubled", "b_outside_subgroup", "public_plus_r"):
        p, pub = tampered(name, valid[1], valid[2])
        ok, gas = evm.verify_on_chain(w3, res.address, res.abi, p, pub)
        assert ok is False, name


def test_connect_to_nothing_is_a_clear_error():
    with pytest.raises(ZkmlError, match=re.escape("cannot reach a JSON-RPC node")):
        evm.connect(f"http://127.0.0.1:{free_port()}", timeout=2)
