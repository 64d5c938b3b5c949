"""On-chain verification at any number of public inputs: plan, deploy and run it.

A verifier with every key point as a constant fits one contract (EIP-170: 24,576 bytes of code)
up to ~205 public inputs, and one transaction (EIP-7825: 2^24 gas) up to ~2,300. Beyond that:

- the points IC[1..N] go into *key contracts*, raw bytes as contract code (SSTORE2:
  code = 0x00 || x || y || ..., <= 383 points each), read with EXTCODECOPY; the verifier
  (contracts/Groth16SplitVerifier.sol.j2) checks their code hashes in its constructor;
- the public-input MSM is spread over transactions (begin / step / finish) that accumulate a
  partial sum under a session bound to the sender, the proof and a hash chain of the inputs;
  finish runs the pairing check and records `isVerified[publicInputsHash(pub)]`.

`plan()` chooses: one contract when it fits both limits, else key contracts + the split
verifier, verified in one transaction (`verify`) when the MSM fits the gas budget, else in as
few begin/step/finish transactions as the budget allows. Its gas figures come from a probe run on
the target chain (`measure_gas`: eth_call of contracts/GasProbe.sol's creation code, nothing is
deployed) plus fixed EVM storage/calldata costs; every transaction is sent with the planned gas
limit, which never exceeds the budget, so no transaction can use more.

The consumer example (contracts/ZkmlOutputNFT.sol.j2) mints an ERC-721 token for public signals
whose proof verified, storing the output packed; `mint_outputs` / `read_token_outputs`.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import jinja2
from web3.logs import DISCARD

from . import evm, packing, toolchain
from .errors import BuildError, InputError, ZkmlError

DEFAULT_GAS_BUDGET = 16_000_000          # per transaction; EIP-7825 caps transactions at 2^24
EIP7825_CAP = 1 << 24
POINT_BYTES = 64
MAX_POINTS_PER_KEY = (evm.EIP170_LIMIT - 1) // POINT_BYTES   # 383 (one leading 0x00 byte)
SSTORE2_INIT = bytes.fromhex("600B5981380380925939F3")       # returns its code after these 11 bytes
SPLIT_TEMPLATE = "Groth16SplitVerifier.sol.j2"
CONSUMER_TEMPLATE = "ZkmlOutputNFT.sol.j2"
SINGLE_MAX_INPUTS = 400   # above this the one-contract verifier cannot fit EIP-170 (~112 bytes per input)

# Fixed costs of each transaction beyond (n inputs x per-input gas) and the pairing, in gas:
# the 21,000 base, the proof's calldata, cold storage writes of a new session (4 slots x 22,100),
# updates (4 x 5,000), isVerified (22,100), events, cold key-contract access (2,600 each) and
# memory. Upper bounds (compared with receipts in tests/test_onchain_split.py).
OVERHEAD = dict(verifyProof=40_000, verify=90_000, begin=150_000, step=70_000, finish=120_000)
CALLDATA_PER_INPUT = 16 * 32 + 200   # a nonzero 32-byte word (EIP-2028) + ABI/loop slack


# --------------------------------------------------------------------------- key contracts
def key_contract_codes(ic: list[tuple[int, int]], points_per_key: int = MAX_POINTS_PER_KEY) -> list[bytes]:
    """Runtime code of the key contracts for IC[1..]: 0x00 || (x || y) per point, 32 bytes big-endian."""
    if not 1 <= points_per_key <= MAX_POINTS_PER_KEY:
        raise InputError(f"points per key contract must be in [1, {MAX_POINTS_PER_KEY}]")
    pts = ic[1:]
    return [b"\x00" + b"".join(x.to_bytes(32, "big") + y.to_bytes(32, "big")
                               for x, y in pts[k:k + points_per_key])
            for k in range(0, len(pts), points_per_key)]


def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(toolchain.CONTRACTS_DIR)),
                              undefined=jinja2.StrictUndefined, autoescape=False,
                              keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)


def _template(name: str) -> jinja2.Template:
    try:
        return _env().get_template(name)
    except jinja2.TemplateNotFound:
        raise BuildError(f"contract template {toolchain.CONTRACTS_DIR / name} is missing") from None


def render_split_verifier(vk: dict, name: str, setup_note: str, *, points_per_key: int = MAX_POINTS_PER_KEY,
                          contract_name: str = "Groth16SplitVerifier",
                          outputs: list[dict] | None = None) -> tuple[str, list[bytes]]:
    """(Solidity source of the split verifier, runtime codes of its key contracts)."""
    from eth_utils import keccak
    from . import __version__
    if not isinstance(contract_name, str) or not evm._IDENT.fullmatch(contract_name):
        raise InputError(f"contract name {contract_name!r} is not a Solidity identifier")
    values = evm._vk_values(vk)
    n_public = len(values["ic"]) - 1
    if n_public < 1:
        raise InputError("the verification key has no public inputs")
    codes = key_contract_codes(values["ic"], points_per_key)
    source = _template(SPLIT_TEMPLATE).render(
        contract_name=contract_name, name=evm._comment_text(name, "circuit name"),
        setup_note=evm._comment_text(setup_note, "setup note"), zkml_version=__version__,
        n_public=n_public, points_per_key=points_per_key, key_hashes=["0x" + keccak(c).hex() for c in codes],
        alpha=values["alpha"], beta=values["beta"], gamma=values["gamma"], delta=values["delta"],
        ic0=values["ic"][0], outputs=evm._outputs_layout(outputs, n_public))
    return source, codes


def render_consumer(n_public: int, outputs: list[dict], mode: str, name: str = "circuit", *,
                    contract_name: str = "ZkmlOutputNFT", token_name: str = "zkml proven output",
                    token_symbol: str = "ZKML", hashed: bool = False) -> str:
    """Solidity source of the ERC-721 consumer for a verifier of `mode` ("direct" or "recorded").

    `outputs` is zkml's public layout (build.json "public_layout"): the outputs are the first
    public signals. The token stores them packed (zkml.packing's layout, packed=True).
    With `hashed`, `outputs` are the output tensors of the hashed segment (name, bits, size):
    mint() takes their packed words as calldata and has the hashed-output contract (the
    address given to the constructor) check them against the proof's digest.
    """
    from . import __version__
    if mode not in ("direct", "recorded"):
        raise InputError(f"consumer mode must be 'direct' or 'recorded', not {mode!r}")
    if not outputs:
        raise InputError("the consumer needs the output layout (build.json public_layout)")
    for what, s in (("contract name", contract_name),):
        if not evm._IDENT.fullmatch(s):
            raise InputError(f"{what} {s!r} is not a Solidity identifier")
    for what, s in (("token name", token_name), ("token symbol", token_symbol)):
        if not all(c.isalnum() or c in " -_." for c in s) or not 0 < len(s) <= 64:
            raise InputError(f"{what} {s!r}: letters, digits, spaces, '-', '_', '.' only")
    if hashed:
        outs = [dict(name=o["name"], bits=int(o["bits"]), size=int(o["size"])) for o in outputs]
    else:
        outs = evm._outputs_layout(outputs, sum(o["words"] for o in outputs))
        if sum(o["words"] for o in outs) > n_public:
            raise InputError("the output layout has more words than the verifier has public inputs")
    stored = stored_layout(outs)
    words = sum(s["words"] for s in stored)
    if words * 32 + 1 > evm.EIP170_LIMIT:
        raise InputError(f"the packed output ({words} words) does not fit one data contract "
                         f"({(evm.EIP170_LIMIT - 1) // 32} words at most)")
    pos = 0
    for o in ([] if hashed else outs):    # public signal of each output (no outputs among them when hashed)
        o["pos"], pos = pos, pos + o["words"]
    return _template(CONSUMER_TEMPLATE).render(
        contract_name=contract_name, token_name=token_name, token_symbol=token_symbol,
        name=evm._comment_text(name, "circuit name"), zkml_version=__version__, mode=mode,
        n_public=n_public, outputs=outs, stored=stored, stored_words=words, hashed=hashed)


def stored_layout(outputs: list[dict]) -> list[dict]:
    """How the consumer stores the outputs: packed (zkml.packing), word offsets added."""
    stored = packing.public_layout([dict(name=o["name"], bits=o["bits"], size=o["size"]) for o in outputs], True)
    w = 0
    for s in stored:
        s["word"], w = w, w + s["words"]
    return stored


# --------------------------------------------------------------------------- gas measurement
@dataclass(frozen=True)
class GasModel:
    per_input: int   # one public input of the MSM loop: range check, hash chain, ecMul, ecAdd
    pairing: int     # the 4-pair pairing precompile call
    chain: str       # where it was measured


def _pairing_input() -> bytes:
    """e(G1, G2) e(-G1, G2) e(G1, G2) e(-G1, G2) = 1, EIP-197 encoding (G2: x.c1, x.c0, y.c1, y.c0)."""
    from py_ecc.bn128 import G1, G2, neg
    g1 = lambda p: b"".join(int(c).to_bytes(32, "big") for c in p)  # noqa: E731
    g2 = b"".join(int(c).to_bytes(32, "big")
                  for c in (G2[0].coeffs[1], G2[0].coeffs[0], G2[1].coeffs[1], G2[1].coeffs[0]))
    return (g1(G1) + g2 + g1(neg(G1)) + g2) * 2


def measure_gas(w3, sender: str | None = None) -> GasModel:
    """Per-input MSM gas and pairing gas on this chain (eth_call of GasProbe's creation code)."""
    probe = evm.compile_solidity((toolchain.CONTRACTS_DIR / "GasProbe.sol").read_text(), "GasProbe")
    factory = w3.eth.contract(abi=probe.abi, bytecode=probe.bytecode)
    frm = evm._sender(w3, sender)
    pairs = _pairing_input()

    def run(mode: int, n: int) -> int:
        data = factory.constructor(mode, n, pairs).build_transaction({"from": frm, "gas": 5_000_000})["data"]
        try:
            out = w3.eth.call({"from": frm, "data": data, "gas": 5_000_000})
        except Exception as e:  # noqa: BLE001 - any node error: say which chain
            raise ZkmlError(f"the gas probe failed on {evm.chain_description(w3)}: {str(e)[:200]} "
                            "(does the chain have the BN254 precompiles 0x06-0x08?)") from None
        return int.from_bytes(bytes(out)[:32], "big")

    key = (w3.client_version, w3.eth.chain_id)
    if key not in _MEASURED:   # the same node software and chain price the precompiles the same
        _MEASURED[key] = (-(-(run(0, 6) - run(0, 2)) // 4), run(1, 0))
    per_input, pairing = _MEASURED[key]
    return GasModel(per_input, pairing, evm.chain_description(w3))


_MEASURED: dict[tuple, tuple[int, int]] = {}


# --------------------------------------------------------------------------- planning
@dataclass
class ContractPlan:
    name: str
    code_size: int
    gas: int          # planned gas limit of its deployment


@dataclass
class TxPlan:
    function: str     # verifyProof | verify | begin | step | finish
    start: int        # public inputs [start, end) this transaction adds
    end: int
    gas: int          # planned gas limit (an upper bound of its use)


@dataclass
class Plan:
    mode: str                      # "single" or "split"
    n_public: int
    budget: int
    gas_model: GasModel
    contracts: list[ContractPlan]
    transactions: list[TxPlan]
    points_per_key: int = 0
    compiled: dict = field(default_factory=dict, repr=False)   # name -> CompiledContract
    key_codes: list = field(default_factory=list, repr=False)
    sources: dict = field(default_factory=dict, repr=False)    # name -> Solidity source

    def to_json(self) -> dict:
        return dict(mode=self.mode, n_public=self.n_public, gas_budget=self.budget,
                    gas_model=asdict(self.gas_model), points_per_key=self.points_per_key,
                    contracts=[asdict(c) for c in self.contracts],
                    transactions=[asdict(t) for t in self.transactions])

    def describe(self) -> list[str]:
        g = self.gas_model
        lines = [f"plan: {self.mode} verifier for {self.n_public} public inputs, gas budget {self.budget:,} "
                 f"per transaction (measured: {g.per_input:,} gas per input, pairing {g.pairing:,})"]
        for c in self.contracts:
            lines.append(f"  deploy {c.name:<22} {c.code_size:>6,} bytes of code  <= {c.gas:>10,} gas")
        for t in self.transactions:
            span = f"inputs [{t.start}, {t.end})" if t.end > t.start else "no inputs"
            lines.append(f"  call   {t.function:<22} {span:<22} <= {t.gas:>10,} gas")
        return lines


def _deploy_gas(init_code_len: int, code_size: int, constructor: int = 30_000) -> int:
    """Upper bound of a creation transaction: base, calldata (all nonzero), initcode words,
    CREATE, code deposit (200/byte), constructor execution."""
    return 21_000 + 16 * init_code_len + 2 * (-(-init_code_len // 32)) + 32_000 + 200 * code_size + constructor


def _tx_gas(function: str, n: int, g: GasModel) -> int:
    pairing = g.pairing if function in ("verifyProof", "verify", "finish") else 0
    return OVERHEAD[function] + n * (g.per_input + CALLDATA_PER_INPUT) + pairing


def plan_verification(n_public: int, mode: str, g: GasModel, budget: int,
                      max_chunk: int | None = None) -> list[TxPlan]:
    """The transactions that check one proof, each within `budget` (ZkmlError if impossible).

    `max_chunk` caps the inputs per transaction and forces sessions (tests use it to exercise
    begin/step/finish on small circuits)."""
    if mode == "single":
        return [TxPlan("verifyProof", 0, n_public, _tx_gas("verifyProof", n_public, g))]
    if max_chunk is None and _tx_gas("verify", n_public, g) <= budget:
        return [TxPlan("verify", 0, n_public, _tx_gas("verify", n_public, g))]

    def cap(f: str) -> int:
        k = (budget - _tx_gas(f, 0, g)) // (g.per_input + CALLDATA_PER_INPUT)
        return k if max_chunk is None else min(k, max_chunk)
    if min(cap("begin"), cap("step"), cap("finish")) < 0 or max(cap("begin"), cap("step")) < 1:
        raise ZkmlError(f"a gas budget of {budget:,} per transaction cannot hold the pairing check "
                        f"({g.pairing:,} gas) and the session overhead; raise --gas-budget")
    txs, start = [], 0
    k = min(n_public, cap("begin"))
    txs.append(TxPlan("begin", 0, k, _tx_gas("begin", k, g)))
    start = k
    while n_public - start > cap("finish"):
        k = min(n_public - start, cap("step"))
        txs.append(TxPlan("step", start, start + k, _tx_gas("step", k, g)))
        start += k
    txs.append(TxPlan("finish", start, n_public, _tx_gas("finish", n_public - start, g)))
    return txs


def plan(vk: dict, g: GasModel, *, name: str = "circuit", setup_note: str = evm.DEV_SETUP_NOTE,
         budget: int = DEFAULT_GAS_BUDGET, outputs: list[dict] | None = None, force_split: bool = False,
         points_per_key: int = MAX_POINTS_PER_KEY, max_chunk: int | None = None,
         log: evm.Log = lambda s: None) -> Plan:
    """Render and compile the contracts for `vk` and plan their deployment and one verification."""
    if not isinstance(budget, int) or budget < 300_000:
        raise InputError(f"gas budget {budget!r} is too small (a verification needs ~300,000 gas at least)")
    if budget > EIP7825_CAP:
        log(f"WARNING: gas budget {budget:,} exceeds the EIP-7825 cap of {EIP7825_CAP:,} gas per transaction; "
            "chains with Osaka rules refuse such transactions")
    n_public = len(evm._vk_values(vk)["ic"]) - 1
    if not force_split and max_chunk is None and n_public <= SINGLE_MAX_INPUTS:
        source = evm.render_verifier(vk, name, setup_note, outputs=outputs)
        log(f"compiling the one-contract verifier with solc ({n_public} public inputs) ...")
        single = evm.compile_solidity(source)
        verify_gas = _tx_gas("verifyProof", n_public, g)
        if single.code_size <= evm.EIP170_LIMIT and verify_gas <= budget:
            c = ContractPlan(single.name, single.code_size, _deploy_gas(len(single.bytecode) // 2, single.code_size))
            return Plan("single", n_public, budget, g, [c], plan_verification(n_public, "single", g, budget),
                        compiled={single.name: single}, sources={single.name: source})
        log(f"the one-contract verifier needs {single.code_size:,} bytes of code and ~{verify_gas:,} gas: splitting")
    source, codes = render_split_verifier(vk, name, setup_note, points_per_key=points_per_key, outputs=outputs)
    log(f"compiling the split verifier with solc ({len(codes)} key contracts) ...")
    split = evm.compile_solidity(source, "Groth16SplitVerifier")
    contracts = [ContractPlan(f"VerifierKey{k}", len(c), _deploy_gas(len(SSTORE2_INIT) + len(c), len(c), 5_000))
                 for k, c in enumerate(codes)]
    contracts.append(ContractPlan(split.name, split.code_size,
                                  _deploy_gas(len(split.bytecode) // 2 + 32 * len(codes), split.code_size,
                                              30_000 + 5_000 * len(codes))))
    for c in contracts:
        if c.code_size > evm.EIP170_LIMIT:
            raise BuildError(f"{c.name} would have {c.code_size} bytes of code, over EIP-170: this is a zkml bug")
        if c.gas > budget:
            raise ZkmlError(f"deploying {c.name} needs up to {c.gas:,} gas, over the budget of {budget:,}; "
                            "raise --gas-budget")
    return Plan("split", n_public, budget, g, contracts, plan_verification(n_public, "split", g, budget, max_chunk),
                points_per_key=points_per_key, compiled={split.name: split}, key_codes=codes,
                sources={split.name: source})


# --------------------------------------------------------------------------- sending
@dataclass
class TxRecord:
    what: str
    gas_used: int
    gas_limit: int
    tx_hash: str
    address: str | None = None
    code_size: int | None = None


def error_name(abi: list, exc: BaseException) -> str:
    """The custom error a revert carries, as 'Name(args)' when it is one of the ABI's errors."""
    from eth_utils import function_abi_to_4byte_selector
    data = getattr(exc, "data", None)
    if isinstance(data, dict):
        data = data.get("data")
    msg = str(exc)
    if data is None and "execution reverted: b" in msg:   # eth-tester's TransactionFailed on a raw send
        import ast
        try:
            data = "0x" + ast.literal_eval(msg[msg.index("execution reverted: b") + 20:]).hex()
        except (ValueError, SyntaxError):
            data = None
    if isinstance(data, str) and data.startswith("0x") and len(data) >= 10:
        sel = bytes.fromhex(data[2:10])
        for e in abi:
            if e.get("type") == "error" and function_abi_to_4byte_selector(dict(e, type="function")) == sel:
                from eth_abi import decode
                try:
                    args = decode([i["type"] for i in e["inputs"]], bytes.fromhex(data[10:]))
                except Exception:  # noqa: BLE001 - a truncated payload: the name is enough
                    args = ()
                fmt = lambda v: "0x" + v.hex() if isinstance(v, bytes) else str(v)  # noqa: E731
                return f"{e['name']}({', '.join(fmt(a) for a in args)})"
    return str(exc)[:300]


class Reverted(ZkmlError):
    """A verification transaction reverted (the message names the contract's error)."""


def _send(w3, what: str, gas: int, *, fn=None, data: bytes | None = None, sender: str | None = None,
          abi: list | None = None) -> tuple[TxRecord, Any]:
    """Send a contract call (fn) or a creation (data) with an explicit gas limit; wait for it."""
    from eth_tester.exceptions import TransactionFailed
    from web3.exceptions import Web3Exception
    tx: dict = {"from": evm._sender(w3, sender), "gas": gas}
    try:
        if fn is not None:
            h = fn.transact(tx)
        else:
            h = w3.eth.send_transaction(dict(tx, data="0x" + data.hex()))
        rc = w3.eth.wait_for_transaction_receipt(h, timeout=300)
    except (Web3Exception, ValueError, TransactionFailed) as e:
        raise Reverted(f"{what}: {error_name(abi or [], e)}") from None
    if rc["status"] != 1:
        reason = ""
        try:   # replay as a call on the previous state for the revert reason
            if fn is not None:
                fn.call({"from": tx["from"], "gas": gas}, block_identifier=rc["blockNumber"] - 1)
            else:
                w3.eth.call(dict(tx, data="0x" + data.hex()), block_identifier=rc["blockNumber"] - 1)
        except (Web3Exception, ValueError, TransactionFailed) as e:
            reason = ": " + error_name(abi or [], e)
        raise Reverted(f"{what}: transaction {h.hex()} reverted (gas used {rc['gasUsed']:,}){reason}")
    addr = rc.get("contractAddress")
    rec = TxRecord(what, rc["gasUsed"], gas, h.hex(), addr, len(w3.eth.get_code(addr)) if addr else None)
    return rec, rc


@dataclass
class Deployed:
    mode: str
    verifier: str            # address
    abi: list
    contracts: list[dict]    # {name, address, code_size, deploy_gas, abi?}
    records: list[TxRecord]


def deploy_plan(w3, p: Plan, *, sender: str | None = None, log: evm.Log = lambda s: None) -> Deployed:
    """Deploy the planned contracts (key contracts first), each with its planned gas limit."""
    records, contracts = [], []
    keys = []
    for k, code in enumerate(p.key_codes):
        c = p.contracts[k]
        rec, _ = _send(w3, f"deploy {c.name}", c.gas, data=SSTORE2_INIT + code, sender=sender)
        if rec.code_size != len(code):
            raise ZkmlError(f"{c.name} was deployed with {rec.code_size} bytes of code, {len(code)} expected")
        log(f"  {c.name} at {rec.address}: {rec.code_size:,} bytes, gas {rec.gas_used:,}")
        records.append(rec)
        keys.append(rec.address)
        contracts.append(dict(name=c.name, address=rec.address, code_size=rec.code_size, deploy_gas=rec.gas_used))
    compiled = next(iter(p.compiled.values()))
    c = p.contracts[-1]
    factory = w3.eth.contract(abi=compiled.abi, bytecode=compiled.bytecode)
    fn = factory.constructor(keys) if p.mode == "split" else factory.constructor()
    data = bytes.fromhex(fn.build_transaction({"from": evm._sender(w3, sender), "gas": c.gas})["data"][2:])
    rec, _ = _send(w3, f"deploy {c.name}", c.gas, data=data, sender=sender, abi=compiled.abi)
    log(f"  {c.name} at {rec.address}: {rec.code_size:,} bytes, gas {rec.gas_used:,}")
    records.append(rec)
    contracts.append(dict(name=c.name, address=rec.address, code_size=rec.code_size, deploy_gas=rec.gas_used,
                          abi=compiled.abi))
    return Deployed(p.mode, rec.address, compiled.abi, contracts, records)


def inputs_hash(public: list[int]) -> bytes:
    """The split verifier's publicInputsHash: h0 = 0, h = keccak256(h || x) per input."""
    from eth_utils import keccak
    h = bytes(32)
    for x in public:
        h = keccak(h + int(x).to_bytes(32, "big"))
    return h


@dataclass
class VerifyRun:
    valid: bool
    records: list[TxRecord]
    reason: str = ""

    @property
    def gas(self) -> int:
        return sum(r.gas_used for r in self.records)


def run_verification(w3, dep: Deployed, txs: list[TxPlan], proof: dict, public: list, *,
                     sender: str | None = None, log: evm.Log = lambda s: None) -> VerifyRun:
    """Send the planned verification transactions; valid iff the verifier accepted the proof.

    A revert (an input >= r, a malformed proof, ...) is a rejection: valid False with the reason.
    """
    a, b, c, pub = evm.proof_to_calldata(proof, public)
    n = txs[-1].end
    if len(pub) != n:
        raise InputError(f"{len(pub)} public inputs given, the verifier takes {n}")
    contract = w3.eth.contract(address=dep.verifier, abi=dep.abi)
    f = contract.functions
    records: list[TxRecord] = []
    h = inputs_hash([v % (1 << 256) for v in pub])
    session = None
    try:
        for t in txs:
            chunk = pub[t.start:t.end]
            what = f"{t.function} [{t.start}, {t.end})"
            if t.function == "verifyProof":
                ok = bool(f.verifyProof(a, b, c, pub).call({"from": evm._sender(w3, sender), "gas": t.gas}))
                rec, _ = _send(w3, what, t.gas, fn=f.verifyProof(a, b, c, pub), sender=sender, abi=dep.abi)
                records.append(rec)
                log(f"  {what}: {str(ok).lower()}, gas {rec.gas_used:,}")
                return VerifyRun(ok, records, "" if ok else "verifyProof returned false")
            if t.function == "verify":
                rec, rc = _send(w3, what, t.gas, fn=f.verify(a, b, c, pub), sender=sender, abi=dep.abi)
            elif t.function == "begin":
                rec, rc = _send(w3, what, t.gas, fn=f.begin(a, b, c, h, chunk), sender=sender, abi=dep.abi)
                session = contract.events.SessionStarted().process_receipt(rc, errors=DISCARD)[0]["args"]["session"]
            elif t.function == "step":
                rec, rc = _send(w3, what, t.gas, fn=f.step(session, t.start, chunk), sender=sender, abi=dep.abi)
            else:
                rec, rc = _send(w3, what, t.gas, fn=f.finish(a, b, c, h, t.start, chunk), sender=sender,
                                abi=dep.abi)
            records.append(rec)
            log(f"  {what}: gas {rec.gas_used:,} (limit {rec.gas_limit:,})")
    except Reverted as e:
        log(f"  rejected: {e}")
        return VerifyRun(False, records, str(e))
    ok = bool(contract.events.ProofVerified().process_receipt(rc, errors=DISCARD))
    return VerifyRun(ok, records, "" if ok else "the pairing check failed (ProofRejected)")


# --------------------------------------------------------------------------- consumer
@dataclass
class Minted:
    address: str
    abi: list
    token_id: int
    deploy_gas: int
    mint_gas: int
    outputs: list[int]       # read back from the chain and unpacked
    source: str = ""


def deploy_consumer(w3, dep: Deployed, n_public: int, outputs: list[dict], *, name: str = "circuit",
                    budget: int = DEFAULT_GAS_BUDGET, sender: str | None = None,
                    hashed_outputs: str | None = None) -> tuple[str, list, str, TxRecord]:
    """Render, compile and deploy the ERC-721 consumer for a deployed verifier (with
    `hashed_outputs`, the address of the hashed-output contract: the NFT of a hashed build,
    `outputs` then being the hashed segment's tensors)."""
    mode = "direct" if dep.mode == "single" else "recorded"
    source = render_consumer(n_public, outputs, mode, name, hashed=hashed_outputs is not None)
    compiled = evm.compile_solidity(source, "ZkmlOutputNFT")
    if compiled.code_size > evm.EIP170_LIMIT:
        raise BuildError(f"the consumer has {compiled.code_size} bytes of code, over EIP-170")
    factory = w3.eth.contract(abi=compiled.abi, bytecode=compiled.bytecode)
    data = bytes.fromhex(factory.constructor(hashed_outputs or dep.verifier).build_transaction(
        {"from": evm._sender(w3, sender), "gas": budget})["data"][2:])
    gas = min(budget, _deploy_gas(len(data), compiled.code_size))
    rec, _ = _send(w3, "deploy ZkmlOutputNFT", gas, data=data, sender=sender, abi=compiled.abi)
    return rec.address, compiled.abi, source, rec


def mint(w3, nft: str, nft_abi: list, dep: Deployed, proof: dict, public: list, to: str | None = None, *,
         budget: int = DEFAULT_GAS_BUDGET, sender: str | None = None,
         words: list[int] | None = None) -> tuple[int, TxRecord]:
    """Mint the token for `public` (the proof must verify / have been verified); (token id, record).
    `words`: the packed outputs, for the NFT of a hashed build (checked against the digest)."""
    a, b, c, pub = evm.proof_to_calldata(proof, public)
    contract = w3.eth.contract(address=nft, abi=nft_abi)
    to = to or evm._sender(w3, sender)
    extra = [] if words is None else [[int(w) for w in words]]
    fn = contract.functions.mint(to, a, b, c, pub, *extra) if dep.mode == "single" \
        else contract.functions.mint(to, pub, *extra)
    rec, rc = _send(w3, "mint", budget, fn=fn, sender=sender, abi=nft_abi)
    return int(contract.events.Minted().process_receipt(rc, errors=DISCARD)[0]["args"]["tokenId"]), rec


def read_token_outputs(w3, nft: str, nft_abi: list, token_id: int, outputs: list[dict]) -> list[list[int]]:
    """The outputs stored with a token, unpacked (one list per output tensor)."""
    words = w3.eth.contract(address=nft, abi=nft_abi).functions.outputWords(token_id).call()
    return packing.from_public(stored_layout(outputs), [int(w) for w in words])


# --------------------------------------------------------------------------- all in one
def deploy_and_verify(vk: dict, proof: dict, public: list, *, name: str, setup_note: str, w3,
                      sender: str | None = None, log: evm.Log = lambda s: None, outputs: list[dict] | None = None,
                      gas_budget: int = DEFAULT_GAS_BUDGET, force_split: bool = False,
                      points_per_key: int = MAX_POINTS_PER_KEY, max_chunk: int | None = None,
                      consumer: bool = False) -> evm.DeployResult:
    """Measure, plan, deploy, verify (and optionally mint through the consumer) on `w3`."""
    chain = evm.chain_description(w3)
    log(f"measuring precompile gas on {chain} (eth_call, nothing deployed) ...")
    g = measure_gas(w3, sender)
    p = plan(vk, g, name=name, setup_note=setup_note, budget=gas_budget, outputs=outputs,
             force_split=force_split, points_per_key=points_per_key, max_chunk=max_chunk, log=log)
    for line in p.describe():
        log(line)
    if len(evm.proof_to_calldata(proof, public)[3]) != p.n_public:   # refuse before spending gas
        raise InputError(f"{len(public)} public inputs given, the verification key has {p.n_public}")
    log(f"deploying to {chain} ...")
    dep = deploy_plan(w3, p, sender=sender, log=log)
    log("verifying on-chain ...")
    t0 = time.perf_counter()
    run = run_verification(w3, dep, p.transactions, proof, public, sender=sender, log=log)
    seconds = time.perf_counter() - t0
    decoded = None
    pub = [evm._uint(v, "public input") for v in public]
    if run.valid and outputs:
        decoded = [int(v) for v in w3.eth.contract(address=dep.verifier, abi=dep.abi)
                   .functions.unpackOutputs(pub).call()]
    res = evm.DeployResult(
        chain, dep.verifier, dep.contracts[-1]["code_size"], sum(r.gas_used for r in dep.records), run.valid,
        run.gas, round(seconds, 3), p.n_public, dep.abi, p.sources[next(iter(p.sources))], decoded,
        mode=p.mode, gas_budget=gas_budget, plan=p.to_json(), contracts=dep.contracts,
        transactions=[asdict(r) for r in dep.records + run.records], reason=run.reason)
    if consumer and run.valid:
        if not outputs:
            raise BuildError("minting needs the output layout (build.json public_layout)")
        addr, abi, src, rec = deploy_consumer(w3, dep, p.n_public, outputs, name=name, budget=gas_budget,
                                              sender=sender)
        log(f"  ZkmlOutputNFT at {addr}: {rec.code_size:,} bytes, gas {rec.gas_used:,}")
        token, mrec = mint(w3, addr, abi, dep, proof, public, budget=gas_budget, sender=sender)
        back = [v for o in read_token_outputs(w3, addr, abi, token, outputs) for v in o]
        log(f"  minted token {token}: gas {mrec.gas_used:,}; {len(back)} output values read back from the chain")
        res.consumer = dict(address=addr, abi=abi, token_id=token, deploy_gas=rec.gas_used,
                            mint_gas=mrec.gas_used, outputs=back)
        res.consumer_source = src
        res.transactions += [asdict(rec), asdict(mrec)]
    return res


__all__ = [
    "DEFAULT_GAS_BUDGET", "EIP7825_CAP", "MAX_POINTS_PER_KEY", "GasModel", "Plan", "TxPlan", "ContractPlan",
    "TxRecord", "Deployed", "VerifyRun", "Reverted", "key_contract_codes", "render_split_verifier",
    "render_consumer", "stored_layout", "measure_gas", "plan", "plan_verification", "deploy_plan",
    "inputs_hash", "run_verification", "deploy_consumer", "mint", "read_token_outputs", "error_name",
    "deploy_and_verify",
]
