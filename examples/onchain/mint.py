"""Mint an ERC-721 token for a proven model output and read the output back from the chain.

The steps of `zkml deploy BUILD --mint`, spelled out with the Python API (zkml.evm_split):
measure gas, plan, deploy the verifier (split if needed), verify, deploy the consumer, mint,
read the packed output back and unpack it.

    python examples/onchain/mint.py BUILD [--rpc URL] [--budget 16000000]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from zkml import api, evm, evm_split


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("build", type=Path, help="a proven build folder (zkml compile + zkml prove)")
    ap.add_argument("--rpc", help="JSON-RPC URL (default: embedded py-evm)")
    ap.add_argument("--budget", type=int, default=evm_split.DEFAULT_GAS_BUDGET, help="gas per transaction")
    a = ap.parse_args(argv)
    load = lambda f: json.loads((a.build / f).read_text())  # noqa: E731
    vk, proof, public = load("verification_key.json"), load("proof.json"), load("public.json")
    layout = load("build.json")["public_layout"]

    w3 = evm.connect(a.rpc)
    plan = evm_split.plan(vk, evm_split.measure_gas(w3), budget=a.budget, outputs=layout)
    print("\n".join(plan.describe()))
    dep = evm_split.deploy_plan(w3, plan, log=print)
    run = evm_split.run_verification(w3, dep, plan.transactions, proof, public, log=print)
    print(f"verified on-chain: {run.valid} ({run.gas:,} gas in {len(run.records)} transactions)")
    if not run.valid:
        print(run.reason, file=sys.stderr)
        return 1

    nft, abi, _, rec = evm_split.deploy_consumer(w3, dep, plan.n_public, layout)
    token, mrec = evm_split.mint(w3, nft, abi, dep, proof, public)
    print(f"ZkmlOutputNFT at {nft} (deploy gas {rec.gas_used:,}); token {token} minted (gas {mrec.gas_used:,})")
    back = [v for o in evm_split.read_token_outputs(w3, nft, abi, token, layout) for v in o]
    proven = api.decode_public(a.build, public)
    print(f"{len(back)} output values read back from the chain; equal to the proven outputs: {back == proven}")
    return 0 if back == proven else 1


if __name__ == "__main__":
    sys.exit(main())
