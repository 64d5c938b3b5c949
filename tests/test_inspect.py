"""Static checks: circom's `--inspect` over every circuit shape zkml emits, and the bound
analysis refusing models that could overflow the field.

`--inspect` reports signals that appear in no constraint (CA01: an unconstrained signal is a
forgery hole) and subcomponent outputs the father never reads (CA02), among others. Every
warning must match an entry of `ALLOWED` below, each with the reason it is harmless; anything
else fails the test, naming the circuit and the warning. Circuits inspected: the digits
example, the shared models the pipeline supports, a model using every template, and each
operator's standalone circuits from tests/op_zoo.py plus the RequantClamp / ReluZp / UintRange
harness circuits of tests/test_forgery.py.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from circuit_harness import REQUANT_MAIN
from conftest import FOUNDATION_MODELS, ROOT, SHARED_MODELS, save, shared_model
from op_zoo import SPECS
from test_forgery import CLAMP_ALIGNED, CLAMP_MODES, RANGE_MAIN, RELU_MAIN
from test_op_attacks import zoo_model
from zkml import toolchain
from zkml.errors import BitWidthError
from zkml.ops._requant import requant_args, requant_bounds

ANSI = re.compile(r"\x1b\[[0-9;]*m")
DIAG = re.compile(r'(warning|error)\[(\w+)\]: (?:In template "(\w+)\(?[^"]*"\s*:\s*)?(.*)')
SUBJECT = re.compile(r"signals? ([\w\[\].]+?)(?: contains| does not|$)")

# (code, template, signal pattern with indices as [*]) -> why the warning is harmless
_NUM2BITS = ("Num2Bits constrains its own outputs (every bit boolean: b*(b-1) === 0, and "
             "sum(bits*2^i) === in); the father only needs the decomposition to exist, which is the range "
             "check. The bits are not read again, so they appear in no constraint of the father.")
ALLOWED = {
    ("CA02", "UintRange", "bits[*].out"): "UintRange: " + _NUM2BITS + " (in < 2^BITS)",
    ("CA02", "RequantClamp", "rBits.out"): "RequantClamp remainder: " + _NUM2BITS + " (0 <= r < 2^SHIFT)",
    ("CA02", "RequantClamp", "nBits.out"): ("RequantClamp on the aligned way, the decomposition of N whose low "
                                            "SHIFT bits are the remainder (0 <= r < 2^SHIFT) and whose high "
                                            "QBITS bits are q's (read by the clamp): " + _NUM2BITS
                                            + " (the remainder's bits are not read again)"),
    ("CA02", "RequantClamp", "qBits.out"): ("RequantClamp quotient, reported only in instances without a clamp "
                                            "(with a comparator, its decomposition bounds q; on the aligned way the "
                                            "clamp reads q's bits: circuits/requant.circom): "
                                            + _NUM2BITS + " (0 <= q < 2^QBITS)"),
    ("CA02", "ArgMaxOne", "d[*].out"): ("ArgMaxOne's d[k] = m - in[k] - ahead: " + _NUM2BITS
                                        + " (0 <= d[k] < 2^BITS: in[k] <= max, strictly before the index; "
                                        "circuits/argmax.circom)"),
    ("CA01", "IndexMap", "in"): ("IndexMap of a Slice, Gather, Resize or a cropping Pad reads only some of "
                                 "its inputs; the others are the producer's values, range-checked there, "
                                 "and cannot influence any output, so no constraint needs them."),
    ("CA02", "MaxWindow", "ge[*].out"): ("MaxWindow's step i decomposes m[i-1] + 2^BITS - in[i] into BITS+1 bits "
                                         "and reads only the top one (m[i-1] >= in[i]); the low bits are "
                                         "constrained inside Num2Bits and make the decomposition, hence the "
                                         "comparison, unique (circuits/pool.circom)."),
    ("CA02", "ConvMaxPool2D", "ge[*].out"): ("ConvMaxPool2D's running-maximum step k: the same decomposition as "
                                             "MaxWindow's (only the top bit is read; the low bits make it unique; "
                                             "circuits/conv.circom)."),
    ("CA02", "LessThan", "n2b.out"): ("circomlib LessThan(n) decomposes in[0] + 2^n - in[1] into n+1 bits and "
                                      "reads only the top one; the n low bits are constrained inside Num2Bits "
                                      "and exist to make the decomposition (hence the comparison) unique."),
}


def diagnostics(text: str) -> list[tuple[str, str, str, str]]:
    """(kind, code, template, signal pattern) of every warning/error circom printed."""
    out = []
    for m in DIAG.finditer(ANSI.sub("", text)):
        kind, code, template, msg = m.groups()
        sub = SUBJECT.search(msg)
        pattern = re.sub(r"\[\d+\]", "[*]", sub.group(1)) if sub else msg.strip()
        out.append((kind, code, template or "", pattern, msg.strip()))
    return out


def inspect(source: Path, tmp: Path) -> list:
    out = tmp / f"inspect_{source.parent.name}_{source.stem}"
    out.mkdir(parents=True, exist_ok=True)
    proc = toolchain.circom(source, out, flags=["--inspect"])
    text = proc.stdout + proc.stderr
    assert "Everything went okay" in ANSI.sub("", text), text[-2000:]
    return diagnostics(text)


def assert_explained(diags: list, where: str) -> dict:
    unexplained = [d for d in diags if d[0] == "error" or (d[1], d[2], d[3]) not in ALLOWED]
    assert not unexplained, (f"{where}: circom --inspect reports warnings with no reason in ALLOWED: "
                             + "; ".join(f"{k}[{c}] {t}: {msg}" for k, c, t, _, msg in unexplained[:8]))
    seen: dict = {}
    for d in diags:
        seen[(d[1], d[2], d[3])] = seen.get((d[1], d[2], d[3]), 0) + 1
    return seen


def _calibration(name: str, tmp: Path) -> Path:
    inp = SHARED_MODELS / name / "input.json"
    x = np.array(json.loads(inp.read_text())["input_data"], dtype=np.float64).reshape(1, -1)
    rng = np.random.default_rng(0)
    np.save(tmp / f"cal_{name}.npy", np.concatenate([x, x + rng.normal(0, 0.5, (63, x.shape[1]))]))
    return tmp / f"cal_{name}.npy"


MODELS = ["digits", "zoo", *FOUNDATION_MODELS]


@pytest.mark.parametrize("name", MODELS)
def test_generated_model_circuit_has_no_unexplained_warning(name, tmp_path):
    from zkml import api
    if name == "digits":
        model, cal = ROOT / "examples" / "digits" / "model.onnx", ROOT / "examples" / "digits" / "calibration.npy"
    elif name == "zoo":
        model, cal = save(zoo_model(), tmp_path / "zoo.onnx"), None
    else:
        model, cal = shared_model(name), _calibration(name, tmp_path)
    build = tmp_path / "build"
    api.compile(model, build, calibration=cal)
    seen = assert_explained(inspect(build / "main.circom", tmp_path), f"{name} (main.circom)")
    print(f"\n{name}: allowed warnings {seen}")


def _template_circuits() -> list[tuple[str, str]]:
    out = []
    for op, spec in sorted(SPECS.items()):
        for k, cfg in enumerate(spec.attack_cfgs):
            out.append((f"{op}[{k}]", spec.make(**cfg).source(2)))
    out += _requant_circuits()
    out += [("ReluZp[zp 100]", RELU_MAIN), ("UintRange", RANGE_MAIN)]
    return out


def _requant_circuits() -> list[tuple[str, str]]:
    """RequantClamp in each clamp mode (test_forgery's parameter sets), labelled by its mode."""
    out = []
    for mode, prm in [*((m, prm) for m, (prm, _) in CLAMP_MODES.items()), ("aligned", CLAMP_ALIGNED)]:
        b = requant_bounds(prm["amin"], prm["amax"], prm["shift"], prm["zp"], prm["lo"], prm["bits"])
        out.append((f"RequantClamp[clamp {mode}]", REQUANT_MAIN.format(args=", ".join(str(v) for _, v in requant_args(b)), n=3)))
    return out


@pytest.mark.parametrize("label,source", _template_circuits(), ids=[t[0] for t in _template_circuits()])
def test_template_circuit_has_no_unexplained_warning(label, source, tmp_path):
    src = tmp_path / "circuit.circom"
    src.write_text(source)
    assert_explained(inspect(src, tmp_path), label)


@pytest.mark.parametrize("label,source", _requant_circuits(), ids=[t[0] for t in _requant_circuits()])
def test_requant_quotient_bits_only_without_clamp(label, source, tmp_path):
    """The qBits entry of ALLOWED is needed exactly where RequantClamp keeps q's own Num2Bits
    unread: in the instances without a clamp. With a comparator no qBits exists (the comparator
    bounds q). On the aligned way one decomposition of N (nBits) replaces rBits and qBits: its
    remainder bits are unread, q's are read by the clamp."""
    src = tmp_path / "circuit.circom"
    src.write_text(source)
    seen = assert_explained(inspect(src, tmp_path), label)
    assert (("CA02", "RequantClamp", "qBits.out") in seen) == label.endswith("[clamp none]"), seen
    aligned = label.endswith("[clamp aligned]")
    assert (("CA02", "RequantClamp", "rBits.out") in seen) == (not aligned), seen
    assert (("CA02", "RequantClamp", "nBits.out") in seen) == aligned, seen


def test_allow_list_reasons_are_written():
    for key, reason in ALLOWED.items():
        assert len(reason) > 60, key


def test_diagnostics_parser_sees_an_unconstrained_signal(tmp_path):
    """The check is only as good as its parser: a template with a hint pinned by nothing must
    produce an unexplained warning (CA01)."""
    src = tmp_path / "bad.circom"
    src.write_text("""pragma circom 2.1.0;
template Bad() {
    signal input in;
    signal output out;
    signal hint;
    hint <-- in * 2;
    out <== in;
}
component main = Bad();
""")
    diags = inspect(src, tmp_path)
    assert any(c == "CA01" and "hint" in msg for _, c, _, _, msg in diags), diags
    with pytest.raises(AssertionError, match="no reason in ALLOWED"):
        assert_explained(diags, "bad.circom")


# --------------------------------------------------------------------------- bound analysis
def cancelling_model(path: Path) -> Path:
    """y = x0 - x1 in double precision. Calibrated on x0 == x1 ~ 1e80, y is always 0, so its
    scale is tiny next to x's: the requantization multiplier x_scale * w_scale / y_scale is
    ~2^530 and the accumulator could reach ~2^550, far beyond the field."""
    g = helper.make_graph([helper.make_node("Gemm", ["x", "w"], ["y"], name="cancelling_fc", transB=1)], "g",
                          [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [1, 2])],
                          [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [1, 1])],
                          [numpy_helper.from_array(np.array([[1.0, -1.0]]), "w")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, path)
    return path


def test_bound_analysis_refuses_a_model_that_overflows_the_field(tmp_path):
    """A whole model, through `zkml compile`: refused by the bound analysis, naming node and bits."""
    from zkml import api
    model = cancelling_model(tmp_path / "cancel.onnx")
    v = np.random.default_rng(0).uniform(-1, 1, (16, 1)) * 1e80
    np.save(tmp_path / "cal.npy", np.concatenate([v, v], axis=1))
    with pytest.raises(BitWidthError) as e:
        api.compile(model, tmp_path / "b", calibration=tmp_path / "cal.npy")
    assert e.value.node == "cancelling_fc" and e.value.bits > 252
    assert not (tmp_path / "b" / "main.circom").exists()
    r = subprocess.run([sys.executable, "-m", "zkml.cli", "compile", str(model), "--calibration",
                        str(tmp_path / "cal.npy"), "-o", str(tmp_path / "b")], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "cancelling_fc" in r.stderr and f"needs {e.value.bits} bits" in r.stderr and "252" in r.stderr


def test_bound_analysis_accepts_the_same_model_below_the_limit(tmp_path):
    """The same shape with ordinary magnitudes compiles: the refusal is about the numbers."""
    from zkml import api
    model = cancelling_model(tmp_path / "cancel.onnx")
    v = np.random.default_rng(0).uniform(-1, 1, (16, 2))
    np.save(tmp_path / "cal.npy", v)
    meta = api.compile(model, tmp_path / "b", calibration=tmp_path / "cal.npy")
    assert meta["circuit"]["constraints"] > 0
