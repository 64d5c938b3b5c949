"""The Solidity side: render the Groth16 verifier from a snarkjs verification key, compile it
with solcjs, deploy it with web3.py and call verifyProof on a chain.

The chain is an embedded py-evm (web3's EthereumTesterProvider, no server) by default, or any
JSON-RPC node (`connect("http://127.0.0.1:8545")`, e.g. anvil; `anvil_node()` starts one).
Transactions come from the node's unlocked accounts (eth-tester and anvil have funded ones), a
chosen one (`sender`), or a local private key (`connect(..., private_key=...)`, signed by web3.py).

Which contracts and transactions a proof needs (one contract, or key contracts + a verifier
checked over several transactions) is planned in zkml.evm_split; deploy_and_verify runs it.

verifyProof is always called with an EXPLICIT gas limit: the verifier returns false (it does not
revert) when a precompile runs out of gas, so `eth_estimateGas` finds a limit at which a valid
proof "fails". Gas is measured by sending the same call as a transaction (a view function can be
sent) and reading the receipt: that figure includes the 21,000 base cost and the calldata.
"""
from __future__ import annotations

import contextlib
import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import jinja2

from . import pyverify, toolchain
from .errors import BuildError, InputError, ToolError, VerificationError, ZkmlError

EIP170_LIMIT = 24_576           # max deployed code size in bytes (EIP-170)
DEFAULT_VERIFY_GAS = 3_000_000  # explicit gas limit for verifyProof
DEFAULT_EVM_VERSION = "cancun"  # runs on py-evm (up to prague), anvil and current L1/L2s
TEMPLATE = "Groth16Verifier.sol.j2"
DEV_SETUP_NOTE = "DEVELOPMENT KEYS - INSECURE, NOT FOR PRODUCTION"

Log = Callable[[str], None]
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_DECIMAL = re.compile(r"[0-9]{1,80}")


# --------------------------------------------------------------------------- rendering
def _comment_text(s: Any, what: str, limit: int = 200) -> str:
    """One printable line, safe inside a `//` comment (no newline can end the comment)."""
    if not isinstance(s, str):
        raise InputError(f"{what} must be a string")
    s = " ".join("".join(ch if ch.isprintable() else " " for ch in s).split())
    return s[:limit] if s else "(none)"


def _coord(v: Any, what: str) -> int:
    if isinstance(v, int) and not isinstance(v, bool):
        n = v
    elif isinstance(v, str) and _DECIMAL.fullmatch(v):
        n = int(v)
    else:
        raise InputError(f"malformed verification key: {what} is not a decimal integer")
    if not 0 <= n < pyverify.Q:
        raise InputError(f"malformed verification key: {what} is not below the field modulus")
    return n


def _vk_values(vk: dict) -> dict:
    """Integers of the key, in snarkjs order (G2 as {"x": (c0, c1), "y": (c0, c1)})."""
    pyverify.check_verification_key(vk)  # curve, subgroup and shape checks; InputError if bad
    g1 = lambda p, w: (_coord(p[0], f"{w}.x"), _coord(p[1], f"{w}.y"))  # noqa: E731
    g2 = lambda p, w: {"x": (_coord(p[0][0], f"{w}.x.c0"), _coord(p[0][1], f"{w}.x.c1")),  # noqa: E731
                       "y": (_coord(p[1][0], f"{w}.y.c0"), _coord(p[1][1], f"{w}.y.c1"))}
    return dict(alpha=g1(vk["vk_alpha_1"], "vk_alpha_1"), beta=g2(vk["vk_beta_2"], "vk_beta_2"),
                gamma=g2(vk["vk_gamma_2"], "vk_gamma_2"), delta=g2(vk["vk_delta_2"], "vk_delta_2"),
                ic=[g1(p, f"IC[{i}]") for i, p in enumerate(vk["IC"])])


def render_verifier(vk: dict, name: str, setup_note: str, *,
                    contract_name: str = "Groth16Verifier", outputs: list[dict] | None = None) -> str:
    """Solidity source of a verifier for this key (template contracts/Groth16Verifier.sol.j2).

    `outputs`: zkml's public layout (build.json "public_layout"); when given, the contract
    also gets `unpackOutputs(pub)` returning the model's integer outputs.
    """
    if not isinstance(contract_name, str) or not _IDENT.fullmatch(contract_name):
        raise InputError(f"contract name {contract_name!r} is not a Solidity identifier")
    values = _vk_values(vk)
    n_public = len(values["ic"]) - 1
    if n_public < 1:
        raise InputError("the verification key has no public inputs; a verifier needs at least one "
                         "(Solidity has no zero-length arrays for the snarkjs ABI)")
    from . import __version__
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(toolchain.CONTRACTS_DIR)),
                             undefined=jinja2.StrictUndefined, autoescape=False,
                             keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    try:
        template = env.get_template(TEMPLATE)
    except jinja2.TemplateNotFound:
        raise BuildError(f"verifier template {toolchain.CONTRACTS_DIR / TEMPLATE} is missing") from None
    return template.render(contract_name=contract_name, name=_comment_text(name, "circuit name"),
                           setup_note=_comment_text(setup_note, "setup note"), n_public=n_public,
                           zkml_version=__version__, outputs=_outputs_layout(outputs, n_public), **values)


def _outputs_layout(outputs: list[dict] | None, n_public: int) -> list[dict]:
    if not outputs:
        return []
    if sum(o["words"] for o in outputs) > n_public:   # outputs first, then any public inputs
        raise InputError("the output layout does not match the verification key's public inputs")
    return [dict(o, name=_comment_text(o["name"], "output name")) for o in outputs]


# --------------------------------------------------------------------------- compiling
@dataclass(frozen=True)
class CompiledContract:
    name: str
    abi: list
    bytecode: str           # creation code, 0x-prefixed hex
    deployed_bytecode: str  # runtime code, 0x-prefixed hex
    # immutable variables in the runtime code: [[(byte offset, length), ...] per variable, in
    # declaration order] (their values are written by the constructor, zeros here)
    immutables: list = field(default_factory=list)

    @property
    def code_size(self) -> int:
        """Deployed code size in bytes (EIP-170 limit: 24,576)."""
        return (len(self.deployed_bytecode) - 2) // 2


def compile_solidity(source: str, contract_name: str = "Groth16Verifier", *,
                     optimizer_runs: int = 200, evm_version: str = DEFAULT_EVM_VERSION) -> CompiledContract:
    """Compile one Solidity source with solcjs (optimizer on); ToolError with solc's messages."""
    fname = f"{contract_name}.sol"
    request = {
        "language": "Solidity",
        "sources": {fname: {"content": source}},
        "settings": {
            "optimizer": {"enabled": True, "runs": optimizer_runs},
            "evmVersion": evm_version,
            "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object",
                                            "evm.deployedBytecode.immutableReferences"]}},
        },
    }
    cmd = "solcjs --standard-json"
    key = json.dumps(request, sort_keys=True)
    if key in _COMPILED:
        return _COMPILED[key]
    raw = toolchain.solcjs_standard_json(json.dumps(request))
    try:
        out = json.loads(raw)
    except ValueError:
        raise ToolError(cmd, 1, f"solc printed something that is not JSON: {raw[:500]}") from None
    errors = [e for e in out.get("errors", []) if e.get("severity") == "error"]
    if errors:
        msgs = "\n".join(e.get("formattedMessage") or e.get("message", "?") for e in errors)
        raise ToolError(cmd, 1, msgs, hint=f"solc rejected {fname}")
    try:
        c = out["contracts"][fname][contract_name]
        bytecode, runtime = c["evm"]["bytecode"]["object"], c["evm"]["deployedBytecode"]["object"]
        refs = c["evm"]["deployedBytecode"].get("immutableReferences") or {}
        immutables = [[(int(r["start"]), int(r["length"])) for r in refs[k]] for k in sorted(refs, key=int)]
        abi = c["abi"]
    except (KeyError, TypeError):
        raise ToolError(cmd, 1, f"solc output has no contract {contract_name} in {fname}") from None
    if not bytecode:
        raise ToolError(cmd, 1, f"solc produced no bytecode for {contract_name} (abstract contract?)")
    _COMPILED[key] = CompiledContract(contract_name, abi, "0x" + bytecode, "0x" + runtime, immutables)
    return _COMPILED[key]


_COMPILED: dict[str, CompiledContract] = {}   # solc is deterministic: one compile per source and settings


# --------------------------------------------------------------------------- chain
def connect(rpc: str | None = None, *, timeout: float = 60.0, private_key: str | None = None):
    """A Web3 on the embedded py-evm chain (rpc None) or on a JSON-RPC node over HTTP.

    With `private_key` (hex, web3.py / eth-account convention) transactions are signed locally
    and sent raw from that account (w3.eth.default_account); on the embedded chain the account
    is first funded with 1,000 ether from a prefunded test account.
    """
    from web3 import EthereumTesterProvider, HTTPProvider, Web3
    if rpc is None:
        w3 = Web3(EthereumTesterProvider())
        pyverify.cap_recursion_limit()   # py-evm / py_ecc raise it on import
    else:
        w3 = Web3(HTTPProvider(rpc, request_kwargs={"timeout": timeout}))
        if not w3.is_connected():
            raise ZkmlError(f"cannot reach a JSON-RPC node at {rpc}")
    if private_key is not None:
        _use_private_key(w3, private_key, fund=rpc is None)
    return w3


def _use_private_key(w3, private_key: str, fund: bool) -> None:
    from eth_account import Account
    from web3.middleware import SignAndSendRawMiddlewareBuilder
    try:
        account = Account.from_key(private_key.strip())
    except Exception:  # noqa: BLE001 - eth-account raises several types; never echo the key
        raise InputError("the private key is not a 32-byte hex string") from None
    if fund:
        _receipt(w3, w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": account.address,
                                              "value": 1000 * 10**18}), "funding the account")
    w3.middleware_onion.inject(SignAndSendRawMiddlewareBuilder.build(account), layer=0)
    w3.eth.default_account = account.address


@contextlib.contextmanager
def anvil_node(*args: str, startup_timeout: float = 30.0):
    """Start anvil (from node_modules) on a free loopback port; yield its URL; stop it.

    Extra `args` go to anvil, e.g. "--enable-tx-gas-limit" (EIP-7825's 2^24 gas cap per
    transaction). EIP-170 is on by default in anvil."""
    import socket
    import subprocess
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([str(toolchain.anvil_path()), "--host", "127.0.0.1", "--port", str(port), "--quiet",
                             *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + startup_timeout
        while True:
            if proc.poll() is not None:
                raise ToolError([toolchain.anvil_path(), *args], proc.returncode, proc.stderr.read().decode())
            try:
                connect(url, timeout=2)
                break
            except ZkmlError:
                if time.time() > deadline:
                    raise ZkmlError(f"anvil did not answer on {url} within {startup_timeout} s") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stderr.close()


def chain_description(w3) -> str:
    from web3 import EthereumTesterProvider
    if isinstance(w3.provider, EthereumTesterProvider):
        return f"embedded py-evm (eth-tester), chain id {w3.eth.chain_id}"
    return f"{getattr(w3.provider, 'endpoint_uri', w3.provider)}, chain id {w3.eth.chain_id}"


def _sender(w3, sender: str | None) -> str:
    if sender:
        return sender
    if w3.eth.default_account:
        return w3.eth.default_account
    accounts = w3.eth.accounts
    if not accounts:
        raise ZkmlError("the node has no unlocked account to send transactions from")
    return accounts[0]


def _receipt(w3, tx_hash, what: str, timeout: float = 120.0):
    rc = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout)
    if rc["status"] != 1:
        raise ZkmlError(f"{what} transaction {tx_hash.hex()} failed (status {rc['status']}, "
                        f"gas used {rc['gasUsed']})")
    return rc


@dataclass(frozen=True)
class Deployment:
    address: str
    gas_used: int
    code_size: int  # bytes of code at the address


def deploy(w3, compiled: CompiledContract, *, sender: str | None = None,
           gas: int | None = None) -> Deployment:
    """Deploy a compiled contract; BuildError if its code exceeds EIP-170."""
    if compiled.code_size > EIP170_LIMIT:
        raise BuildError(f"{compiled.name} has {compiled.code_size} bytes of code, more than the "
                         f"EIP-170 limit of {EIP170_LIMIT}: the verifier must be split")
    factory = w3.eth.contract(abi=compiled.abi, bytecode=compiled.bytecode)
    tx: dict = {"from": _sender(w3, sender)}
    if gas is not None:
        tx["gas"] = gas
    from web3.exceptions import Web3Exception
    try:
        tx_hash = factory.constructor().transact(tx)
    except (Web3Exception, ValueError) as e:
        raise ZkmlError(f"deploying {compiled.name} failed: {e}") from None
    rc = _receipt(w3, tx_hash, f"deployment of {compiled.name}")
    address = rc["contractAddress"]
    return Deployment(address, rc["gasUsed"], len(w3.eth.get_code(address)))


def _uint(v: Any, what: str) -> int:
    """A uint256 call argument from a decimal string/int (range checks are the contract's job)."""
    if isinstance(v, int) and not isinstance(v, bool):
        n = v
    elif isinstance(v, str) and _DECIMAL.fullmatch(v):
        n = int(v)
    else:
        raise InputError(f"{what}: {str(v)[:40]!r} is not a decimal integer")
    if not 0 <= n < 1 << 256:
        raise InputError(f"{what}: {n} does not fit in a uint256")
    return n


def _affine(p: Any, n: int, one: Any, what: str) -> list:
    if not isinstance(p, (list, tuple)) or len(p) not in (n, n + 1):
        raise InputError(f"{what}: expected {n} coordinates (+ z)")
    if len(p) == n + 1 and p[n] != one:
        raise InputError(f"{what}: z must be {one!r} (snarkjs affine form)")
    return list(p[:n])


def proof_to_calldata(proof: dict, public: list) -> tuple[list, list, list, list]:
    """(pA, pB, pC, pubSignals) for verifyProof from snarkjs proof.json / public.json.

    pB is swapped to EIP-197 order: [[x.c1, x.c0], [y.c1, y.c0]] (snarkjs JSON holds c0 first).
    """
    if not isinstance(proof, dict) or not all(k in proof for k in ("pi_a", "pi_b", "pi_c")):
        raise InputError("proof must be a snarkjs proof object with pi_a, pi_b and pi_c")
    if not isinstance(public, (list, tuple)):
        raise InputError("public inputs must be a list of decimal strings")
    a = [_uint(v, "pi_a") for v in _affine(proof["pi_a"], 2, "1", "pi_a")]
    c = [_uint(v, "pi_c") for v in _affine(proof["pi_c"], 2, "1", "pi_c")]
    b = []
    for coord in _affine(proof["pi_b"], 2, ["1", "0"], "pi_b"):
        if not isinstance(coord, (list, tuple)) or len(coord) != 2:
            raise InputError("pi_b: expected [[x.c0, x.c1], [y.c0, y.c1], ...]")
        b.append([_uint(coord[1], "pi_b"), _uint(coord[0], "pi_b")])
    pub = [_uint(v, f"public input {i}") for i, v in enumerate(public)]
    return a, b, c, pub


def verify_on_chain(w3, address: str, abi: list, proof: dict, public: list, *,
                    gas: int = DEFAULT_VERIFY_GAS, send_tx: bool = True,
                    sender: str | None = None) -> tuple[bool, int | None]:
    """Call verifyProof with an explicit gas limit -> (result, gas used).

    The result comes from eth_call. With send_tx the same call is also sent as a transaction and
    the receipt's gasUsed (base cost and calldata included) is returned; otherwise gas is None.
    The number of public inputs must match the contract (InputError otherwise).
    """
    a, b, c, pub = proof_to_calldata(proof, public)
    contract = w3.eth.contract(address=address, abi=abi)
    from web3.exceptions import Web3Exception
    try:
        fn = contract.functions.verifyProof(a, b, c, pub)
    except (Web3Exception, TypeError, ValueError) as e:  # web3's ABI validation errors
        raise InputError(f"verifyProof arguments do not fit the contract ABI "
                         f"({len(pub)} public inputs given): {e}") from None
    frm = _sender(w3, sender)
    ok = bool(fn.call({"from": frm, "gas": gas}))
    gas_used = None
    if send_tx:
        rc = _receipt(w3, fn.transact({"from": frm, "gas": gas}), "verifyProof")
        gas_used = rc["gasUsed"]
    return ok, gas_used


# --------------------------------------------------------------------------- one-shot
@dataclass
class DeployResult:
    chain: str
    address: str          # the verifier
    code_size: int        # the verifier's deployed code bytes (EIP-170 limit 24,576)
    deploy_gas: int       # all deployments (key contracts + verifier)
    valid: bool           # the on-chain verification's result
    verify_gas: int | None  # all verification transactions (incl. 21,000 base + calldata each)
    verify_seconds: float   # wall time of the verification
    n_public: int
    abi: list
    source: str = ""      # rendered Solidity of the verifier (not in to_json)
    outputs: list | None = None  # the model's outputs as the contract's unpackOutputs decodes them
    mode: str = "single"  # "single" (one contract, one call) or "split" (key contracts, sessions)
    gas_budget: int | None = None
    plan: dict | None = None            # what zkml.evm_split.plan decided, with planned gas
    contracts: list = field(default_factory=list)      # {name, address, code_size, deploy_gas, abi?}
    transactions: list = field(default_factory=list)   # {what, gas_used, gas_limit, tx_hash, ...}
    reason: str = ""                    # why the verification failed
    consumer: dict | None = None        # the ERC-721 consumer: address, abi, token, gas, outputs read back
    consumer_source: str = ""           # (not in to_json)
    hashed: dict | None = None          # --output hashed: the on-chain check of the claimed outputs

    def to_json(self) -> dict:
        """Everything but the Solidity sources (deployment.json)."""
        d = asdict(self)
        d.pop("source")
        d.pop("consumer_source")
        return d


def _load_json(path: Path, what: str, hint: str = "") -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise BuildError(f"{what} {path} not found" + (f": {hint}" if hint else "")) from None
    except (OSError, ValueError, RecursionError) as e:
        raise BuildError(f"cannot read {what} {path}: {type(e).__name__}: {str(e)[:200]}") from None


def deploy_and_verify(vk: str | Path | dict, proof: str | Path | dict, public: str | Path | list, *,
                      name: str = "circuit", setup_note: str = DEV_SETUP_NOTE, rpc: str | None = None,
                      w3=None, sender: str | None = None, private_key: str | None = None,
                      log: Log = lambda s: None, outputs: list[dict] | None = None, **kw) -> DeployResult:
    """Plan, deploy and run the on-chain verification of `proof`/`public` for `vk`.

    vk, proof and public are paths to snarkjs files or already-loaded JSON values. Uses `w3` if
    given, else connects to `rpc` (None: a fresh embedded py-evm chain). One contract and one
    call when that fits EIP-170 and the gas budget, else the split verifier (zkml.evm_split;
    keyword options gas_budget, force_split, points_per_key, consumer go there).
    """
    from . import evm_split
    vk_d = vk if isinstance(vk, dict) else _load_json(Path(vk), "verification key")
    proof_d = proof if isinstance(proof, dict) else _load_json(Path(proof), "proof")
    public_l = public if isinstance(public, list) else _load_json(Path(public), "public inputs")
    w3 = w3 if w3 is not None else connect(rpc, private_key=private_key)
    return evm_split.deploy_and_verify(vk_d, proof_d, public_l, name=name, setup_note=setup_note, w3=w3,
                                       sender=sender, log=log, outputs=outputs, **kw)


def _claimed_outputs(build: Path) -> list[int]:
    """The outputs `zkml prove` recorded in prove.json (the claim a hashed output is checked against)."""
    rec = _load_json(build / "prove.json", "prove record", "run `zkml prove`: a hashed output needs the claimed values")
    outs = rec.get("outputs") if isinstance(rec, dict) else None
    if not isinstance(outs, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in outs):
        raise InputError(f"{build / 'prove.json'} has no list of integer outputs to check against the output digest")
    return outs


def deploy_build(build: str | Path, rpc: str | None = None, log: Log = lambda s: None, **kw) -> DeployResult:
    """`zkml deploy`: verifier for build/verification_key.json, checked with build/proof.json.

    Writes build/Verifier.sol (and build/OutputNFT.sol when minting) and build/deployment.json
    (addresses, ABIs, plan, gas per transaction). The setup note comes from setup.json.
    """
    build = Path(build)
    setup = _load_json(build / "setup.json", "setup record", "run `zkml setup`") \
        if (build / "setup.json").exists() else {}
    if not isinstance(setup, dict):
        raise BuildError(f"{build / 'setup.json'} is not a setup record (a JSON object); run `zkml setup`")
    if setup.get("insecure", True):
        how = {"direct": "single-party keys drawn directly, no powers of tau",
               "ptau": "single-party keys from a local powers of tau"}.get(setup.get("method"), "")
        note = "DEVELOPMENT KEYS - INSECURE, NOT FOR PRODUCTION" + (f" ({how})" if how else "")
    else:
        note = f"{setup.get('kind', 'production setup')}"
    meta = _load_json(build / "build.json", "build record") if (build / "build.json").exists() else {}
    if not isinstance(meta, dict):
        raise BuildError(f"{build / 'build.json'} is not a build record (a JSON object); recompile the model")
    name = Path(str(meta.get("source") or build.name)).stem
    segs = meta.get("public_segments") or []
    hashed = any(s.get("kind") == "output" and s.get("mode") == "hashed" for s in segs)
    claimed = _claimed_outputs(build) if hashed else None
    poseidon_address = kw.pop("poseidon", None)
    if poseidon_address and not hashed:
        raise InputError("--poseidon is for builds with hashed outputs (compile with --output hashed); this build's "
                         "outputs are not hashed, so no Poseidon contract is needed")
    mint_hashed = bool(hashed and kw.get("consumer"))
    if mint_hashed:            # the NFT needs the hashed-output contract: minted after its check below
        kw["consumer"] = False
    if hashed:     # refuse malformed claimed outputs before spending gas; one chain for everything
        from . import evm_hashed
        evm_hashed.output_words(evm_hashed.output_segment(segs)[0]["tensors"], claimed)
        kw["w3"] = kw.get("w3") or connect(rpc, private_key=kw.pop("private_key", None))
        # a wrong --poseidon fails here, before the verifier is deployed
        pos = evm_hashed.attach_poseidon(kw["w3"], poseidon_address, log=log) if poseidon_address else None
        proof, public = _load_json(build / "proof.json", "proof"), _load_json(build / "public.json", "public inputs")
    res = deploy_and_verify(build / "verification_key.json", build / "proof.json", build / "public.json",
                            name=name, setup_note=note, rpc=rpc, log=log,
                            outputs=meta.get("public_layout"), **kw)
    if hashed and res.valid:   # the outputs as calldata, checked against the proof's digest (zkml.evm_hashed)
        from . import evm_split
        run = evm_hashed.check_outputs(kw["w3"], res.address, res.mode, segs, proof, public, claimed, name=name,
                                       budget=kw.get("gas_budget", evm_split.DEFAULT_GAS_BUDGET),
                                       sender=kw.get("sender"), poseidon_dep=pos, log=log)
        (build / "HashedOutputs.sol").write_text(run.source)
        res.hashed = run.to_json()
        res.valid, res.outputs = run.valid, run.outputs or None
        res.reason = run.reason
        res.contracts += run.contracts
        res.transactions += run.transactions
        res.deploy_gas += sum(c["deploy_gas"] for c in run.contracts)
        if mint_hashed and run.valid:
            res.consumer, res.consumer_source, txs = evm_hashed.mint_hashed(
                kw["w3"], res.address, res.mode, run.consumer, segs, proof, public, run.words, name=name,
                budget=kw.get("gas_budget", evm_split.DEFAULT_GAS_BUDGET), sender=kw.get("sender"), log=log)
            res.transactions += txs
    (build / "Verifier.sol").write_text(res.source)
    if res.consumer_source:
        (build / "OutputNFT.sol").write_text(res.consumer_source)
    (build / "deployment.json").write_text(json.dumps(res.to_json(), indent=2))
    return res


__all__ = [
    "EIP170_LIMIT", "DEFAULT_VERIFY_GAS", "CompiledContract", "Deployment", "DeployResult",
    "render_verifier", "compile_solidity", "connect", "chain_description", "deploy",
    "proof_to_calldata", "verify_on_chain", "deploy_and_verify", "deploy_build", "VerificationError",
]
