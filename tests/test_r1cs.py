"""The independent R1CS checker (zkml/r1cs.py) against snarkjs `wtns check`, on real circuits.

It must agree with snarkjs on every witness (the honest one accepted, and the same first
violated constraint for tampered ones), name the signals of a violated constraint, stay fast
on the digits example (4k constraints), refuse malformed files with a BuildError, and its
command line (`python -m zkml.r1cs`) must exit 0 / 1 / 2.
"""
from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from circuit_harness import P, snarkjs_check
from conftest import ROOT
from zkml import r1cs as zr
from zkml.errors import BuildError
from zkml.wtns import read_wtns, write_wtns

EX = ROOT / "examples" / "digits"


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    from zkml import api
    build = tmp_path_factory.mktemp("r1cs_digits") / "build"
    api.compile(EX / "model.onnx", build, calibration=EX / "calibration.npy")
    wtns, _ = api.witness(build, EX / "input.json")
    values, prime = read_wtns(wtns)
    assert prime == P
    return build, values


def test_reads_the_header_like_snarkjs(digits):
    build, values = digits
    r = zr.R1CS(build / "main.r1cs")
    info = __import__("json").loads((build / "build.json").read_text())["circuit"]
    assert (r.n_constraints, r.n_wires, r.n_pub_out, r.n_prv_in) == \
        (info["constraints"], info["wires"], info["public_outputs"], info["private_inputs"])
    assert r.prime == P and len(values) == r.n_wires and r.wire_labels is not None


def test_honest_witness_holds_and_is_fast(digits):
    build, values = digits
    t0 = time.perf_counter()
    rep = zr.check(build / "main.r1cs", build / "witness.wtns", build / "main.sym")
    seconds = time.perf_counter() - t0
    print(f"\nzkml.r1cs: read + check of {rep.constraints} constraints in {seconds:.3f} s")
    assert rep.ok and rep.violations == [] and str(rep) == f"all {rep.constraints} constraints hold"
    assert seconds < 1.0
    assert snarkjs_check(build / "main.r1cs", values, cli=True) is None


def test_agrees_with_snarkjs_on_random_tampering(digits):
    """40 witnesses with 1-3 random wires changed (by +-1, random field elements or p - v): the
    Python checker and `snarkjs wtns check` report the same first violated constraint, and
    every tampering that changed the witness is rejected (p - v leaves a 0 wire, e.g. a zero
    bit, unchanged: such draws are no tampering and are not counted)."""
    build, values = digits
    r = zr.R1CS(build / "main.r1cs")
    rng = np.random.default_rng(11)
    both_reject = changed = 0
    for t in range(40):
        v = list(values)
        for _ in range(int(rng.integers(1, 4))):
            i = int(rng.integers(1, r.n_wires))
            kind = t % 3
            v[i] = ((v[i] + (1 if rng.integers(2) else -1)) if kind == 0 else
                    int.from_bytes(rng.bytes(32), "little") if kind == 1 else P - v[i]) % P
        first = r.first_violated(v)
        assert first == snarkjs_check(build / "main.r1cs", v), f"tamper {t}"
        both_reject += first is not None
        changed += v != list(values)
    assert both_reject == changed >= 30


def test_names_the_signals_of_the_violated_constraint(digits, tmp_path):
    build, values = digits
    sym = zr.read_sym(build / "main.sym")
    v = list(values)
    v[sym["main.out[0]"]] = (v[sym["main.out[0]"]] + 1) % P
    rep = zr.check(build / "main.r1cs", v, sym, all_violations=True)
    assert not rep.ok and rep.violations[0].index == snarkjs_check(build / "main.r1cs", v)
    names = {n for viol in rep.violations for n in viol.names}
    assert "main.out[0]" in names
    assert "violated" in str(rep) and "main.out[0]=" in str(rep)


def test_cli_exit_codes(digits, tmp_path):
    build, values = digits
    cmd = [sys.executable, "-m", "zkml.r1cs", str(build / "main.r1cs")]
    ok = subprocess.run([*cmd, str(build / "witness.wtns")], capture_output=True, text=True)
    assert ok.returncode == 0 and "constraints hold" in ok.stdout, ok.stderr
    v = list(values)
    v[1] = (v[1] + 1) % P
    write_wtns(tmp_path / "bad.wtns", v, P)
    bad = subprocess.run([*cmd, str(tmp_path / "bad.wtns"), "--all"], capture_output=True, text=True)
    assert bad.returncode == 1 and "violated" in bad.stdout and "main.out" in bad.stdout
    assert "WITNESS IS NOT CORRECT" in bad.stderr
    write_wtns(tmp_path / "short.wtns", values[:-1], P)
    short = subprocess.run([*cmd, str(tmp_path / "short.wtns")], capture_output=True, text=True)
    assert short.returncode == 2 and "wires" in short.stderr and "Traceback" not in short.stderr


def test_witness_shape_errors(digits):
    build, values = digits
    r = zr.R1CS(build / "main.r1cs")
    with pytest.raises(BuildError, match="wire 0 must be the constant 1"):
        r.violated([2, *values[1:]])
    with pytest.raises(BuildError, match="wires"):
        r.violated(values + [0])
    with pytest.raises(BuildError, match="another field"):
        r.check_witness_shape(values, prime=P + 2)
    # a value + p is the same field element (as snarkjs reads it) but not canonical
    v = list(values)
    v[1] += P
    assert r.holds(v) and not r.canonical(v) and r.canonical(values)


@pytest.mark.parametrize("cut", [0, 3, 4, 11, 12, 40, 100, -1])
def test_truncated_files_are_build_errors(digits, tmp_path, cut):
    build, _ = digits
    for src in ("main.r1cs", "witness.wtns"):
        data = (build / src).read_bytes()
        bad = tmp_path / src
        bad.write_bytes(data[:cut] if cut >= 0 else data[:-7])
        with pytest.raises(BuildError):
            zr.R1CS(bad) if src.endswith("r1cs") else read_wtns(bad)


def test_garbled_constraint_section_is_refused(digits, tmp_path):
    """A coefficient >= p or a wire index beyond the header is a malformed file, not a constraint."""
    build, _ = digits
    data = bytearray((build / "main.r1cs").read_bytes())
    from zkml import binfile
    pos, _ = binfile.sections(bytes(data), b"r1cs")[2]
    n = int.from_bytes(data[pos:pos + 4], "little")
    assert n >= 1
    bad = bytearray(data)
    bad[pos + 4:pos + 8] = (10 ** 6).to_bytes(4, "little")          # first term's wire index
    with pytest.raises(BuildError, match="outside the header's bounds"):
        zr.R1CS(data=bytes(bad))
    bad = bytearray(data)
    bad[pos + 8:pos + 40] = (P + 5).to_bytes(32, "little")          # first term's coefficient
    with pytest.raises(BuildError, match="outside the header's bounds"):
        zr.R1CS(data=bytes(bad))
    with pytest.raises(BuildError, match="not found"):
        zr.R1CS(tmp_path / "missing.r1cs")
