"""Groth16 prover backends behind one interface.

- `snarkjs`: the reference (`snarkjs groth16 prove`), always available.
- `arkworks`: groth16py (PyPI, GPL-3.0 like zkml; an arkworks core in Rust) proving from the
  same snarkjs `.zkey` and `.wtns`. Measured faster with less memory (see
  benchmarks/setup_bench.py); its proof is converted to snarkjs' proof.json layout and is
  checked by the same verifiers.

`get_prover(name)` returns a backend; "auto" picks arkworks when groth16py imports, else snarkjs.
A backend loads the proving key once and proves any number of witnesses with it.
"""
from __future__ import annotations

import json
from pathlib import Path

from . import toolchain
from .errors import ZkmlError
from .wtns import read_wtns

PROVERS = ("auto", "arkworks", "snarkjs")


def public_signals(wtns: Path, n_public: int) -> list[str]:
    """The public signals of a witness: wires 1..n_public (outputs first, then public inputs)."""
    values, _ = read_wtns(wtns)
    return [str(v) for v in values[1:1 + n_public]]


class SnarkjsProver:
    name = "snarkjs"

    def __init__(self, zkey: Path):
        self.zkey = Path(zkey)

    def prove(self, wtns: Path, out_dir: Path) -> tuple[dict, list]:
        proof_p, public_p = Path(out_dir) / "proof.json", Path(out_dir) / "public.json"
        toolchain.snarkjs("groth16", "prove", self.zkey, wtns, proof_p, public_p)
        return json.loads(proof_p.read_text()), json.loads(public_p.read_text())


class ArkworksProver:
    name = "arkworks"

    def __init__(self, zkey: Path):
        try:
            import groth16py
        except ImportError:
            raise ZkmlError("the arkworks prover needs groth16py: pip install groth16py "
                            "(or use --prover snarkjs)") from None
        self._g = groth16py
        try:
            self.pk, vk = groth16py.import_zkey(str(zkey))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:  # a Rust panic surfaces as pyo3's PanicException (a BaseException)
            raise ZkmlError(f"groth16py cannot read {zkey}: {e}") from None
        self.n_public = vk.n_public() if callable(getattr(vk, "n_public", None)) else vk.n_public

    def prove(self, wtns: Path, out_dir: Path) -> tuple[dict, list]:
        try:
            blob = self._g.prove_wtns(self.pk, str(wtns))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:  # pyo3 PanicException included
            raise ZkmlError(f"groth16py failed to prove: {e}") from None
        w = [str(int.from_bytes(blob[i:i + 32], "big")) for i in range(0, 256, 32)]
        # Ethereum layout: A.x A.y | B.x.c1 B.x.c0 B.y.c1 B.y.c0 | C.x C.y (EIP-197 orders G2 c1 first)
        proof = {"pi_a": [w[0], w[1], "1"], "pi_b": [[w[3], w[2]], [w[5], w[4]], ["1", "0"]],
                 "pi_c": [w[6], w[7], "1"], "protocol": "groth16", "curve": "bn128"}
        public = public_signals(wtns, self.n_public)
        (Path(out_dir) / "proof.json").write_text(json.dumps(proof, indent=1))
        (Path(out_dir) / "public.json").write_text(json.dumps(public, indent=1))
        return proof, public


def get_prover(name: str, zkey: Path):
    if name not in PROVERS:
        raise ZkmlError(f"unknown prover '{name}'; choose one of {', '.join(PROVERS)}")
    if name == "auto":
        try:
            import groth16py  # noqa: F401
            name = "arkworks"
        except ImportError:
            name = "snarkjs"
    return (ArkworksProver if name == "arkworks" else SnarkjsProver)(zkey)
