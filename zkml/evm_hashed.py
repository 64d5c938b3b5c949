"""Hashed outputs on-chain: the claimed outputs travel as calldata, and a contract recomputes their
Poseidon commitment and compares it with the proof's public digest before the proof counts.

With `zkml compile --output hashed` the circuit publishes one digest of the outputs instead of
the outputs (docs/PRIVACY.md: the values packed as for public outputs, then a chain of
circomlib Poseidon(16) calls starting from the word count, 15 words per call). On-chain:

- contracts/ZkmlPoseidon.sol.j2 renders circomlib's Poseidon(t - 1) for the EVM, constants read
  from circomlib's own poseidon_constants.circom (through zkml.poseidon, which the circuit tests
  check bit for bit against circom). circomlibjs' poseidon_gencontract generates EVM code only
  up to 8 inputs (it keeps the whole state on the EVM stack, which reaches 16 items), so for
  Poseidon(16) the state lives in memory; the constants (3,026 words for t = 17) are too many
  for one contract's code and live in "table contracts" (SSTORE2: code = 0x00 || words) whose
  code hashes the Poseidon contract checks in its constructor.
- contracts/ZkmlHashedOutputs.sol.j2 is the consumer: `verifyWithOutputs(A, B, C, pub, words)`
  checks the word count and that every word is a valid packing (below 2^(lanes x bits)), that
  commitWords(words) equals the output digest among the public signals, and then the proof (the
  one-contract verifier's verifyProof, or the split verifier's isVerified record).

tests/test_onchain_hashed.py checks the on-chain digest against zkml.poseidon and circomlibjs,
and wrong outputs against a true proof; benchmarks/gas_hashed.py measures the gas.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from . import evm, evm_split, packing, poseidon
from .errors import BuildError, InputError, ZkmlError

POSEIDON_TEMPLATE = "ZkmlPoseidon.sol.j2"
CONSUMER_TEMPLATE = "ZkmlHashedOutputs.sol.j2"
TABLE_WORDS_PER_CONTRACT = (evm.EIP170_LIMIT - 1) // 32     # 767 (one leading 0x00 byte)
CHAIN_T = poseidon.CHAIN_ARITY + 1                          # 17: Poseidon(16)


# --------------------------------------------------------------------------- Poseidon contract
def table_words(t: int) -> list[int]:
    """circomlib's constants for width t, in the contract's order: C, S, M (row-major), P."""
    C, S, M, P = poseidon.constants(t)
    return list(C) + list(S) + [v for row in M for v in row] + [v for row in P for v in row]


def table_codes(t: int) -> list[bytes]:
    """Runtime code of the table contracts: 0x00 || 32-byte big-endian words, <= 767 words each."""
    words = table_words(t)
    k = TABLE_WORDS_PER_CONTRACT
    return [b"\x00" + b"".join(w.to_bytes(32, "big") for w in words[i:i + k]) for i in range(0, len(words), k)]


def render_poseidon(t: int = CHAIN_T, contract_name: str | None = None) -> tuple[str, list[bytes]]:
    """(Solidity source of the Poseidon(t - 1) contract, runtime codes of its table contracts).
    For t = 17 the contract also has commitWords, zkml's commitment chain."""
    from eth_utils import keccak
    from . import __version__
    if not 2 <= t <= 17:
        raise InputError(f"circomlib's Poseidon has widths 2..17, not {t}")
    C, S, _, _ = poseidon.constants(t)
    codes = table_codes(t)
    tables, off = [], 0
    for c in codes:
        n = (len(c) - 1) // 32
        tables.append(dict(hash="0x" + keccak(c).hex(), offset=off, words=n))
        off += n
    name = contract_name or f"ZkmlPoseidonT{t}"
    if not evm._IDENT.fullmatch(name):
        raise InputError(f"contract name {name!r} is not a Solidity identifier")
    src = evm_split._template(POSEIDON_TEMPLATE).render(
        contract_name=name, zkml_version=__version__, t=t, n_rounds_f=poseidon.N_ROUNDS_F,
        n_rounds_p=poseidon.N_ROUNDS_P[t - 2], n_c=len(C), n_s=len(S), tables=tables, table_words=off,
        chain_words=poseidon.CHAIN_WORDS if t == CHAIN_T else 0)
    return src, codes


@dataclass
class PoseidonDeployment:
    address: str
    abi: list
    tables: list[str]
    records: list          # evm_split.TxRecord of every deployment (none when reused)
    source: str = ""
    reused: bool = False   # attached to an existing deployment (attach_poseidon, --poseidon)

    @property
    def deploy_gas(self) -> int:
        return sum(r.gas_used for r in self.records)


def deploy_poseidon(w3, t: int = CHAIN_T, *, sender: str | None = None, budget: int = evm_split.DEFAULT_GAS_BUDGET,
                    log: evm.Log = lambda s: None) -> PoseidonDeployment:
    """Deploy the table contracts and the Poseidon(t - 1) contract, each within `budget` gas."""
    source, codes = render_poseidon(t)
    name = f"ZkmlPoseidonT{t}"
    compiled = evm.compile_solidity(source, name)
    records, tables = [], []
    for k, code in enumerate(codes):
        gas = min(budget, evm_split._deploy_gas(len(evm_split.SSTORE2_INIT) + len(code), len(code), 5_000))
        rec, _ = evm_split._send(w3, f"deploy PoseidonTable{k}", gas, data=evm_split.SSTORE2_INIT + code,
                                 sender=sender)
        if rec.code_size != len(code):
            raise ZkmlError(f"PoseidonTable{k} was deployed with {rec.code_size} bytes of code, {len(code)} expected")
        log(f"  PoseidonTable{k} at {rec.address}: {rec.code_size:,} bytes, gas {rec.gas_used:,}")
        records.append(rec)
        tables.append(rec.address)
    factory = w3.eth.contract(abi=compiled.abi, bytecode=compiled.bytecode)
    data = bytes.fromhex(factory.constructor(tables).build_transaction(
        {"from": evm._sender(w3, sender), "gas": budget})["data"][2:])
    gas = min(budget, evm_split._deploy_gas(len(data), compiled.code_size, 30_000 + 5_000 * len(codes)))
    rec, _ = evm_split._send(w3, f"deploy {name}", gas, data=data, sender=sender, abi=compiled.abi)
    log(f"  {name} at {rec.address}: {rec.code_size:,} bytes, gas {rec.gas_used:,}")
    records.append(rec)
    return PoseidonDeployment(rec.address, compiled.abi, tables, records, source)


def attach_poseidon(w3, address: str, t: int = CHAIN_T, *, log: evm.Log = lambda s: None) -> PoseidonDeployment:
    """The Poseidon(t - 1) contract an earlier `zkml deploy` left at `address` (`--poseidon`),
    after checking that it is exactly the one zkml would deploy: its runtime code equals the
    compiled contract's outside the immutable table addresses, each of those holds the table
    contract zkml renders (code hash), and commitWords of a test vector equals zkml.poseidon's.
    InputError otherwise, before any gas is spent. A contract that passes computes circomlib's
    Poseidon on every input (its code and its constants are zkml's), so reusing it is as safe as
    deploying it again."""
    from eth_utils import keccak, to_checksum_address
    try:
        address = to_checksum_address(address)
    except (ValueError, TypeError):
        raise InputError(f"--poseidon {address!r} is not an address (0x and 40 hex digits)") from None
    source, codes = render_poseidon(t)
    compiled = evm.compile_solidity(source, f"ZkmlPoseidonT{t}")
    code = bytes(w3.eth.get_code(address))
    if not code:
        raise InputError(f"--poseidon {address}: no contract at that address on this chain (deploy once without "
                         "--poseidon; `zkml deploy` prints the ZkmlPoseidonT17 address)")
    want = bytearray.fromhex(compiled.deployed_bytecode[2:])
    got = bytearray(code)
    tables = []
    if len(got) == len(want):
        for refs in compiled.immutables:
            (start, length), values = refs[0], {bytes(got[a:a + n]) for a, n in refs}
            tables.append(to_checksum_address(bytes(got[start + length - 20:start + length])) if len(values) == 1
                          else None)
            for a, n in refs:
                got[a:a + n] = want[a:a + n]
    if got != want or len(tables) != len(codes) or None in tables:
        raise InputError(f"--poseidon {address}: the contract there is not zkml's Poseidon({t - 1}) "
                         f"(its {len(code):,}-byte code differs from the {len(want):,} bytes zkml deploys)")
    for k, (table, expected) in enumerate(zip(tables, codes)):
        if keccak(bytes(w3.eth.get_code(table))) != keccak(expected):
            raise InputError(f"--poseidon {address}: its table contract {k} at {table} does not hold circomlib's "
                             "Poseidon constants")
    dep = PoseidonDeployment(address, compiled.abi, tables, [], source, reused=True)
    if t == CHAIN_T:
        probe = [1, 2, 3, poseidon.P - 1]
        if commit_words_on_chain(w3, dep, probe) != poseidon.commit_words(probe):
            raise InputError(f"--poseidon {address}: commitWords disagrees with circomlib's Poseidon")
    log(f"  ZkmlPoseidonT{t} at {address}: reused ({len(code):,} bytes; code and {len(tables)} table contracts checked)")
    return dep


def commit_words_on_chain(w3, dep: PoseidonDeployment, words: list[int], gas: int = 15_000_000) -> int:
    """commitWords(words) by eth_call (the chain's digest of the words)."""
    fn = w3.eth.contract(address=dep.address, abi=dep.abi).functions.commitWords([int(w) for w in words])
    return int(fn.call({"from": evm._sender(w3, None), "gas": gas}))


# --------------------------------------------------------------------------- consumer
def output_segment(segments: list[dict]) -> tuple[dict, int]:
    """(the hashed output segment of build.json public_segments, index of its digest signal)."""
    pos = 0
    for s in segments:
        if s["kind"] == "output":
            if s["mode"] != "hashed":
                raise InputError(f"the outputs are {s['mode']}, not hashed: nothing to check against a digest")
            return s, pos
        pos += s["words"]
    raise InputError("the public layout has no output segment")


def words_layout(tensors: list[dict]) -> list[dict]:
    """The packed words of the output tensors: first word and the bits of full / last words."""
    out, first = [], 0
    for t in tensors:
        bits, size = int(t["bits"]), int(t["size"])
        lanes, words = packing.lanes_per_word(bits), packing.n_words(size, bits)
        out.append(dict(name=evm._comment_text(str(t["name"]), "output name"), bits=bits, size=size,
                        lanes=lanes, words=words, first=first, full_bits=lanes * bits,
                        last_bits=(size - (words - 1) * lanes) * bits))
        first += words
    return out


def output_words(tensors: list[dict], values: list[int]) -> list[int]:
    """The packed words of output values (all tensors concatenated), as the circuit packs them."""
    words, pos = [], 0
    for t in tensors:
        n = int(t["size"])
        part = [int(v) for v in values[pos:pos + n]]
        if len(part) != n or any(not 0 <= v < (1 << int(t["bits"])) for v in part):
            raise InputError(f"the claimed outputs must be {sum(int(x['size']) for x in tensors)} integers "
                             "within the outputs' bits")
        words += packing.pack(part, int(t["bits"]))
        pos += n
    if pos != len(values):
        raise InputError(f"{len(values)} output values given, the outputs have {pos}")
    return words


def render_consumer(segments: list[dict], n_public: int, mode: str, name: str = "circuit", *,
                    contract_name: str = "ZkmlHashedOutputs") -> str:
    """Solidity source of the hashed-output consumer for a verifier of `mode` ("direct" or "recorded")."""
    from . import __version__
    if mode not in ("direct", "recorded"):
        raise InputError(f"consumer mode must be 'direct' or 'recorded', not {mode!r}")
    if not evm._IDENT.fullmatch(contract_name):
        raise InputError(f"contract name {contract_name!r} is not a Solidity identifier")
    seg, digest_index = output_segment(segments)
    if digest_index >= n_public:
        raise InputError("the output digest is not among the verifier's public inputs")
    tensors = words_layout(seg["tensors"])
    return evm_split._template(CONSUMER_TEMPLATE).render(
        contract_name=contract_name, name=evm._comment_text(name, "circuit name"), zkml_version=__version__,
        mode=mode, n_public=n_public, digest_index=digest_index, tensors=tensors,
        out_words=sum(t["words"] for t in tensors), out_values=sum(t["size"] for t in tensors))


@dataclass
class HashedRun:
    """The on-chain check of claimed outputs against a proof's output digest."""
    valid: bool
    outputs: list[int]          # the claimed values (as unpackOutputs decodes them on-chain when valid)
    words: list[int]
    digest: int                 # the chain's commitWords(words)
    gas: int | None             # verifyWithOutputs sent as a transaction (base and calldata included)
    reason: str = ""
    consumer: str = ""          # address
    poseidon: str = ""
    contracts: list = None      # {name, address, code_size, deploy_gas}
    transactions: list = None   # the deployments
    tx: dict | None = None      # the verifyWithOutputs transaction
    source: str = ""            # the consumer's Solidity (not in to_json)

    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("source")
        return d


@dataclass
class HashedConsumer:
    address: str
    abi: list
    mode: str
    source: str
    record: object


def deploy_consumer(w3, verifier: str, verifier_mode: str, pos: PoseidonDeployment, segments: list[dict],
                    n_public: int, *, name: str = "circuit", budget: int = evm_split.DEFAULT_GAS_BUDGET,
                    sender: str | None = None) -> HashedConsumer:
    """Render, compile and deploy the hashed-output consumer for a deployed verifier
    (`verifier_mode` "single": the one-contract verifier; "split": the split verifier)."""
    mode = "direct" if verifier_mode == "single" else "recorded"
    source = render_consumer(segments, n_public, mode, name)
    compiled = evm.compile_solidity(source, "ZkmlHashedOutputs")
    if compiled.code_size > evm.EIP170_LIMIT:
        raise BuildError(f"the hashed-output consumer has {compiled.code_size} bytes of code, over EIP-170")
    factory = w3.eth.contract(abi=compiled.abi, bytecode=compiled.bytecode)
    data = bytes.fromhex(factory.constructor(verifier, pos.address).build_transaction(
        {"from": evm._sender(w3, sender), "gas": budget})["data"][2:])
    gas = min(budget, evm_split._deploy_gas(len(data), compiled.code_size))
    rec, _ = evm_split._send(w3, "deploy ZkmlHashedOutputs", gas, data=data, sender=sender, abi=compiled.abi)
    return HashedConsumer(rec.address, compiled.abi, mode, source, rec)


def verify_with_outputs(w3, consumer: HashedConsumer, proof: dict, public: list, words: list[int], *,
                        gas: int = evm_split.DEFAULT_GAS_BUDGET, send_tx: bool = True,
                        sender: str | None = None) -> tuple[bool, evm_split.TxRecord | None, str]:
    """verifyWithOutputs by eth_call -> (accepted, the same call sent as a transaction, reason).

    A revert (a wrong word count, a word that is no valid packing or not below r) is a rejection
    with the contract's error as the reason."""
    from eth_tester.exceptions import TransactionFailed
    from web3.exceptions import Web3Exception
    a, b, c, pub = evm.proof_to_calldata(proof, public)
    f = w3.eth.contract(address=consumer.address, abi=consumer.abi).functions
    ws = [int(w) for w in words]
    try:
        fn = f.verifyWithOutputs(a, b, c, pub, ws) if consumer.mode == "direct" else f.verifyWithOutputs(pub, ws)
    except (Web3Exception, TypeError, ValueError) as e:
        raise InputError(f"verifyWithOutputs arguments do not fit the contract ABI: {e}") from None
    frm = evm._sender(w3, sender)
    try:
        ok = bool(fn.call({"from": frm, "gas": gas}))
    except (Web3Exception, ValueError, TransactionFailed) as e:
        return False, None, evm_split.error_name(consumer.abi, e)
    rec = None
    if send_tx:
        rec, _ = evm_split._send(w3, "verifyWithOutputs", gas, fn=fn, sender=sender, abi=consumer.abi)
    return ok, rec, "" if ok else "verifyWithOutputs returned false (digest or proof mismatch)"


def check_outputs(w3, verifier: str, verifier_mode: str, segments: list[dict], proof: dict, public: list, outputs: list[int], *,
                  name: str = "circuit", budget: int = evm_split.DEFAULT_GAS_BUDGET, sender: str | None = None,
                  poseidon_dep: PoseidonDeployment | None = None, log: evm.Log = lambda s: None) -> HashedRun:
    """Deploy the Poseidon(16) contract (or reuse `poseidon_dep`, from attach_poseidon) and the
    consumer next to a deployed verifier, then check the claimed `outputs` (integers, all output
    tensors in order) against the proof on-chain."""
    seg, _ = output_segment(segments)
    words = output_words(seg["tensors"], outputs)
    if poseidon_dep:
        log(f"hashed outputs: reusing Poseidon(16) at {poseidon_dep.address} (checked), deploying the consumer ...")
        pos = poseidon_dep
    else:
        log(f"hashed outputs: deploying Poseidon(16) ({len(table_codes(CHAIN_T))} table contracts) and the consumer "
            "... (reuse it next time with --poseidon ADDRESS)")
        pos = deploy_poseidon(w3, sender=sender, budget=budget, log=log)
    n_public = len(evm.proof_to_calldata(proof, public)[3])
    cons = deploy_consumer(w3, verifier, verifier_mode, pos, segments, n_public, name=name, budget=budget,
                           sender=sender)
    log(f"  ZkmlHashedOutputs at {cons.address}: {cons.record.code_size:,} bytes, gas {cons.record.gas_used:,}")
    c = w3.eth.contract(address=cons.address, abi=cons.abi)
    digest = int(c.functions.outputsDigest(words).call({"from": evm._sender(w3, sender), "gas": budget}))
    ok, tx, reason = verify_with_outputs(w3, cons, proof, public, words, gas=budget, sender=sender)
    gas = tx.gas_used if tx else None
    back = [int(v) for v in c.functions.unpackOutputs(words).call()] if ok else []
    log(f"  verifyWithOutputs ({len(words)} words, {len(outputs)} values): {str(ok).lower()}"
        + (f", gas {gas:,}" if gas is not None else "") + (f" ({reason})" if reason else ""))
    recs = pos.records + [cons.record]
    contracts = [dict(name=r.what.removeprefix("deploy "), address=r.address, code_size=r.code_size,
                      deploy_gas=r.gas_used) for r in recs]
    if pos.reused:
        contracts.insert(0, dict(name=f"ZkmlPoseidonT{CHAIN_T} (reused)", address=pos.address,
                                 code_size=len(w3.eth.get_code(pos.address)), deploy_gas=0))
    return HashedRun(ok, back, words, digest, gas, reason, cons.address, pos.address, contracts,
                     [asdict(r) for r in recs], asdict(tx) if tx else None, cons.source)


def mint_hashed(w3, verifier: str, verifier_mode: str, consumer: str, segments: list[dict], proof: dict,
                public: list, words: list[int], *, name: str = "circuit", budget: int = evm_split.DEFAULT_GAS_BUDGET,
                sender: str | None = None, log: evm.Log = lambda s: None) -> tuple[dict, str, list]:
    """`zkml deploy --mint` for a hashed build: deploy the ERC-721 consumer in its hashed form
    (contracts/ZkmlOutputNFT.sol.j2, `hashed`: mint() takes the packed output words and has the
    hashed-output contract at `consumer` check them against the proof's digest and the proof),
    mint the token for `words` and read the stored outputs back. Returns (the record DeployResult
    keeps as `consumer`, the NFT's Solidity source, the transactions)."""
    seg, _ = output_segment(segments)
    tensors = [dict(name=t.get("name", f"output{k}"), bits=int(t["bits"]), size=int(t["size"]))
               for k, t in enumerate(seg["tensors"])]
    n_public = len(evm.proof_to_calldata(proof, public)[3])
    dep = evm_split.Deployed(verifier_mode, verifier, [], [], [])
    addr, abi, src, rec = evm_split.deploy_consumer(w3, dep, n_public, tensors, name=name, budget=budget,
                                                    sender=sender, hashed_outputs=consumer)
    log(f"  ZkmlOutputNFT at {addr}: {rec.code_size:,} bytes, gas {rec.gas_used:,} (mints against the hashed outputs)")
    token, mrec = evm_split.mint(w3, addr, abi, dep, proof, public, budget=budget, sender=sender, words=words)
    back = [v for o in evm_split.read_token_outputs(w3, addr, abi, token, tensors) for v in o]
    log(f"  minted token {token}: gas {mrec.gas_used:,}; {len(back)} output values read back from the chain")
    record = dict(address=addr, abi=abi, token_id=token, deploy_gas=rec.gas_used, mint_gas=mrec.gas_used, outputs=back)
    return record, src, [asdict(rec), asdict(mrec)]


__all__ = ["mint_hashed", "render_poseidon", "table_codes", "table_words", "deploy_poseidon", "attach_poseidon", "commit_words_on_chain",
           "PoseidonDeployment", "render_consumer", "deploy_consumer", "verify_with_outputs", "check_outputs",
           "output_words", "words_layout", "output_segment", "HashedRun", "HashedConsumer"]
