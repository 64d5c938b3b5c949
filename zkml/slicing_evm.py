"""On-chain verification of a sliced model: one Groth16 verifier per segment
(zkml.evm.render_verifier, contracts/Groth16Verifier.sol.j2) and the chain contract
(contracts/ChainVerifier.sol.j2) that accepts the segment proofs over several transactions and
records success only when every proof verifies and the boundary commitments match end to end.

    deploy_chain(build, w3)              -> ChainDeployment (verifier and chain addresses)
    submit(w3, dep, k, proof, public)    -> one transaction: segment k's proof
    finalize(w3, dep, publics)           -> one transaction: the chain check, recorded on success
    verify_chain(build, w3=...)          -> all of it for the proofs in the build's segment folders
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import jinja2

from . import __version__, evm, toolchain
from .errors import InputError
from .slicing import _check_layout, manifest_of

TEMPLATE = "ChainVerifier.sol.j2"
SUBMIT_GAS = 1_500_000       # a segment verifier call (~230k + 6-7k per public signal) + storage
FINALIZE_GAS = 2_000_000


@dataclass
class ChainDeployment:
    chain: str
    address: str
    abi: list
    verifiers: list[str]
    deploy_gas: int
    source: str = ""


def _index(segs: list[dict], kind: str) -> int:
    """Position of the hashed `kind` commitment in a segment's public signals, or -1."""
    pos = 0
    for s in segs:
        if s["kind"] == kind:
            return pos if s["mode"] == "hashed" else -1
        pos += s["words"]
    return -1


def render_chain(build: Path, verifiers: list[str], contract_name: str = "ZkmlChainVerifier") -> str:
    from web3 import Web3
    m = manifest_of(build)
    if len(verifiers) != len(m["segments"]):
        raise InputError(f"{len(verifiers)} verifier addresses for {len(m['segments'])} segments")
    segs = []
    for k, addr in enumerate(verifiers):
        layout = _check_layout(Path(build), m, k)
        segs.append(dict(address=Web3.to_checksum_address(addr), n_public=sum(x["words"] for x in layout),
                         in_index=_index(layout, "input"), out_index=_index(layout, "output")))
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(toolchain.CONTRACTS_DIR)),
                             undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True)
    name = evm._comment_text(Path(str(m.get("source") or build)).name, "model name")
    return env.get_template(TEMPLATE).render(contract_name=contract_name, name=name, zkml_version=__version__,
                                             segments=segs)


def _setup_note(d: Path) -> str:
    try:
        setup = json.loads((d / "setup.json").read_text())
    except (OSError, ValueError):
        setup = {}
    return evm.DEV_SETUP_NOTE if not isinstance(setup, dict) or setup.get("insecure", True) \
        else str(setup.get("kind", "production setup"))


def deploy_chain(build: str | Path, w3=None, rpc: str | None = None, sender: str | None = None,
                 log=lambda s: None) -> ChainDeployment:
    """Deploy a verifier per segment (from its verification_key.json), then the chain contract."""
    build = Path(build)
    m = manifest_of(build)
    w3 = w3 if w3 is not None else evm.connect(rpc)
    addrs, gas = [], 0
    for k, s in enumerate(m["segments"]):
        d = build / s["dir"]
        vk = evm._load_json(d / "verification_key.json", "verification key", "run `zkml prove` (it sets up)")
        src = evm.render_verifier(vk, f"segment {k:02d} of {Path(str(m['source'])).name}", _setup_note(d),
                                  contract_name=f"Segment{k}Verifier")
        dep = evm.deploy(w3, evm.compile_solidity(src, f"Segment{k}Verifier"), sender=sender)
        addrs.append(dep.address)
        gas += dep.gas_used
        log(f"Segment{k}Verifier at {dep.address}: {dep.code_size:,} bytes, deploy gas {dep.gas_used:,}")
    src = render_chain(build, addrs)
    compiled = evm.compile_solidity(src, "ZkmlChainVerifier")
    dep = evm.deploy(w3, compiled, sender=sender)
    log(f"ZkmlChainVerifier at {dep.address}: {dep.code_size:,} bytes, deploy gas {dep.gas_used:,}")
    return ChainDeployment(evm.chain_description(w3), dep.address, compiled.abi, addrs, gas + dep.gas_used, src)


def _transact(w3, fn, gas: int, sender: str | None, abi: list) -> tuple[bool, str, int | None]:
    """(succeeded, revert reason, gas used): the call is tried with eth_call first, so a revert
    names the contract's error, then sent as a transaction."""
    from eth_tester.exceptions import TransactionFailed
    from web3.exceptions import Web3Exception
    from .evm_split import error_name
    frm = evm._sender(w3, sender)
    try:
        fn.call({"from": frm, "gas": gas})
    except (Web3Exception, ValueError, TransactionFailed) as e:
        return False, error_name(abi, e), None
    rc = w3.eth.wait_for_transaction_receipt(fn.transact({"from": frm, "gas": gas}), timeout=300)
    return rc["status"] == 1, "" if rc["status"] == 1 else "reverted", rc["gasUsed"]


def submit(w3, dep: ChainDeployment, k: int, proof: dict, public: list, sender: str | None = None):
    a, b, c, pub = evm.proof_to_calldata(proof, public)
    fn = w3.eth.contract(address=dep.address, abi=dep.abi).functions.submitSegment(k, a, b, c, pub)
    return _transact(w3, fn, SUBMIT_GAS, sender, dep.abi)


def finalize(w3, dep: ChainDeployment, publics: list[list], sender: str | None = None):
    pubs = [[evm._uint(v, "public input") for v in p] for p in publics]
    fn = w3.eth.contract(address=dep.address, abi=dep.abi).functions.finalize(pubs)
    return _transact(w3, fn, FINALIZE_GAS, sender, dep.abi)


def chain_verified(w3, dep: ChainDeployment, publics: list[list]) -> bool:
    from eth_abi import encode
    from web3 import Web3
    pubs = [[int(v) for v in p] for p in publics]
    cid = Web3.keccak(encode(["uint256[][]"], [pubs]))
    return bool(w3.eth.contract(address=dep.address, abi=dep.abi).functions.chainVerified(cid).call())


@dataclass
class ChainResult:
    chain: str
    address: str
    valid: bool
    reason: str = ""
    deploy_gas: int = 0
    transactions: list = field(default_factory=list)   # {what, ok, reason, gas_used}

    def to_json(self) -> dict:
        return asdict(self)


def verify_chain(build: str | Path, w3=None, rpc: str | None = None, sender: str | None = None,
                 proofs: list[tuple[str | Path, str | Path]] | None = None, log=lambda s: None) -> ChainResult:
    """`zkml deploy` of a sliced build: deploy, submit every segment proof (one transaction each),
    finalize; writes BUILD/deployment.json."""
    build = Path(build)
    m = manifest_of(build)
    w3 = w3 if w3 is not None else evm.connect(rpc)
    dep = deploy_chain(build, w3, sender=sender, log=log)
    if proofs is None:
        proofs = [(build / s["dir"] / "proof.json", build / s["dir"] / "public.json") for s in m["segments"]]
    res = ChainResult(dep.chain, dep.address, False, deploy_gas=dep.deploy_gas)
    publics = []
    for k, (pf, pb) in enumerate(proofs):
        proof = evm._load_json(Path(pf), "proof", "run `zkml prove`")
        public = evm._load_json(Path(pb), "public inputs", "run `zkml prove`")
        ok, reason, gas = submit(w3, dep, k, proof, public, sender)
        res.transactions.append(dict(what=f"submitSegment({k})", ok=ok, reason=reason, gas_used=gas))
        log(f"submitSegment({k}): {'accepted' if ok else 'REJECTED ' + reason}" + (f", gas {gas:,}" if gas else ""))
        publics.append(public)
    ok, reason, gas = finalize(w3, dep, publics, sender)
    res.transactions.append(dict(what="finalize", ok=ok, reason=reason, gas_used=gas))
    log(f"finalize: {'chain verified' if ok else 'REJECTED ' + reason}" + (f", gas {gas:,}" if gas else ""))
    res.valid = ok and chain_verified(w3, dep, publics)
    res.reason = "" if res.valid else reason or next((t["reason"] for t in res.transactions if not t["ok"]), "")
    (build / "deployment.json").write_text(json.dumps(res.to_json(), indent=2))
    (build / "ChainVerifier.sol").write_text(dep.source)
    return res


__all__ = ["ChainDeployment", "ChainResult", "render_chain", "deploy_chain", "submit", "finalize",
           "chain_verified", "verify_chain"]
