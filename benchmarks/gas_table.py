"""Deploy and verify gas per output size, packed and not: the table in docs/ONCHAIN.md.

For each number of outputs it builds the one-node Relu model of examples/onchain/wide_relu.py
(compile, development setup, one proof), then runs `zkml deploy --mint` on a chain: by default a
fresh anvil from node_modules with EIP-7825's per-transaction gas cap switched on (EIP-170 is on
by default), or --rpc URL, or --embedded (py-evm; slow above ~100 public inputs).

    .venv/bin/python benchmarks/gas_table.py [--sizes 1,100,1024,3072] [--budget 16000000]

Prints a markdown table. Gas figures are receipts' gasUsed (21,000 base and calldata included);
verification gas depends a little on the data (a zero public input skips its ecMul).
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples" / "onchain"))
from wide_relu import make_build  # noqa: E402

from zkml import evm, evm_split  # noqa: E402


def row(n: int, pack: bool, res) -> str:
    verify = [t for t in res.transactions if not t["what"].startswith(("deploy", "mint"))]
    sizes = [c["code_size"] for c in res.contracts]
    c = res.consumer or {}
    return (f"| {n:,} | {'packed' if pack else 'unpacked'} | {res.n_public:,} | {res.mode} | "
            f"{len(sizes)} ({max(sizes):,} max, {sum(sizes):,} total) | {res.deploy_gas:,} | {len(verify)} | "
            f"{res.verify_gas:,} | {max(t['gas_used'] for t in verify):,} | "
            f"{c.get('deploy_gas', 0):,} + {c.get('mint_gas', 0):,} |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1,100,1024,3072", help="output counts, comma-separated")
    ap.add_argument("--budget", type=int, default=evm_split.DEFAULT_GAS_BUDGET, help="gas per transaction")
    chain = ap.add_mutually_exclusive_group()
    chain.add_argument("--rpc", help="JSON-RPC URL of a node (default: a fresh anvil, EIP-7825 on)")
    chain.add_argument("--embedded", action="store_true", help="embedded py-evm instead of anvil")
    ap.add_argument("--work", help="folder for the builds (default: a temporary one)")
    a = ap.parse_args(argv)
    sizes = [int(s) for s in a.sizes.split(",")]
    with contextlib.ExitStack() as stack:
        work = Path(a.work) if a.work else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        rpc = a.rpc
        if not rpc and not a.embedded:
            rpc = stack.enter_context(evm.anvil_node("--enable-tx-gas-limit"))
        where = ("embedded py-evm" if a.embedded else
                 "a fresh anvil from node_modules, --enable-tx-gas-limit" if not a.rpc else a.rpc)
        rows = []
        for n in sizes:
            for pack in (True, False):
                folder = work / f"relu{n}_{'packed' if pack else 'unpacked'}"
                if not (folder / "build" / "proof.json").exists():
                    t = time.time()
                    make_build(folder, n, pack)
                    print(f"built {folder.name} in {time.time() - t:.1f} s", file=sys.stderr)
                res = evm.deploy_build(folder / "build", rpc=rpc, gas_budget=a.budget, consumer=True)
                if not res.valid:
                    print(f"{folder.name}: verification FAILED: {res.reason}", file=sys.stderr)
                    return 1
                rows.append(row(n, pack, res))
                print(rows[-1], file=sys.stderr)
        g = evm_split.measure_gas(evm.connect(rpc))
    print(f"Chain: {where} ({g.chain}); gas budget {a.budget:,} per transaction; measured "
          f"{g.per_input:,} gas per public input of the MSM loop, {g.pairing:,} for the pairing.\n")
    print("| outputs | outputs as | public inputs | verifier | contracts (code bytes) | deploy gas | verify txs "
          "| verify gas | max gas / tx | NFT deploy + mint gas |")
    print("|---:|---|---:|---|---|---:|---:|---:|---:|---|")
    for r in rows:
        print(r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
