"""Hashed outputs checked on-chain (zkml/evm_hashed.py, contracts/ZkmlPoseidon.sol.j2,
contracts/ZkmlHashedOutputs.sol.j2, docs/ONCHAIN.md).

* The EVM Poseidon equals circomlib's: one permutation against zkml.poseidon (itself checked
  against the circom witness in tests/test_visibility.py) and against circomlibjs' JavaScript
  reference (an independent implementation, run with node); at t = 3 and t = 6 against the EVM
  code circomlibjs' own poseidon_gencontract generates; commitWords (the Poseidon(16) chain)
  against zkml.poseidon.commit_words for random words of several lengths, > 15 words included
  (two and three chain calls), on py-evm and on anvil.
* A hashed-output build (one Relu over 40 uint8 values: 2 packed words) proven and deployed with
  `zkml deploy` (zkml.api.deploy): the true outputs are accepted, and the values the contract
  unpacks are the reference runtime's. Wrong outputs against the true proof are rejected: one
  value changed, the two words swapped, a word + r, a word with a lane above its bits, one word
  too few or too many; the true outputs with another input's proof, and a tampered proof.
"""
from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

import zkml_runtime as rt
from zkml import api, evm, evm_hashed, evm_split, packing, toolchain
from zkml.cli import main as cli
from zkml.poseidon import P as R, commit_words, poseidon
from zkml.visibility import Visibility

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples" / "onchain"))
from wide_relu import relu_model  # noqa: E402

BUDGET = evm_split.DEFAULT_GAS_BUDGET


def circomlibjs_poseidon(inputs: list[int]) -> int:
    """circomlibjs' reference Poseidon (JavaScript, node), for an independent check."""
    script = ("import {buildPoseidonReference} from 'circomlibjs';"
              "const p = await buildPoseidonReference();"
              f"const x = {json.dumps([str(v) for v in inputs])}.map(BigInt);"
              "console.log(p.F.toString(p(x)));")
    out = subprocess.run([toolchain.node(), "--input-type=module", "-e", script], cwd=toolchain.PROJECT_ROOT,
                         capture_output=True, text=True, timeout=120, check=True)
    return int(out.stdout.strip())


def circomlibjs_contract_code(n: int) -> str:
    """Creation code of circomlibjs' poseidon_gencontract for Poseidon(n) (n <= 8)."""
    script = f"import {{poseidonContract}} from 'circomlibjs'; console.log(poseidonContract.createCode({n}));"
    out = subprocess.run([toolchain.node(), "--input-type=module", "-e", script], cwd=toolchain.PROJECT_ROOT,
                         capture_output=True, text=True, timeout=120, check=True)
    return out.stdout.strip()


@pytest.fixture(scope="module")
def chain():
    w3 = evm.connect()
    return w3, evm_hashed.deploy_poseidon(w3)


def poseidon_fn(w3, dep):
    return w3.eth.contract(address=dep.address, abi=dep.abi).functions


# --------------------------------------------------------------------------- the EVM Poseidon
def test_poseidon16_equals_zkml_and_circomlibjs(chain):
    w3, dep = chain
    rng = random.Random(16)
    x = [rng.randrange(R) for _ in range(14)] + [0, R - 1]
    got = poseidon_fn(w3, dep).poseidon(x).call({"gas": BUDGET})
    assert got == poseidon(x) == circomlibjs_poseidon(x)


@pytest.mark.parametrize("n", [2, 5])
def test_small_poseidon_equals_circomlibjs_gencontract(n):
    """The same template at t = n + 1 against circomlibjs' generated EVM code, on one chain."""
    w3 = evm.connect()
    ours = evm_hashed.deploy_poseidon(w3, n + 1)
    code = circomlibjs_contract_code(n)
    rec, _ = evm_split._send(w3, "deploy circomlibjs Poseidon", 5_000_000, data=bytes.fromhex(code[2:]))
    abi = [{"type": "function", "name": "poseidon", "stateMutability": "pure",
            "inputs": [{"name": "input", "type": f"uint256[{n}]"}], "outputs": [{"name": "", "type": "uint256"}]}]
    theirs = w3.eth.contract(address=rec.address, abi=abi).functions
    rng = random.Random(n)
    for _ in range(3):
        x = [rng.randrange(R) for _ in range(n)]
        want = theirs.poseidon(x).call()
        assert poseidon_fn(w3, ours).poseidon(x).call({"gas": BUDGET}) == want == poseidon(x)


@pytest.mark.parametrize("n", [1, 16])
def test_commit_words_equals_python_pyevm(chain, n):
    w3, dep = chain
    rng = random.Random(n)
    words = [rng.randrange(1 << 253) for _ in range(n)]
    assert evm_hashed.commit_words_on_chain(w3, dep, words) == commit_words(words)


def test_commit_words_rejects_empty_and_non_field(chain):
    w3, dep = chain
    f = poseidon_fn(w3, dep)
    for words, err in (([], "NoWords"), ([1, R, 2], "NotInField(1)"), ([R + 5], "NotInField(0)")):
        with pytest.raises(evm_split.Reverted, match=err.replace("(", r"\(").replace(")", r"\)")):
            evm_split._send(w3, "commitWords", BUDGET, fn=f.commitWords(words), abi=dep.abi)
    with pytest.raises(evm_split.Reverted, match="NotInField"):
        evm_split._send(w3, "poseidon", BUDGET, fn=f.poseidon([0] * 15 + [R]), abi=dep.abi)


def test_wrong_table_contracts_refused(chain):
    """The Poseidon contract's constructor checks the code hash of every table contract."""
    w3, dep = chain
    source, _ = evm_hashed.render_poseidon()
    c = evm.compile_solidity(source, "ZkmlPoseidonT17")
    tables = [dep.tables[1], dep.tables[0]] + dep.tables[2:]
    data = bytes.fromhex(w3.eth.contract(abi=c.abi, bytecode=c.bytecode).constructor(tables)
                         .build_transaction({"from": w3.eth.accounts[0], "gas": BUDGET})["data"][2:])
    with pytest.raises(evm_split.Reverted, match=r"TableContractMismatch\(0\)"):
        evm_split._send(w3, "deploy", BUDGET, data=data, abi=c.abi)


def test_commit_words_on_anvil(anvil):
    """Several lengths (1 to 3 chain calls) on a real node."""
    w3 = evm.connect(anvil)
    dep = evm_hashed.deploy_poseidon(w3)
    rng = random.Random(7)
    for n in (1, 14, 15, 16, 30, 31, 34):
        words = [rng.randrange(1 << 253) for _ in range(n - 1)] + [(1 << 253) - 1]
        assert evm_hashed.commit_words_on_chain(w3, dep, words) == commit_words(words), n


# --------------------------------------------------------------------------- a hashed-output build
N_OUT = 40      # 2 packed uint8 words


@pytest.fixture(scope="module")
def hashed_build(tmp_path_factory):
    """Relu over 40 values compiled with --output hashed, keys, a proof of x and one of x2."""
    d = tmp_path_factory.mktemp("hashed")
    rng = np.random.default_rng(3)
    onnx.save(relu_model(N_OUT), d / "relu.onnx")
    np.save(d / "cal.npy", rng.normal(0, 1, (16, 1, N_OUT)).astype(np.float32))
    for name in ("x", "x2"):
        np.save(d / f"{name}.npy", (np.abs(rng.normal(0, 1, (1, N_OUT))) + 0.05).astype(np.float32))
    b = d / "build"
    api.compile(d / "relu.onnx", b, d / "cal.npy", visibility=Visibility("private", "constant", "hashed"))
    api.setup(b)
    other = api.prove(b, d / "x2.npy")
    other = dict(proof=json.loads((b / "proof.json").read_text()), public=json.loads((b / "public.json").read_text()),
                 outputs=other["outputs"])
    api.prove(b, d / "x.npy")
    return d, b, other


def runtime_outputs(d: Path, b: Path, name: str) -> list[int]:
    g = api.load_graph(b)
    q, _ = rt.quantize_input(g, np.load(d / f"{name}.npy").astype(np.float64)[0])
    return [int(v) for v in rt.run_outputs(g, q)[0].reshape(-1)]


@pytest.fixture(scope="module")
def deployed(hashed_build):
    """`zkml deploy` of the hashed build (zkml.api.deploy) on one embedded chain, kept for attacks."""
    d, b, _ = hashed_build
    w3 = evm.connect()
    res = api.deploy(b, w3=w3)
    return w3, res


def test_deploy_accepts_true_outputs(hashed_build, deployed):
    d, b, _ = hashed_build
    w3, res = deployed
    want = runtime_outputs(d, b, "x")
    assert json.loads((b / "prove.json").read_text())["outputs"] == want
    assert res.valid and res.reason == ""
    h = res.hashed
    assert h["valid"] and h["outputs"] == res.outputs == want            # unpacked on-chain by the consumer
    assert h["words"] == packing.pack(want, 8) and len(h["words"]) == 2
    assert h["digest"] == commit_words(h["words"]) == int(json.loads((b / "public.json").read_text())[0])
    assert 0 < h["gas"] < BUDGET
    rec = json.loads((b / "deployment.json").read_text())
    assert rec["hashed"]["valid"] and rec["hashed"]["consumer"] == h["consumer"]
    names = [c["name"] for c in res.contracts]
    assert "ZkmlPoseidonT17" in names and "ZkmlHashedOutputs" in names and (b / "HashedOutputs.sol").exists()


@pytest.fixture(scope="module")
def consumer(hashed_build, deployed):
    d, b, _ = hashed_build
    w3, res = deployed
    segs = json.loads((b / "build.json").read_text())["public_segments"]
    abi = evm.compile_solidity(evm_hashed.render_consumer(segs, res.n_public, "direct"), "ZkmlHashedOutputs").abi
    return evm_hashed.HashedConsumer(res.hashed["consumer"], abi, "direct", "", None)


def _attempt(w3, consumer, b, words, proof=None, public=None):
    proof = proof or json.loads((b / "proof.json").read_text())
    public = public or json.loads((b / "public.json").read_text())
    return evm_hashed.verify_with_outputs(w3, consumer, proof, public, words, send_tx=False)


def test_wrong_outputs_rejected(hashed_build, deployed, consumer):
    d, b, other = hashed_build
    w3, res = deployed
    true = res.hashed["words"]
    assert _attempt(w3, consumer, b, true)[0]
    vals = list(res.outputs)
    changed = list(vals)
    changed[17] = (changed[17] + 1) % 256
    ok, _, reason = _attempt(w3, consumer, b, packing.pack(changed, 8))
    assert not ok and "returned false" in reason                       # one value changed
    ok, _, reason = _attempt(w3, consumer, b, [true[1], true[0]])
    assert not ok                                                       # words swapped
    ok, _, reason = _attempt(w3, consumer, b, [true[0] + R, true[1]])
    assert not ok and "WordOutOfRange(0)" in reason                     # a word + r (same field element)
    ok, _, reason = _attempt(w3, consumer, b, [true[0], true[1] | (1 << (8 * (N_OUT - 31)))])
    assert not ok and "WordOutOfRange(1)" in reason                     # a lane beyond the last word's 9
    ok, _, reason = _attempt(w3, consumer, b, true[:1])
    assert not ok and "WrongWordCount(2, 1)" in reason                  # one word too few
    ok, _, reason = _attempt(w3, consumer, b, true + [0])
    assert not ok and "WrongWordCount(2, 3)" in reason                  # one word too many
    # the true outputs with the other input's proof (its digest), and the other input's outputs
    ok, _, _ = _attempt(w3, consumer, b, true, other["proof"], other["public"])
    assert not ok
    ok, _, _ = _attempt(w3, consumer, b, packing.pack(other["outputs"], 8), other["proof"], other["public"])
    assert ok                                                           # that proof with its own outputs
    # a tampered proof with the true outputs and digest
    bad = json.loads((b / "proof.json").read_text())
    bad["pi_a"] = [bad["pi_c"][0], bad["pi_c"][1], "1"]
    assert not _attempt(w3, consumer, b, true, bad)[0]


def test_cli_deploy_hashed(hashed_build, tmp_path):
    """`zkml deploy` on a hashed build: exit 0 with the true prove.json; exit 1 when its outputs are wrong."""
    import shutil
    d, b, _ = hashed_build
    b2 = tmp_path / "b"
    shutil.copytree(b, b2)
    r = CliRunner().invoke(cli, ["deploy", str(b2)])
    assert r.exit_code == 0, r.output
    lines = {ln.split(":")[0]: ln for ln in r.output.splitlines() if ln.startswith("on-chain ")}
    assert "): true (gas used" in lines["on-chain verifyWithOutputs (the outputs of prove.json as calldata, 2 words, "
                                        "against the output digest)"]
    assert lines["on-chain verifyProof"].startswith("on-chain verifyProof: true")
    rec = json.loads((b2 / "prove.json").read_text())
    rec["outputs"][0] = (rec["outputs"][0] + 1) % 256
    (b2 / "prove.json").write_text(json.dumps(rec))
    r = CliRunner().invoke(cli, ["deploy", str(b2)])
    assert r.exit_code == 1 and "rejected" in r.output and "Traceback" not in r.output
    assert "on-chain verifyProof: true" in r.output and "against the output digest): false" in r.output
    rec["outputs"] = rec["outputs"][:-1]
    (b2 / "prove.json").write_text(json.dumps(rec))
    r = CliRunner().invoke(cli, ["deploy", str(b2)])
    assert r.exit_code == 2 and "40" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(cli, ["deploy", str(b2), "--mint"])      # the same malformed claim, with --mint
    assert r.exit_code == 2 and "40" in r.output and "Traceback" not in r.output


def test_deploy_hashed_on_anvil(hashed_build, anvil):
    d, b, _ = hashed_build
    res = api.deploy(b, rpc=anvil)
    assert res.valid and res.hashed["valid"] and res.outputs == runtime_outputs(d, b, "x")
    assert 0 < res.hashed["gas"] < BUDGET


def test_deploy_hashed_with_split_verifier(hashed_build):
    """With the split verifier (forced here), the consumer reads isVerified(publicInputsHash(pub))."""
    d, b, other = hashed_build
    w3 = evm.connect()
    res = api.deploy(b, w3=w3, force_split=True, points_per_key=1)
    assert res.mode == "split" and res.valid and res.outputs == runtime_outputs(d, b, "x")
    assert "isVerified" in (b / "HashedOutputs.sol").read_text()
    segs = json.loads((b / "build.json").read_text())["public_segments"]
    abi = evm.compile_solidity(evm_hashed.render_consumer(segs, res.n_public, "recorded"), "ZkmlHashedOutputs").abi
    cons = evm_hashed.HashedConsumer(res.hashed["consumer"], abi, "recorded", "", None)
    words = res.hashed["words"]
    changed = list(res.outputs)
    changed[0] = (changed[0] + 1) % 256
    assert not _attempt(w3, cons, b, packing.pack(changed, 8))[0]
    # the other input's outputs match its own digest, but no proof of it was verified on this chain
    assert not _attempt(w3, cons, b, packing.pack(other["outputs"], 8), other["proof"], other["public"])[0]
    assert _attempt(w3, cons, b, words)[0]


# --------------------------------------------------------------------------- reusing the Poseidon contract
def test_deploy_reuses_checked_poseidon(hashed_build, deployed, tmp_path):
    """`zkml deploy --poseidon ADDRESS` on the chain of an earlier deploy: the Poseidon(16) contract
    is checked and reused (no table or Poseidon deployment, ~24M gas less) and the true outputs are
    accepted; wrong addresses are refused with a clear message before anything is deployed."""
    import shutil
    d, b, _ = hashed_build
    w3, first = deployed
    pos = first.hashed["poseidon"]
    b2 = tmp_path / "b"
    shutil.copytree(b, b2)
    blocks = w3.eth.block_number
    res = api.deploy(b2, w3=w3, poseidon=pos)
    assert res.valid and res.hashed["valid"] and res.outputs == runtime_outputs(d, b, "x")
    assert res.hashed["poseidon"] == pos
    names = [c["name"] for c in res.contracts]
    assert "ZkmlPoseidonT17 (reused)" in names and not any(n.startswith("PoseidonTable") for n in names)
    assert res.deploy_gas < first.deploy_gas - 20_000_000
    assert first.deploy_gas > 20_000_000
    # the same check the contract ran for the first deployment, on the reused one
    dep = evm_hashed.attach_poseidon(w3, pos)
    words = [random.Random(1).randrange(R) for _ in range(20)]
    assert evm_hashed.commit_words_on_chain(w3, dep, words) == commit_words(words)
    assert w3.eth.block_number > blocks
    # refused: not an address, no code there, someone else's contract (the verifier), a Poseidon
    # contract whose tables are swapped (its constructor check bypassed: deployed runtime code)
    verifier = first.address
    before = w3.eth.block_number
    for bad, msg in [("0x1234", "not an address"), ("0x" + "11" * 20, "no contract"),
                     (verifier, "not zkml's Poseidon")]:
        with pytest.raises(evm_hashed.InputError, match=msg):
            api.deploy(b2, w3=w3, poseidon=bad)
    assert w3.eth.block_number == before, "a refused --poseidon must not spend gas"


def test_poseidon_with_foreign_tables_refused(chain):
    """A contract with the Poseidon's runtime code but other table addresses (as a constructor
    without the code-hash check would leave it) is refused: the tables are checked by code hash."""
    w3, dep = chain
    compiled = evm.compile_solidity(evm_hashed.render_poseidon()[0], "ZkmlPoseidonT17")
    code = bytearray(w3.eth.get_code(dep.address))
    assert compiled.immutables and len(compiled.immutables) == len(dep.tables)
    # point table 0 at table 1 (real code, wrong constants) in every place the runtime reads it
    t1 = bytes.fromhex(dep.tables[1][2:])
    for a, n in compiled.immutables[0]:
        code[a + n - 20:a + n] = t1
    # deploy the patched runtime code as is (creation code that returns it)
    init = bytes.fromhex("61%04x80600c6000396000f3" % len(code)) + bytes(code)
    rec, _ = evm_split._send(w3, "deploy patched", BUDGET, data=init)
    assert bytes(w3.eth.get_code(rec.address)) == bytes(code)
    with pytest.raises(evm_hashed.InputError, match="table contract 0"):
        evm_hashed.attach_poseidon(w3, rec.address)
    assert evm_hashed.attach_poseidon(w3, dep.address).tables == dep.tables


def test_cli_deploy_poseidon_option_errors(hashed_build, tmp_path):
    """--poseidon on the embedded chain (a fresh chain per command: nothing there) and on a build
    without hashed outputs: exit 2 with the reason, no traceback."""
    import shutil
    d, b, _ = hashed_build
    b2 = tmp_path / "b"
    shutil.copytree(b, b2)
    r = CliRunner().invoke(cli, ["deploy", str(b2), "--poseidon", "0x" + "22" * 20])
    assert r.exit_code == 2 and "no contract at that address" in r.output and "Traceback" not in r.output
    plain = tmp_path / "plain"
    onnx.save(relu_model(4), tmp_path / "r.onnx")
    np.save(tmp_path / "cal.npy", np.random.default_rng(0).normal(0, 1, (8, 1, 4)).astype(np.float32))
    api.compile(tmp_path / "r.onnx", plain, tmp_path / "cal.npy")
    r = CliRunner().invoke(cli, ["deploy", str(plain), "--poseidon", "0x" + "22" * 20])
    assert r.exit_code == 2 and "hashed outputs" in r.output and "Traceback" not in r.output


# --------------------------------------------------------------------------- --mint with hashed outputs
@pytest.mark.parametrize("split", [False, True], ids=["single", "split"])
def test_mint_hashed_outputs(hashed_build, split):
    """`zkml deploy --mint` on a hashed build: the ERC-721 consumer mints only for output words the
    hashed-output contract accepts (digest of the words == the proof's public digest, and the proof
    verifies); the stored words read back as the reference runtime's outputs. Wrong words (one value
    changed, a word + 1, a word too few), and the true words with another input's proof, revert
    ProofNotVerified (or the words' own check); a second mint of the same proof reverts AlreadyMinted."""
    d, b, other = hashed_build
    w3 = evm.connect()
    res = api.deploy(b, w3=w3, consumer=True, **({"force_split": True, "points_per_key": 1} if split else {}))
    assert res.valid and res.mode == ("split" if split else "single")
    want = runtime_outputs(d, b, "x")
    c = res.consumer
    assert c["token_id"] == 1 and c["outputs"] == want and c["mint_gas"] > 0
    src = (b / "OutputNFT.sol").read_text()
    assert "verifyWithOutputs" in src and "_packOutputs" not in src
    nft = w3.eth.contract(address=c["address"], abi=c["abi"])
    assert nft.functions.ownerOf(1).call() == w3.eth.accounts[0]
    words = res.hashed["words"]
    dep = evm_split.Deployed("split" if split else "single", res.address, [], [], [])
    proof = json.loads((b / "proof.json").read_text())
    public = json.loads((b / "public.json").read_text())
    changed = list(want)
    changed[3] = (changed[3] + 1) % 256
    bad_words = [packing.pack(changed, 8), [words[0] + 1] + words[1:], words[:-1]]
    for bad in bad_words:
        with pytest.raises(evm_split.Reverted, match="ProofNotVerified|WrongWordCount|WordOutOfRange"):
            evm_split.mint(w3, c["address"], c["abi"], dep, proof, public, words=bad)
    if not split:   # the other input's proof (its own digest) with the true words
        with pytest.raises(evm_split.Reverted, match="ProofNotVerified"):
            evm_split.mint(w3, c["address"], c["abi"], dep, other["proof"], other["public"], words=words)
    with pytest.raises(evm_split.Reverted, match="AlreadyMinted"):
        evm_split.mint(w3, c["address"], c["abi"], dep, proof, public, words=words)
    assert nft.functions.totalSupply().call() == 1


def test_cli_mint_hashed(hashed_build, tmp_path):
    """`zkml deploy BUILD --mint` on a hashed build: exit 0, the token minted and its outputs read back."""
    import shutil
    d, b, _ = hashed_build
    b2 = tmp_path / "b"
    shutil.copytree(b, b2)
    r = CliRunner().invoke(cli, ["deploy", str(b2), "--mint"])
    assert r.exit_code == 0, r.output
    line = next(ln for ln in r.output.splitlines() if ln.startswith("ZkmlOutputNFT at "))
    assert "token 1 minted" in line and str(runtime_outputs(d, b, "x")[:3])[1:-1] in line
    assert json.loads((b2 / "deployment.json").read_text())["consumer"]["outputs"] == runtime_outputs(d, b, "x")
