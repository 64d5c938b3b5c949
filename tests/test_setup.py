"""Trusted setup paths: development keys (cached local powers of tau) and a user-supplied
ptau (the production path), including the failure modes snarkjs hides (unprepared or too
small ptau, empty zkey)."""
from __future__ import annotations

import json
import secrets

import numpy as np
import pytest

from conftest import mlp_model, save
from zkml import api, groth16, toolchain
from zkml.errors import ZkmlError


@pytest.fixture(scope="module")
def small_build(tmp_path_factory):
    d = tmp_path_factory.mktemp("setup")
    model = save(mlp_model((4, 3, 2)), d / "m.onnx")
    np.save(d / "cal.npy", np.random.default_rng(0).normal(size=(32, 4)))
    (d / "x.json").write_text(json.dumps({"input_data": [[0.1, -0.2, 0.3, 0.5]]}))
    api.compile(model, d / "b", calibration=d / "cal.npy")
    return d


@pytest.fixture(scope="module")
def ceremony(tmp_path_factory):
    """A small powers of tau made by snarkjs, as a public ceremony would publish it."""
    d = tmp_path_factory.mktemp("ptau")
    toolchain.snarkjs("powersoftau", "new", "bn128", 9, d / "0.ptau")
    toolchain.snarkjs("powersoftau", "contribute", d / "0.ptau", d / "1.ptau", "-name=first",
                      f"-e={secrets.token_hex(16)}")
    toolchain.snarkjs("powersoftau", "prepare", "phase2", d / "1.ptau", d / "final.ptau")
    return d


def test_unprepared_ptau_is_refused(small_build, ceremony):
    with pytest.raises(ZkmlError, match="not prepared for phase 2"):
        api.setup(small_build / "b", ceremony / "1.ptau")


def test_garbage_ptau_is_refused(small_build, tmp_path):
    (tmp_path / "x.ptau").write_bytes(b"nonsense" * 10)
    with pytest.raises(ZkmlError, match="not a powers-of-tau"):
        api.setup(small_build / "b", tmp_path / "x.ptau")


def test_user_ptau_production_path(small_build, ceremony):
    assert groth16.ptau_power(ceremony / "final.ptau") == (9, True)
    meta = api.setup(small_build / "b", ceremony / "final.ptau")
    assert meta["insecure"] is False and "final.ptau" in meta["kind"]
    assert (small_build / "b" / "main.zkey").stat().st_size > 0
    api.prove(small_build / "b", small_build / "x.json")
    assert api.verify(small_build / "b").valid


def test_development_setup_is_cached_and_labelled(small_build):
    meta = api.setup(small_build / "b")
    assert meta["insecure"] is True and "INSECURE" in meta["kind"]
    ptau = meta["ptau"]
    before = {p: p.stat().st_mtime for p in groth16.cache_dir().glob("*.ptau")}
    meta2 = api.setup(small_build / "b")
    assert meta2["ptau"] == ptau                       # the cached file is reused, never remade
    assert {p: p.stat().st_mtime for p in groth16.cache_dir().glob("*.ptau")} == before
