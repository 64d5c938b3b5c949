"""On-chain verification at any output size (issue 6): key contracts, split verifier sessions,
the planner, the ERC-721 consumer; on the embedded py-evm and on anvil with EIP-170 and
EIP-7825 (2^24 gas per transaction) enforced by the node itself.

Small adversarial cases run on the embedded EVM with the three-signal muladd circuit, the split
path forced (2 points per key contract, 1 input per transaction). The output-count matrix
(1, 100, 1,024, 3,072 outputs, packed and not) runs on anvil with a one-node Relu model.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from groth16_fixture import TAMPERS, load, session_artifacts, tampered
from zkml import api, evm, evm_split, toolchain
from zkml.errors import InputError, ZkmlError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples" / "onchain"))
from wide_relu import make_build  # noqa: E402

NOTE = "DEVELOPMENT KEYS - INSECURE (test)"
BUDGET = evm_split.DEFAULT_GAS_BUDGET
# the muladd circuit's public signals are [c, d, b]: outputs c = a*b and d = c + a, then input b
MULADD_LAYOUT = [dict(name="cd", bits=8, size=2, packed=False, lanes=1, words=2)]


# --------------------------------------------------------------------------- helpers
def call(w3, dep, fn_name, *args, sender=None, gas=BUDGET):
    """Send verifier.fn_name(*args); the receipt (Reverted with the contract's error name if it fails)."""
    fn = getattr(w3.eth.contract(address=dep.verifier, abi=dep.abi).functions, fn_name)(*args)
    return evm_split._send(w3, fn_name, gas, fn=fn, sender=sender, abi=dep.abi)[1]


def reverts(w3, dep, fn_name, *args, sender=None) -> str:
    with pytest.raises(evm_split.Reverted) as e:
        call(w3, dep, fn_name, *args, sender=sender)
    return str(e.value)


def events(w3, dep, rc, name):
    from web3.logs import DISCARD
    return getattr(w3.eth.contract(address=dep.verifier, abi=dep.abi).events, name)().process_receipt(
        rc, errors=DISCARD)


def check_limits(w3, records, budget=BUDGET):
    """Every contract within EIP-170 (code read from the chain), every transaction within budget."""
    for r in records:
        r = r if isinstance(r, dict) else r.__dict__
        assert r["gas_used"] <= r["gas_limit"] <= budget, r
        if w3 is not None and r.get("address"):
            assert len(w3.eth.get_code(r["address"])) == r["code_size"] <= evm.EIP170_LIMIT, r


# --------------------------------------------------------------------------- small circuit, embedded EVM
@pytest.fixture(scope="module")
def g16(tmp_path_factory):
    return session_artifacts(tmp_path_factory)


@pytest.fixture(scope="module")
def valid(g16):
    return load(g16.vk), load(g16.proof), load(g16.public)


@pytest.fixture(scope="module")
def second(g16, tmp_path_factory):
    """A second proof of the same circuit and key for other public signals (a=5, b=7)."""
    d = tmp_path_factory.mktemp("second")
    (d / "input.json").write_text(json.dumps({"a": "5", "b": "7"}))
    js = g16.folder / "muladd_js"
    toolchain.run([toolchain.node(), js / "generate_witness.js", js / "muladd.wasm", d / "input.json", d / "w.wtns"])
    toolchain.snarkjs("groth16", "prove", g16.zkey, d / "w.wtns", d / "proof.json", d / "public.json")
    assert load(d / "public.json") == ["35", "40", "7"]
    return load(d / "proof.json"), load(d / "public.json")


@pytest.fixture(scope="module")
def w3():
    return evm.connect(None)


@pytest.fixture(scope="module")
def small_plan(w3, valid):
    """Split forced on the 3-input circuit: 2 key contracts, one input per transaction."""
    g = evm_split.measure_gas(w3)
    return evm_split.plan(valid[0], g, name="muladd", setup_note=NOTE, points_per_key=2, max_chunk=1,
                          outputs=MULADD_LAYOUT)


@pytest.fixture
def split(w3, small_plan):
    """A fresh deployment of the split verifier (nothing verified yet)."""
    return evm_split.deploy_plan(w3, small_plan)


def calldata(proof, public):
    a, b, c, pub = evm.proof_to_calldata(proof, public)
    return a, b, c, pub, evm_split.inputs_hash(pub)


def test_key_contracts_hold_the_key_and_are_pinned_by_hash(valid):
    vk = valid[0]
    src, codes = evm_split.render_split_verifier(vk, "muladd", NOTE, points_per_key=2)
    assert [len(c) for c in codes] == [1 + 2 * 64, 1 + 64]          # IC[1], IC[2] | IC[3]
    assert all(c[0] == 0 for c in codes)                            # STOP first: a call does nothing
    flat = b"".join(c[1:] for c in codes)
    for i, (x, y, *_) in enumerate(vk["IC"][1:]):
        assert int.from_bytes(flat[64 * i:64 * i + 32], "big") == int(x)
        assert int.from_bytes(flat[64 * i + 32:64 * i + 64], "big") == int(y)
    from eth_utils import keccak
    for k, c in enumerate(codes):
        assert f"KEY{k}_CODEHASH = 0x{keccak(c).hex()};" in src
    assert f"IC0_X = {vk['IC'][0][0]};" in src and f"IC1_X" not in src
    full = evm_split.key_contract_codes([(1, 2)] * 3074)
    assert len(full) == 9 and max(len(c) for c in full) == 1 + 383 * 64 <= evm.EIP170_LIMIT


def test_constructor_refuses_wrong_key_contracts(w3, small_plan, split):
    compiled = small_plan.compiled["Groth16SplitVerifier"]
    keys = [c["address"] for c in split.contracts[:2]]
    factory = w3.eth.contract(abi=compiled.abi, bytecode=compiled.bytecode)
    data = factory.constructor(keys[::-1]).build_transaction({"gas": 3_000_000})["data"]
    with pytest.raises(Exception) as e:     # eth-tester's TransactionFailed; a Web3 error on a node
        w3.eth.call({"data": data, "gas": 3_000_000})
    assert evm_split.error_name(compiled.abi, e.value) == "KeyContractMismatch(0)"
    with pytest.raises(evm_split.Reverted, match=r"KeyContractMismatch\(0\)"):
        evm_split._send(w3, "deploy", 3_000_000, data=bytes.fromhex(data[2:]), abi=compiled.abi)


def test_split_verifier_one_transaction(w3, split, valid):
    _, proof, public = valid
    a, b, c, pub, h = calldata(proof, public)
    f = w3.eth.contract(address=split.verifier, abi=split.abi).functions
    assert f.publicInputsHash(pub).call() == h                     # Python and Solidity agree
    assert f.verifyProof(a, b, c, pub).call({"gas": 3_000_000}) is True
    assert f.unpackOutputs(pub).call() == [33, 36]
    assert f.isVerified(h).call() is False
    rc = call(w3, split, "verify", a, b, c, pub)
    assert events(w3, split, rc, "ProofVerified")[0]["args"]["inputsHash"] == h
    assert f.isVerified(h).call() is True
    assert "AlreadyVerified" in reverts(w3, split, "verify", a, b, c, pub)


def test_session_verifies_over_three_transactions(w3, small_plan, split, valid):
    assert [t.function for t in small_plan.transactions] == ["begin", "step", "finish"]
    run = evm_split.run_verification(w3, split, small_plan.transactions, valid[1], valid[2])
    assert run.valid and len(run.records) == 3
    check_limits(w3, run.records + split.records)
    for rec, t in zip(run.records, small_plan.transactions):
        assert rec.gas_used <= t.gas                                # the plan is an upper bound
    h = evm_split.inputs_hash([int(v) for v in valid[2]])
    assert w3.eth.contract(address=split.verifier, abi=split.abi).functions.isVerified(h).call()
    print("\nsession gas: " + ", ".join(f"{r.what} {r.gas_used:,}" for r in run.records))


@pytest.mark.parametrize("name", sorted(TAMPERS))
def test_tampered_proof_rejected_by_sessions(w3, small_plan, split, valid, name):
    p, pub = tampered(name, valid[1], valid[2])
    run = evm_split.run_verification(w3, split, small_plan.transactions, p, pub)
    assert run.valid is False and run.reason
    if name == "public_plus_r":
        assert "InputNotInField(0)" in run.reason
    f = w3.eth.contract(address=split.verifier, abi=split.abi).functions
    a, b, c, pub_i, h = calldata(p, pub)
    assert f.isVerified(h).call() is False
    assert f.verifyProof(a, b, c, pub_i).call({"gas": 3_000_000}) is False   # the one-call path too


def test_chunks_of_two_proofs_cannot_mix(w3, split, valid, second):
    a, b, c, pub, h = calldata(*valid[1:])
    a2, b2, c2, pub2, h2 = calldata(*second)
    # session of proof 1 fed with proof 2's inputs: the hash chain no longer matches
    call(w3, split, "begin", a, b, c, h, pub[:1])
    sid = w3.eth.contract(address=split.verifier, abi=split.abi).functions.sessionId(
        w3.eth.accounts[0], a, b, c, h).call()
    call(w3, split, "step", sid, 1, pub2[1:2])
    assert "InputsHashMismatch" in reverts(w3, split, "finish", a, b, c, h, 2, pub[2:])
    # proof 1 claimed for proof 2's inputs (consistent hash): the pairing rejects it
    call(w3, split, "begin", a, b, c, h2, pub2[:2])
    rc = call(w3, split, "finish", a, b, c, h2, 2, pub2[2:])
    assert events(w3, split, rc, "ProofRejected") and not events(w3, split, rc, "ProofVerified")
    # proof 2 on its own still verifies; the sessions were independent
    rc = call(w3, split, "begin", a2, b2, c2, h2, pub2[:1])
    rc = call(w3, split, "finish", a2, b2, c2, h2, 1, pub2[1:])
    assert events(w3, split, rc, "ProofVerified")


def test_out_of_order_missing_and_replayed_chunks(w3, split, valid):
    a, b, c, pub, h = calldata(*valid[1:])
    f = w3.eth.contract(address=split.verifier, abi=split.abi).functions
    sid = f.sessionId(w3.eth.accounts[0], a, b, c, h).call()
    assert "NoOpenSession" in reverts(w3, split, "step", sid, 0, pub[:1])           # no begin yet
    call(w3, split, "begin", a, b, c, h, pub[:1])
    assert reverts(w3, split, "step", sid, 2, pub[2:]).endswith("WrongChunkStart(1, 2)")  # skips one
    assert "MissingInputs(1)" in reverts(w3, split, "finish", a, b, c, h, 1, [])         # missing
    assert "MissingInputs(2)" in reverts(w3, split, "finish", a, b, c, h, 1, pub[1:2])
    assert "TooManyInputs(4)" in reverts(w3, split, "step", sid, 1, pub[1:] + [1])
    call(w3, split, "step", sid, 1, pub[1:2])
    assert reverts(w3, split, "step", sid, 1, pub[1:2]).endswith("WrongChunkStart(2, 1)")  # replayed
    assert "NoOpenSession" in reverts(w3, split, "step", sid, 2, pub[2:], sender=w3.eth.accounts[1])
    assert f.sessionProgress(sid).call() == 2
    rc = call(w3, split, "finish", a, b, c, h, 2, pub[2:])
    assert events(w3, split, rc, "ProofVerified")
    # replays of a finished session
    assert "NoOpenSession" in reverts(w3, split, "finish", a, b, c, h, 3, [])
    assert "AlreadyVerified" in reverts(w3, split, "begin", a, b, c, h, pub[:1])


def test_a_budget_too_small_for_the_pairing_is_refused(valid):
    g = evm_split.GasModel(6_700, 181_000, "test")
    with pytest.raises(ZkmlError, match="budget"):
        evm_split.plan_verification(3, "split", g, 250_000)
    with pytest.raises(InputError, match="too small"):
        evm_split.plan(valid[0], g, budget=1000)


def test_plan_chunks_3072_inputs_within_the_budget():
    g = evm_split.GasModel(6_700, 181_000, "test")
    txs = evm_split.plan_verification(3072, "split", g, BUDGET)
    assert [t.function for t in txs] == ["begin", "finish"]
    assert txs[0].start == 0 and txs[-1].end == 3072
    assert all(t.end == u.start for t, u in zip(txs, txs[1:])) and all(t.gas <= BUDGET for t in txs)
    assert [t.function for t in evm_split.plan_verification(1024, "split", g, BUDGET)] == ["verify"]
    small = evm_split.plan_verification(3072, "split", g, 5_000_000)
    assert [t.function for t in small] == ["begin", "step", "step", "step", "finish"]


# --------------------------------------------------------------------------- consumer (ERC-721)
def _nft(w3, dep, n_public=3):
    addr, abi, src, rec = evm_split.deploy_consumer(w3, dep, n_public, MULADD_LAYOUT, name="muladd")
    return w3.eth.contract(address=addr, abi=abi), rec


def test_consumer_mints_only_after_split_verification(w3, small_plan, split, valid):
    nft, rec = _nft(w3, split)
    assert rec.code_size <= evm.EIP170_LIMIT
    _, proof, public = valid
    with pytest.raises(evm_split.Reverted, match="ProofNotVerified"):
        evm_split.mint(w3, nft.address, nft.abi, split, proof, public)
    assert evm_split.run_verification(w3, split, small_plan.transactions, proof, public).valid
    token, mrec = evm_split.mint(w3, nft.address, nft.abi, split, proof, public)
    assert token == 1 and nft.functions.ownerOf(1).call() == w3.eth.accounts[0]
    assert evm_split.read_token_outputs(w3, nft.address, nft.abi, 1, MULADD_LAYOUT) == [[33, 36]]
    assert nft.functions.outputWords(1).call() == [33 + (36 << 8)]   # stored packed, 31 lanes a word
    with pytest.raises(evm_split.Reverted, match="AlreadyMinted"):
        evm_split.mint(w3, nft.address, nft.abi, split, proof, public)
    # ERC-721 basics
    alice, bob = w3.eth.accounts[1:3]
    assert nft.functions.supportsInterface(bytes.fromhex("80ac58cd")).call()
    nft.functions.transferFrom(w3.eth.accounts[0], alice, 1).transact()
    with pytest.raises(Exception):
        nft.functions.transferFrom(alice, bob, 1).transact()                    # not approved
    nft.functions.approve(bob, 1).transact({"from": alice})
    nft.functions.transferFrom(alice, bob, 1).transact({"from": bob})
    assert nft.functions.ownerOf(1).call() == bob and nft.functions.balanceOf(alice).call() == 0


def test_consumer_on_the_single_verifier_checks_the_proof_itself(w3, valid):
    g = evm_split.measure_gas(w3)
    p = evm_split.plan(valid[0], g, name="muladd", setup_note=NOTE)
    assert p.mode == "single"
    dep = evm_split.deploy_plan(w3, p)
    nft, _ = _nft(w3, dep)
    bad, bad_pub = tampered("public_changed", valid[1], valid[2])
    with pytest.raises(evm_split.Reverted, match="ProofNotVerified"):
        evm_split.mint(w3, nft.address, nft.abi, dep, bad, bad_pub)
    token, _ = evm_split.mint(w3, nft.address, nft.abi, dep, valid[1], valid[2], to=w3.eth.accounts[3])
    assert nft.functions.ownerOf(token).call() == w3.eth.accounts[3]
    assert evm_split.read_token_outputs(w3, nft.address, nft.abi, token, MULADD_LAYOUT) == [[33, 36]]


def test_private_key_account_signs_locally(valid):
    key = "0x" + "42" * 32
    w3k = evm.connect(None, private_key=key)
    from eth_account import Account
    assert w3k.eth.default_account == Account.from_key(key).address
    res = evm.deploy_and_verify(*valid, name="muladd", setup_note=NOTE, w3=w3k)
    assert res.valid
    tx = w3k.eth.get_transaction(res.transactions[0]["tx_hash"])
    assert tx["from"] == Account.from_key(key).address
    with pytest.raises(InputError, match="private key"):
        evm.connect(None, private_key="0x1234")
    n_tx = len(w3k.eth.get_block("latest")["transactions"]), w3k.eth.block_number
    with pytest.raises(InputError, match="2 public inputs given"):
        evm.deploy_and_verify(valid[0], valid[1], valid[2][:2], w3=w3k)
    assert (len(w3k.eth.get_block("latest")["transactions"]), w3k.eth.block_number) == n_tx  # nothing sent


# --------------------------------------------------------------------------- wide models on a real node
@pytest.fixture(scope="module")
def strict_anvil():
    """anvil with EIP-170 (its default) and EIP-7825's 2^24 gas cap per transaction."""
    with evm.anvil_node("--enable-tx-gas-limit") as url:
        yield url


_WIDE: dict = {}


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    """(n, pack) -> a proven build of the n-wide Relu (two proofs for 3,072 unpacked)."""
    def get(n: int, pack: bool) -> Path:
        if (n, pack) not in _WIDE:
            two = n == 3072 and not pack
            r = make_build(tmp_path_factory.mktemp(f"wide{n}{'p' if pack else 'u'}"), n, pack, inputs=2 if two else 1)
            b = r["build"]
            if two:
                for f in ("proof.json", "public.json"):
                    shutil.copy(r["proofs"][0] / f, b / f)
            _WIDE[n, pack] = (b, r["proofs"])
        return _WIDE[n, pack][0]
    get.proofs = lambda n, pack: _WIDE[n, pack][1]
    return get


CASES = [(1, True), (1, False), (100, True), (100, False), (1024, True), (1024, False), (3072, True),
         (3072, False)]


@pytest.mark.slow
@pytest.mark.parametrize("n,pack", CASES, ids=[f"{n}-{'packed' if p else 'unpacked'}" for n, p in CASES])
def test_outputs_verify_and_mint_on_anvil_within_limits(wide, strict_anvil, n, pack):
    build = wide(n, pack)
    res = evm.deploy_build(build, rpc=strict_anvil, consumer=True)
    assert res.valid, res.reason
    words = -(-n // 31) if pack else n
    assert res.n_public == words
    assert res.mode == ("split" if words > 300 else "single")
    w3 = evm.connect(strict_anvil)
    check_limits(w3, res.transactions)
    assert all(c["code_size"] <= evm.EIP170_LIMIT for c in res.contracts)
    # what the chain proved and stored = the reference runtime's integer outputs (the spec)
    inp = next(build.parent.glob("input0.npy"))
    expected = api.run(build, inp, reference=False).q_outputs
    assert res.outputs == expected and res.consumer["outputs"] == expected
    rec = json.loads((build / "deployment.json").read_text())
    assert rec["address"] == res.address and rec["consumer"]["token_id"] == 1
    assert all("abi" in c for c in rec["contracts"] if c["name"].startswith("Groth16"))
    verify_txs = [t for t in res.transactions if not t["what"].startswith(("deploy", "mint"))]
    if n == 3072 and not pack:
        # one transaction could need more than 2^24 gas (all inputs nonzero): the plan splits
        assert len(verify_txs) >= 2 and sum(t["gas"] for t in res.plan["transactions"]) > evm_split.EIP7825_CAP
    print(f"\n{n} outputs {'packed' if pack else 'unpacked'}: {res.n_public} public inputs, mode {res.mode}, "
          f"{len(res.contracts)} contracts (max {max(c['code_size'] for c in res.contracts):,} bytes), "
          f"deploy gas {res.deploy_gas:,}, verify gas {res.verify_gas:,} in {len(verify_txs)} tx, "
          f"mint gas {res.consumer['mint_gas']:,}")


@pytest.fixture
def big_split(wide, strict_anvil):
    """A fresh split deployment for 3,072 unpacked outputs on anvil, and its plan."""
    build = wide(3072, False)
    w3 = evm.connect(strict_anvil)
    p = evm_split.plan(load(build / "verification_key.json"), evm_split.measure_gas(w3), setup_note=NOTE)
    return w3, p, evm_split.deploy_plan(w3, p), build


@pytest.mark.slow
def test_3072_attacks_rejected_on_anvil(big_split, wide):
    w3, p, dep, build = big_split
    assert len(p.transactions) >= 2
    proof, public = load(build / "proof.json"), load(build / "public.json")
    p2dir = wide.proofs(3072, False)[1]
    proof2, public2 = load(p2dir / "proof.json"), load(p2dir / "public.json")
    assert public2 != public
    for name in ("public_plus_r", "a_doubled", "public_last_changed", "b_outside_subgroup"):
        bad, bad_pub = tampered(name, proof, public)
        run = evm_split.run_verification(w3, dep, p.transactions, bad, bad_pub)
        assert run.valid is False, name
    a, b, c, pub, h = calldata(proof, public)
    *_, pub2, h2 = calldata(proof2, public2)
    k = p.transactions[0].end
    # mixed chunks: proof 1's session, proof 2's last inputs
    call(w3, dep, "begin", a, b, c, h, pub[:k])
    assert "InputsHashMismatch" in reverts(w3, dep, "finish", a, b, c, h, k, pub2[k:])
    # a missing chunk: finish short of N inputs
    assert "MissingInputs" in reverts(w3, dep, "finish", a, b, c, h, k, pub[k:-1])
    # the honest run, then its replay
    run = evm_split.run_verification(w3, dep, p.transactions, proof, public)
    assert run.valid and len(run.records) == len(p.transactions)
    check_limits(w3, run.records)
    again = evm_split.run_verification(w3, dep, p.transactions, proof, public)
    assert again.valid is False and "AlreadyVerified" in again.reason
    # proof 2 verifies independently on the same contracts
    assert evm_split.run_verification(w3, dep, p.transactions, proof2, public2).valid


@pytest.mark.slow
def test_node_refuses_a_verification_over_the_eip7825_cap(big_split):
    """Why the split exists: one transaction for 3,072 inputs needs more than 2^24 gas."""
    w3, _, dep, build = big_split
    g = evm_split.measure_gas(w3)
    one = evm_split.plan_verification(3072, "split", g, 1 << 25)
    assert [t.function for t in one] == ["verify"] and one[0].gas > evm_split.EIP7825_CAP
    run = evm_split.run_verification(w3, dep, one, load(build / "proof.json"), load(build / "public.json"))
    assert run.valid is False and not run.records
    print(f"\nanvil refused a {one[0].gas:,}-gas transaction: {run.reason[:160]}")


# --------------------------------------------------------------------------- embedded EVM, real builds
@pytest.mark.parametrize("n,pack", [(1, True), (100, False)])
def test_small_outputs_on_embedded_evm(wide, n, pack):
    build = wide(n, pack)
    res = evm.deploy_build(build, consumer=True)
    assert res.valid and res.mode == "single" and "embedded py-evm" in res.chain
    inp = next(build.parent.glob("input0.npy"))
    assert res.consumer["outputs"] == api.run(build, inp, reference=False).q_outputs
    check_limits(None, res.transactions)


def test_cli_deploy_prints_the_plan_and_gas(wide, strict_anvil):
    from click.testing import CliRunner
    from zkml.cli import main
    build = wide(1024, False)
    r = CliRunner().invoke(main, ["deploy", str(build), "--rpc", strict_anvil, "--gas-budget", "16000000"])
    assert r.exit_code == 0, r.output
    assert "plan: split verifier for 1024 public inputs" in r.output
    assert "deploy VerifierKey2" in r.output and "call   verify" in r.output
    assert "on-chain verification: true" in r.output
    r = CliRunner().invoke(main, ["deploy", str(build), "--gas-budget", "1000"])
    assert r.exit_code == 2 and "too small" in r.output
    r = CliRunner().invoke(main, ["deploy", str(build), "--private-key", "0xnothex"])
    assert r.exit_code == 2 and "private key" in r.output and "nothex" not in r.output
