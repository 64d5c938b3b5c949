"""Test helper (not a test file): run ONNX's own operator conformance cases through zkml.

`onnx.backend.test.case.node.collect_testcases()` yields, for every ONNX operator, small models
with inputs and expected outputs (computed by onnx's reference implementation). For an
operator, `node_cases(op)` takes the cases whose graph is that single node (the "expanded"
function bodies of other operators are not conformance cases of this one). `run_case` puts one
case through zkml's real path:

    import_onnx -> calibrate (onnxruntime, on the case's own input) -> quantize -> runtime

and compares the dequantized integer output with the case's expected output.

Fixes applied within our constraints (listed in the result, not hidden):
  - every graph input after the first becomes an initializer holding the case's value (zkml
    proves one input tensor; weights, pads, bounds, axes and further Concat operands are
    constants of the model);
  - an integer-typed data input (and the data constants of the same type, e.g. Clip bounds) is
    cast to float: zkml quantizes float inputs, and the operator's semantics does not depend
    on the element type for these operators.
Anything zkml refuses with UnsupportedOpError is *skipped* with that message as the reason;
any other error or an output outside the tolerance is a *failure*.

Two comparisons, in LSBs of the output tensor's quantization step:
  - against the case's expected output: 1 + (number of requantizing IR nodes), the budget of
    tests/test_runtime_vs_onnxruntime.py (each requantization rounds once, the input's own
    rounding adds its share);
  - for operators without weights (pools, Clip, layout), against onnxruntime run on the
    *dequantized integer input*, which removes the input's rounding: what remains is the integer
    arithmetic's own error, <= 0.5 LSB per requantization (+ 0.02 LSB for the 16-bit multiplier
    and float32), and 0.5 LSB for Clip's bounds; max and relabelings are exact (0).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

import zkml_runtime as rt
from zkml.errors import UnsupportedOpError
from zkml.onnx_import import import_onnx
from zkml.quantize import QuantConfig, calibrate, quantize, run_float

REQUANTIZING = {"Dense", "Add", "Conv", "AvgPool", "Lut", "Affine", "Sub", "ConvTranspose"}   # Lut: its table rounds once
_FLOATS = {TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16}

_all_cases = None


def all_cases():
    global _all_cases
    if _all_cases is None:
        from onnx.backend.test.case.node import collect_testcases
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with np.errstate(all="ignore"):
                _all_cases = collect_testcases()
    return _all_cases


def node_cases(op_type: str) -> list:
    return [c for c in all_cases() if [n.op_type for n in c.model.graph.node] == [op_type]]


@dataclass
class CaseResult:
    name: str
    status: str                 # passed / skipped / failed
    reason: str = ""
    worst_lsb: float | None = None
    tol_lsb: float | None = None
    exact_lsb: float | None = None       # vs onnxruntime on the dequantized input (weight-free ops)
    exact_tol: float | None = None
    fixes: list = field(default_factory=list)
    ir_ops: list = field(default_factory=list)
    graph: object = field(default=None, repr=False)     # the quantized IR (passed/failed cases)
    q_input: object = field(default=None, repr=False)   # the case's input, quantized


def prepare(case) -> tuple[onnx.ModelProto, np.ndarray, np.ndarray, list[str]]:
    """The case's model with every input but the first as an initializer; (model, x, expected, fixes)."""
    m = onnx.ModelProto()
    m.CopyFrom(case.model)
    inputs, outputs = case.data_sets[0]
    g = m.graph
    fixes = []
    names = [i.name for i in g.input]
    x = np.asarray(inputs[0])
    x_type = g.input[0].type.tensor_type.elem_type
    cast = x_type not in _FLOATS
    if cast:
        fixes.append(f"input cast from {TensorProto.DataType.Name(x_type)} to FLOAT")
        x = x.astype(np.float32)
        g.input[0].type.tensor_type.elem_type = TensorProto.FLOAT
        for o in g.output:
            if o.type.tensor_type.elem_type == x_type:
                o.type.tensor_type.elem_type = TensorProto.FLOAT
    if len(names) > 1:
        fixes.append(f"inputs {names[1:]} made constants")
    for name, val in zip(names[1:], inputs[1:]):
        val = np.asarray(val)
        vi = next(i for i in g.input if i.name == name)
        if cast and vi.type.tensor_type.elem_type == x_type:
            val = val.astype(np.float32)
        g.initializer.append(numpy_helper.from_array(val, name))
    keep = [i for i in g.input if i.name == names[0]]
    del g.input[:]
    g.input.extend(keep)
    del g.value_info[:]
    return m, x, np.asarray(outputs[0]), fixes


def run_case(case, tmp: Path, cfg: QuantConfig | None = None) -> CaseResult:
    name = case.name
    if not case.data_sets:
        return CaseResult(name, "skipped", "the case has no data set")
    if len(case.model.graph.output) > 1:
        outs = [o.name for o in case.model.graph.output]
        return CaseResult(name, "skipped", f"{len(outs)} outputs {outs}: zkml proves one output tensor")
    model, x, want, fixes = prepare(case)
    path = Path(tmp) / f"{name}.onnx"
    onnx.save(model, path)
    try:
        fg, normalized = import_onnx(path)
        g = quantize(fg, calibrate(fg, normalized, x[None].astype(np.float64)), cfg or QuantConfig())
    except UnsupportedOpError as e:
        return CaseResult(name, "skipped", str(e), fixes=fixes)
    except Exception as e:  # noqa: BLE001 - any other error is a failure with its message
        return CaseResult(name, "failed", f"{type(e).__name__}: {e}", fixes=fixes)
    out = g.outputs[0]
    q, _ = rt.quantize_input(g, x)
    y = rt.dequantize(g, out, rt.run_outputs(g, q)[0])
    t = g.tensors[out]
    if y.size != want.size:
        return CaseResult(name, "failed", f"output size {y.size} != expected {want.size}", fixes=fixes)
    worst = float(np.abs(y.reshape(-1) - want.reshape(-1).astype(np.float64)).max() / t.scale)
    n_req = sum(1 for n in g.nodes if n.op in REQUANTIZING or (n.op == "Concat" and not all(n.params.ident)))
    tol = 1 + n_req
    ops = [n.op for n in g.nodes]
    res = CaseResult(name, "passed", worst_lsb=worst, tol_lsb=tol, fixes=fixes, ir_ops=ops, graph=g, q_input=q)
    if not any(op in ("Conv", "Dense", "ConvTranspose") for op in ops):
        xq = rt.dequantize(g, g.inputs[0], q)
        ref = run_float(normalized, xq[None], [out])[out][0]
        ref = np.clip(ref, t.scale * -t.zero_point, t.scale * (t.qmax - t.zero_point))
        res.exact_lsb = float(np.abs(y.reshape(-1) - ref.reshape(-1)).max() / t.scale)
        consts = any(n.op == "Clip" or (n.op == "IndexMap" and min(n.params.idx, default=0) < 0)
                     or (n.op == "Concat" and n.params.const) for n in g.nodes)
        res.exact_tol = 0.5 * n_req + 0.02 + (0.5 if consts else 0.0)
        if res.exact_lsb > res.exact_tol:
            res.status, res.reason = "failed", (f"error {res.exact_lsb:.3f} LSB against onnxruntime on the "
                                                f"dequantized input > {res.exact_tol} LSB")
    if worst > tol:
        res.status, res.reason = "failed", f"worst error {worst:.3f} LSB > {tol} LSB"
    return res


# ------------------------------------------------------------------ reporting (shared by the op suites)
def status_of(r) -> str:
    """A CaseResult's status, or "not run" for a (status, name, reason) tuple a suite kept out."""
    return r[0] if isinstance(r, tuple) else r.status


def summary_line(op: str, results) -> str:
    import collections
    c = collections.Counter(status_of(r) for r in results)
    not_run = f"{c['not run']:3d} not run " if c["not run"] else ""
    return (f"{op:18s} {len(results):3d} cases: {c['passed']:3d} passed {c['skipped']:3d} skipped "
            f"{not_run}{c['failed']:3d} failed")


def case_line(r) -> str:
    if isinstance(r, tuple):
        return f"    not run {r[1]}: {r[2]}"
    extra = "" if r.status != "passed" else \
        f"{r.worst_lsb:.3f}/{r.tol_lsb} LSB" + ("" if r.exact_lsb is None else
                                                f", exact {r.exact_lsb:.3f}/{r.exact_tol} LSB")
    return f"    {r.status:7s} {r.name} {extra}{r.reason}{'  [' + '; '.join(r.fixes) + ']' if r.fixes else ''}"
