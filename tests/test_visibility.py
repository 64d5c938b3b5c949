"""Visibility modes (zkml/visibility.py, docs/PRIVACY.md): input / weights / output each public,
private or committed by a Poseidon hash; weights as constants or as signals.

* zkml/poseidon.py equals circomlib: the published circomlibjs test vectors, and the circom
  witness of circomlib's Poseidon(n) and of zkml's PoseidonChain(N) / CommitLanes for several n, N.
* Every mode: the circuit's public signals (packed tensors, commitments computed in Python) equal
  the runtime's, bit for bit (api.witness raises otherwise); the outputs equal the runtime's.
* Hashed weights / input: a witness for other weights or another input, submitted with the
  published commitment, is rejected by snarkjs and by zkml.r1cs; so is an honest witness with one
  weight changed. A proof made with other weights fails `verify` against the published
  commitment; claimed outputs that do not match a hashed output are refused.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import zkml_runtime as rt
from circuit_harness import Circuit, assert_accepted, assert_rejected, compile_circuit, read_sym
from conftest import mlp_model, save
from zkml import api
from zkml.poseidon import commit_values, commit_words, poseidon
from zkml.visibility import Visibility, commitment
from zkml.wtns import read_wtns

# circomlibjs test/poseidon.js (published reference values, not computed by zkml)
VECTORS = [([1, 2], 0x115cc0f5e7d690413df64c6b9662e9cf2a3617f2743245519e19607a4417189a),
           ([1, 2, 3, 4], 0x299c867db6c1fdd79dcefa40e4510b9837e60ebb1ce0663dbaa525df65250465)]


@pytest.mark.parametrize("inputs,want", VECTORS, ids=["n2", "n4"])
def test_poseidon_published_vectors(inputs, want):
    assert poseidon(inputs) == want


POSEIDON_MAIN = """pragma circom 2.1.0;
include "commit.circom";
template Main() {{
    signal input a[{n}];
    signal input b[{m}];
    signal input c[{k}];
    signal output h;
    signal output chain;
    signal output lanes;
    component p = Poseidon({n});
    p.inputs <== a;
    h <== p.out;
    component q = PoseidonChain({m});
    q.in <== b;
    chain <== q.out;
    component r = CommitLanes({k}, 8, 31, {kw});
    r.in <== c;
    lanes <== r.out;
}}
component main = Main();
"""


@pytest.mark.parametrize("n,m,k", [(1, 1, 1), (5, 15, 31), (16, 16, 32), (3, 31, 70)])
def test_poseidon_equals_circomlib_witness(n, m, k):
    rng = np.random.default_rng(n * 100 + m)
    big = lambda cnt: [int(x) for x in rng.integers(0, 2 ** 62, cnt)] + [(1 << 253) - 1]  # noqa: E731
    a, b = big(n)[-n:], big(m)[-m:]
    c = [int(x) for x in rng.integers(0, 256, k)]
    circ = compile_circuit(POSEIDON_MAIN.format(n=n, m=m, k=k, kw=-(-k // 31)))
    w = circ.witness({"a": a, "b": b, "c": c})
    assert w[1:4] == [poseidon(a), commit_words(b), commit_values(c, 8)]


# --------------------------------------------------------------------------- models in every mode
MODES = [("private", "constant", "public"), ("public", "constant", "public"), ("hashed", "constant", "hashed"),
         ("private", "public", "public"), ("private", "private", "private"), ("hashed", "hashed", "hashed"),
         ("public", "hashed", "hashed")]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vis")
    rng = np.random.default_rng(0)
    np.save(folder / "cal.npy", rng.normal(0, 1, (64, 1, 6)).astype(np.float32))
    (folder / "x.json").write_text(json.dumps([[0.7, -0.4, 1.3, -1.1, 0.2, 0.05]]))
    (folder / "x2.json").write_text(json.dumps([[0.1, 0.4, -1.3, 1.1, 0.2, 0.9]]))
    return folder, save(mlp_model((6, 5, 4), seed=2), folder / "mlp.onnx")


_builds: dict = {}


def build_of(model, mode) -> Path:
    if mode not in _builds:
        folder, onnx_path = model
        b = folder / "b_{}_{}_{}".format(*mode)
        api.compile(onnx_path, b, folder / "cal.npy", visibility=Visibility(*mode))
        _builds[mode] = b
    return _builds[mode]


@pytest.mark.parametrize("mode", MODES, ids=["-".join(m) for m in MODES])
def test_every_mode_witness_equals_runtime(model, mode):
    folder, _ = model
    b = build_of(model, mode)
    meta = json.loads((b / "build.json").read_text())
    segs = {s["kind"]: s for s in meta["public_segments"]}
    assert [segs[k]["mode"] for k in ("input", "weights", "output")] == list(mode)
    wtns, outs = api.witness(b, folder / "x.json")        # raises unless public signals == runtime's
    g = api.load_graph(b)
    q, _ = rt.quantize_input(g, np.array(json.loads((folder / "x.json").read_text()), dtype=np.float64)[0])
    assert outs == [int(v) for v in rt.run_outputs(g, q)[0].reshape(-1)]
    values, _ = read_wtns(wtns)
    n_pub = sum(s["words"] for s in meta["public_segments"])
    assert meta["circuit"]["public_outputs"] == n_pub
    pub = values[1:1 + n_pub]
    if mode[2] == "public":
        assert api.decode_public(b, pub) == outs
    else:
        assert api.decode_public(b, pub) is None
    if "hashed" in mode:      # the commitments in the witness are those zkml.poseidon computes
        com = api.commitments(b, folder / "x.json" if mode[0] == "hashed" else None)
        pos = 0
        for kind in ("output", "input", "weights"):
            if segs[kind]["mode"] == "hashed" and kind in com:
                assert str(pub[pos]) == com[kind]
            pos += segs[kind]["words"]


def test_constant_weights_default_unchanged(model):
    """The default build has no weight signals and no Poseidon: same constraint count as before."""
    b = build_of(model, ("private", "constant", "public"))
    src = (b / "main.circom").read_text()
    assert "Poseidon" not in src and "signal input w" not in src


def _circuit(b: Path) -> Circuit:
    return Circuit(b, "main", ["--O2"], read_sym(b / "main.sym"))


def _witness_with(b: Path, inputs: dict) -> list[int]:
    """The circuit's own witness generator on arbitrary inputs (no runtime check)."""
    import subprocess
    from zkml import toolchain
    (b / "adv.json").write_text(json.dumps({k: [str(int(v)) for v in vs] for k, vs in inputs.items()}))
    subprocess.run([toolchain.node(), b / "main_js" / "generate_witness.js", b / "main_js" / "main.wasm",
                    b / "adv.json", b / "adv.wtns"], check=True, capture_output=True)
    return read_wtns(b / "adv.wtns")[0]


def _honest(model, mode):
    """(build, circuit, honest witness accepted by the R1CS, the witness generator's input JSON)."""
    b = build_of(model, mode)
    wtns, _ = api.witness(b, model[0] / "x.json")
    honest, _ = read_wtns(wtns)
    c = _circuit(b)
    assert_accepted(c, honest)
    return b, c, honest, json.loads((b / "input.json").read_text())


def test_wrong_weights_with_right_commitment_rejected(model):
    b, c, honest, inp = _honest(model, ("private", "hashed", "public"))
    published = c.value(honest, "main.weights_commitment")
    wname = next(k for k in inp if k.startswith("w"))
    for delta_at in (0, len(inp[wname]) - 1):
        other = dict(inp)
        other[wname] = list(inp[wname])
        other[wname][delta_at] = (other[wname][delta_at] + 1) % 256
        w2 = _witness_with(b, other)           # a consistent witness for the other weights ...
        assert c.value(w2, "main.weights_commitment") != published
        forged = c.tamper(w2, {"main.weights_commitment": published})     # ... claiming the published hash
        assert_rejected(c, forged, caught_in="weights_commitment", kind="hashed weights: other weights")
    # the honest witness with one weight signal changed and nothing else
    forged = c.tamper(honest, {f"main.{wname}[0]": (inp[wname][0] + 1) % 256})
    assert_rejected(c, forged, kind="hashed weights: one weight changed")


def test_wrong_input_for_hashed_input_commitment_rejected(model):
    b, c, honest, inp = _honest(model, ("hashed", "constant", "hashed"))
    published = c.value(honest, "main.in_commitment")
    assert str(published) == api.commitments(b, model[0] / "x.json")["input"]
    other = dict(inp, **{"in": [(int(v) + 1) % 256 for v in inp["in"]]})
    w2 = _witness_with(b, other)
    forged = c.tamper(w2, {"main.in_commitment": published})
    assert_rejected(c, forged, caught_in="in_commitment", kind="hashed input: another input")
    # and the output commitment of the honest run cannot be paired with another output
    forged = c.tamper(honest, {"main.out_commitment": c.value(w2, "main.out_commitment")})
    if c.value(w2, "main.out_commitment") != c.value(honest, "main.out_commitment"):
        assert_rejected(c, forged, caught_in="out_commitment", kind="hashed output: another output")


def test_private_weights_are_free_signals_but_range_checked(model):
    """--weights private: the prover picks the weights; the circuit still range-checks them."""
    b, c, honest, inp = _honest(model, ("private", "private", "private"))
    wname = next(k for k in inp if k.startswith("w"))
    import subprocess
    with pytest.raises(subprocess.CalledProcessError):
        _witness_with(b, dict(inp, **{wname: [256] + inp[wname][1:]}))   # the generator refuses 2^bits
    bits_name = next(s for s in c.sym if s.startswith(f"main.{wname}_range.bits[0].out[") and c.survives(s))
    forged = c.tamper(honest, {f"main.{wname}[0]": 256, bits_name: 0})
    assert_rejected(c, forged, kind="private weights: weight above its bits")


def test_prove_verify_hashed_everything(model, tmp_path):
    folder, _ = model
    b = build_of(model, ("hashed", "hashed", "hashed"))
    res = api.prove(b, folder / "x.json")
    r = api.verify(b)
    assert r.valid and r.outputs == res["outputs"], r
    assert set(r.commitments) == {"input", "weights", "output"}
    assert r.commitments["weights"] == json.loads((b / "commitments.json").read_text())["weights"]
    ok = api.verify(b, input_commitment=api.commitments(b, folder / "x.json")["input"])
    assert ok.valid
    other_input = api.commitments(b, folder / "x2.json")["input"]
    bad = api.verify(b, input_commitment=other_input)
    assert not bad.valid and "another input" in bad.reason
    wrong = list(res["outputs"])
    wrong[0] = (wrong[0] + 1) % 256
    bad = api.verify(b, claimed_outputs=wrong)
    assert not bad.valid and "claimed outputs" in bad.reason
    from click.testing import CliRunner
    from zkml.cli import main
    runner = CliRunner()
    published = r.commitments["weights"]
    for name, claim, code in (("right", res["outputs"], 0), ("wrong", wrong, 1), ("short", wrong[1:], 2),
                              ("floats", [0.5] * len(wrong), 2), ("dict", {"a": 1}, 2)):
        (tmp_path / f"{name}.json").write_text(json.dumps(claim))
        out = runner.invoke(main, ["verify", str(b), "--outputs", str(tmp_path / f"{name}.json")])
        assert out.exit_code == code, (name, out.output)
    out = runner.invoke(main, ["verify", str(b), "--input-commitment", "0xzz"])
    assert out.exit_code == 2 and "decimal" in out.output
    # a proof made with other weights: valid Groth16, but not for the published weights
    (tmp_path / "c.json").write_text(json.dumps({"weights": str(int(published) + 1)}))
    saved = (b / "commitments.json").read_text()
    try:
        (b / "commitments.json").write_text((tmp_path / "c.json").read_text())
        bad = api.verify(b)
        assert not bad.valid and "weights other than the committed" in bad.reason
    finally:
        (b / "commitments.json").write_text(saved)


def test_cli_modes_and_commit(model, tmp_path):
    from click.testing import CliRunner
    from zkml.cli import main
    folder, onnx_path = model
    runner = CliRunner()
    r = runner.invoke(main, ["compile", str(onnx_path), "-c", str(folder / "cal.npy"), "-o", str(tmp_path / "b"),
                             "--weights", "hashed", "--input", "hashed"])
    assert r.exit_code == 0, r.output
    assert "weights commitment (Poseidon, publish it):" in r.output
    r = runner.invoke(main, ["commit", str(tmp_path / "b"), "--input", str(folder / "x.json")])
    assert r.exit_code == 0, r.output
    b = tmp_path / "b"
    g = api.load_graph(b)
    q, _ = rt.quantize_input(g, np.array(json.loads((folder / "x.json").read_text()), dtype=np.float64)[0])
    want = commitment([dict(bits=g.tensors[g.inputs[0]].bits)], [[int(v) for v in q.reshape(-1)]])
    assert f"input commitment (Poseidon): {want}" in r.output
    r = runner.invoke(main, ["compile", str(onnx_path), "-o", str(tmp_path / "c"), "--weights", "secret"])
    assert r.exit_code == 2 and "secret" in r.output
    r = runner.invoke(main, ["commit", str(build_of(model, ("private", "constant", "public"))),
                             "--input", str(folder / "x.json")])
    assert r.exit_code == 2 and "--input hashed" in r.output


def test_conv_transpose_with_signal_weights_refused_by_name(tmp_path):
    """Conv kernels can be signals (tests/test_strands.py); ConvTranspose not yet."""
    from onnx import helper
    from conftest import const, make_model, vinfo
    rng = np.random.default_rng(1)
    m = make_model([helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="c1", kernel_shape=[2, 2])],
                   [vinfo("x", [1, 1, 3, 3])], [vinfo("y", [1, 1, 4, 4])], [const("w", rng.normal(0, 1, (1, 1, 2, 2)))])
    from zkml.errors import ZkmlError
    with pytest.raises(ZkmlError, match="c1.*Dense .*and Conv layers only"):
        api.compile(save(m, tmp_path / "c.onnx"), tmp_path / "b", visibility=Visibility("private", "private", "public"))
