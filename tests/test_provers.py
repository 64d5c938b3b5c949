"""Prover backends: snarkjs and arkworks (groth16py) prove the same witness under the same key;
both proofs verify (snarkjs + Python verifier); several inputs are proven with the key loaded once."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import mlp_model, save
from zkml import api
from zkml.errors import ZkmlError


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    d = tmp_path_factory.mktemp("provers")
    np.save(d / "cal.npy", np.random.default_rng(0).normal(size=(32, 5)))
    for k in range(3):
        (d / f"x{k}.json").write_text(json.dumps({"input_data": [list(np.linspace(-1, 1, 5) * (k + 1) / 3)]}))
    api.compile(save(mlp_model((5, 4, 3)), d / "m.onnx"), d / "b", calibration=d / "cal.npy")
    api.setup(d / "b")
    return d


@pytest.mark.parametrize("prover", ["snarkjs", "arkworks"])
def test_backend_proof_verifies(build, prover):
    res = api.prove(build / "b", build / "x0.json", prover=prover)
    assert res["prover"] == prover
    v = api.verify(build / "b")
    assert v.valid and v.snarkjs and v.python
    assert v.outputs == res["outputs"]


def test_auto_picks_arkworks(build):
    assert api.prove(build / "b", build / "x0.json")["prover"] == "arkworks"


def test_many_inputs_with_one_key_load(build):
    results = api.prove_many(build / "b", [build / f"x{k}.json" for k in range(3)])
    assert len({r["key_load_seconds"] for r in results}) == 1
    outs = set()
    for k, r in enumerate(results):
        d = build / "b" / "proofs" / f"{k:03d}"
        v = api.verify(build / "b", proof=d / "proof.json", public=d / "public.json")
        assert v.valid and v.outputs == r["outputs"]
        outs.add(tuple(r["outputs"]))
    assert len(outs) == 3                      # three different inputs, three different claims


def test_bad_input_in_a_batch_is_refused_before_any_proof(build, tmp_path):
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(ZkmlError):
        api.prove_many(build / "b", [build / "x0.json", tmp_path / "bad.json"])


def test_unknown_prover(build):
    with pytest.raises(ZkmlError, match="unknown prover"):
        api.prove(build / "b", build / "x0.json", prover="fast")
