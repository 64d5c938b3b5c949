"""Trusted setup paths: development keys (cached local powers of tau) and a user-supplied
ptau (the production path), including the failure modes snarkjs hides (unprepared or too
small ptau, empty zkey)."""
from __future__ import annotations

import json
import secrets
from pathlib import Path
import subprocess
import sys

import numpy as np
import pytest

from conftest import mlp_model, save
from zkml import api, groth16, toolchain
from zkml.errors import ZkmlError


def zkml(*args):
    return subprocess.run([sys.executable, "-m", "zkml.cli", *map(str, args)], capture_output=True, text=True)


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


def test_production_ceremony_end_to_end(small_build, ceremony):
    """--ptau from a ceremony: ptau verified, first contribution, two more, a beacon, then
    `zkml setup verify` against the ptau, a proof, and both verifiers accept it."""
    b = small_build / "b"
    assert groth16.ptau_power(ceremony / "final.ptau") == (9, True)
    r = zkml("setup", b, "--ptau", ceremony / "final.ptau")
    assert r.returncode == 0, r.stderr
    assert "production" in r.stdout and "INSECURE" not in r.stdout
    for who in ("alice", "bob"):
        r = zkml("setup", "contribute", b, "--name", who)
        assert r.returncode == 0, r.stderr
    r = zkml("setup", "beacon", b, "--hash", "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20",
             "--iterations", "10")
    assert r.returncode == 0, r.stderr
    meta = json.loads((b / "setup.json").read_text())
    assert meta["insecure"] is False and len(meta["contributions"]) == 4
    assert meta["contributions"][1:3] == ["alice", "bob"]
    r = zkml("setup", "verify", b, "--ptau", ceremony / "final.ptau")
    assert r.returncode == 0, r.stderr
    assert "setup verified" in r.stdout
    api.prove(b, small_build / "x.json")
    assert api.verify(b).valid


def test_setup_verify_rejects_another_ptau(small_build, ceremony, tmp_path):
    """A zkey checked against a different powers of tau fails `zkml setup verify`."""
    other = tmp_path / "o"
    toolchain.snarkjs("powersoftau", "new", "bn128", 9, other.with_suffix(".0.ptau"))
    toolchain.snarkjs("powersoftau", "contribute", other.with_suffix(".0.ptau"), other.with_suffix(".1.ptau"),
                      "-name=x", f"-e={secrets.token_hex(16)}")
    toolchain.snarkjs("powersoftau", "prepare", "phase2", other.with_suffix(".1.ptau"), other.with_suffix(".ptau"))
    b = small_build / "b"
    if json.loads((b / "setup.json").read_text()).get("method") != "ceremony":
        api.setup(b, ceremony / "final.ptau")
    r = zkml("setup", "verify", b, "--ptau", other.with_suffix(".ptau"))
    assert r.returncode != 0 and "Traceback" not in r.stderr


def test_contribution_to_development_keys_is_refused(small_build):
    api.setup(small_build / "b")
    r = zkml("setup", "contribute", small_build / "b", "--name", "eve")
    assert r.returncode != 0 and "production setup" in r.stderr


def test_direct_development_setup_is_default_and_labelled(small_build):
    r = zkml("setup", small_build / "b")
    assert r.returncode == 0 and "INSECURE" in r.stdout and "direct" in r.stdout
    meta = json.loads((small_build / "b" / "setup.json").read_text())
    assert meta["method"] == "direct" and meta["insecure"] is True and meta["ptau"] is None
    api.prove(small_build / "b", small_build / "x.json")
    assert api.verify(small_build / "b").valid
    r = zkml("deploy", small_build / "b")
    assert r.returncode == 0, r.stderr
    assert "INSECURE" in (small_build / "b" / "Verifier.sol").read_text()


def test_development_setup_is_cached_and_labelled(small_build):
    meta = api.setup(small_build / "b", dev_method="ptau")
    assert meta["insecure"] is True and "INSECURE" in meta["kind"]
    ptau = meta["ptau"]
    assert ptau and Path(ptau).parent == groth16.cache_dir()
    before = {p: p.stat().st_mtime for p in groth16.cache_dir().glob("*.ptau")}
    meta2 = api.setup(small_build / "b", dev_method="ptau")
    assert meta2["ptau"] == ptau                       # the cached file is reused, never remade
    assert {p: p.stat().st_mtime for p in groth16.cache_dir().glob("*.ptau")} == before
