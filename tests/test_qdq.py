"""Pre-quantized models (zkml/qdq.py): onnxruntime's static quantizer in QDQ and QOperator
formats, imported with the model's own scales and zero points (no re-calibration).

Checks, each against something zkml did not compute:
  - the integer weights in the IR are the model's int8 initializers (read with numpy_helper),
    moved onto uint8 by +128 (0 for uint8 weights);
  - the reference runtime's integer outputs equal onnxruntime's on the pre-quantized model
    (its output dequantized by the model's last DequantizeLinear, put back on that grid):
    max difference <= 1 LSB, and exact on >= 99% of the samples (measured: 100% on the LeNet
    example's test split with zkml's default 24-bit multipliers for such models);
  - the circuit's witness equals the runtime bit for bit (api.witness raises otherwise);
  - dynamic quantization and malformed Q/DQ graphs are refused naming the op and node.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import zkml_runtime as rt
from zkml import api
from zkml.errors import UnsupportedOpError
from zkml.ir import Graph
from zkml.onnx_import import import_onnx
from zkml.qparams import quantize_array

from conftest import const, make_model, save, vinfo

ort_quant = pytest.importorskip("onnxruntime.quantization")
LENET = Path(__file__).resolve().parents[1] / "examples" / "lenet"


class _Reader(ort_quant.CalibrationDataReader):
    def __init__(self, name, samples):
        self.it = iter([{name: s} for s in samples])

    def get_next(self):
        return next(self.it, None)


def small_cnn(seed=0) -> onnx.ModelProto:
    """Conv(1->3, 3x3, pad 1) Relu MaxPool(2) Flatten Gemm(48->5) Relu Gemm(5->4)."""
    rng = np.random.default_rng(seed)
    nodes = [helper.make_node("Conv", ["x", "cw", "cb"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Flatten", ["p"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "w1", "b1"], ["h"], name="fc1", transB=1),
             helper.make_node("Relu", ["h"], ["hr"], name="relu2"),
             helper.make_node("Gemm", ["hr", "w2", "b2"], ["y"], name="fc2", transB=1)]
    inits = [const("cw", rng.normal(0, 0.5, (3, 1, 3, 3))), const("cb", rng.normal(0, 0.1, 3)),
             const("w1", rng.normal(0, 0.3, (5, 48))), const("b1", rng.normal(0, 0.1, 5)),
             const("w2", rng.normal(0, 0.5, (4, 5))), const("b2", rng.normal(0, 0.1, 4))]
    return make_model(nodes, [vinfo("x", [1, 1, 8, 8])], [vinfo("y", [1, 4])], inits)


def quantize_static(model: onnx.ModelProto, tmp: Path, samples, *, fmt="QDQ", per_channel=True,
                    act=ort_quant.QuantType.QUInt8, name="q.onnx") -> Path:
    src = save(model, tmp / f"float_{name}")
    dst = tmp / name
    ort_quant.quantize_static(str(src), str(dst), _Reader("x", samples),
                              quant_format=getattr(ort_quant.QuantFormat, fmt), activation_type=act,
                              weight_type=ort_quant.QuantType.QInt8, per_channel=per_channel)
    return dst


def compare_with_onnxruntime(path: Path, g: Graph, xs: np.ndarray, in_name: str) -> tuple[int, float]:
    """(max |runtime - onnxruntime| in output LSBs, fraction of samples with no difference)."""
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ti, to = g.tensors[g.inputs[0]], g.tensors[g.outputs[0]]
    worst, exact = 0, 0
    for x in xs:
        ours = rt.run_outputs(g, quantize_array(x, ti.scale, ti.zero_point, ti.bits))[0].reshape(-1)
        theirs = sess.run(None, {in_name: x})[0].reshape(-1)
        theirs_q = np.round(theirs.astype(np.float64) / to.scale).astype(np.int64) + to.zero_point
        d = int(np.abs(ours - theirs_q).max())
        worst, exact = max(worst, d), exact + (d == 0)
    return worst, exact / len(xs)


def _build(path: Path, tmp: Path, cal=None) -> Graph:
    api.compile(path, tmp, calibration=cal)
    return api.load_graph(tmp)


# ---------------------------------------------------------------- the LeNet example, QDQ


def test_lenet_qdq_weights_are_the_models_integers():
    path = LENET / "model_qdq.onnx"
    fg, _ = import_onnx(path)
    m = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    from zkml.quantize import QuantConfig, quantize
    g = quantize(fg, {}, QuantConfig(precision=24))        # no calibration ranges at all
    checked = 0
    for n in g.nodes:
        if n.op not in ("Conv", "Dense"):
            continue
        w = np.array(n.params.wq if n.op == "Conv" else n.params.w)
        wname = next(k for k in inits if k.endswith("weight_quantized")
                     and inits[k].shape[0] == w.shape[0] and inits[k].size == w.size)
        q8 = inits[wname].reshape(w.shape[0], -1).astype(np.int64)
        assert inits[wname].dtype == np.int8
        np.testing.assert_array_equal(w, q8 + 128)
        np.testing.assert_array_equal(n.params.w_zp, 128 + inits[wname.replace("quantized", "zero_point")].astype(np.int64))
        checked += 1
    assert checked == 5


def test_lenet_qdq_runtime_matches_onnxruntime_integers():
    path = LENET / "model_qdq.onnx"
    fg, _ = import_onnx(path)
    from zkml.quantize import QuantConfig, quantize
    g = quantize(fg, {}, QuantConfig(precision=24))
    d = np.load(LENET / "test_set.npz")
    x = d["x"][:150].reshape(-1, 1, 1, 16, 16)
    worst, exact = compare_with_onnxruntime(path, g, x, "input")
    print(f"\nLeNet QDQ vs onnxruntime over {len(x)} test samples: max {worst} LSB, {exact:.1%} exact")
    assert worst <= 1 and exact >= 0.99


# ---------------------------------------------------------------- small models through circom


@pytest.mark.parametrize("fmt,per_channel,act", [
    ("QDQ", True, "QUInt8"), ("QDQ", False, "QInt8"), ("QOperator", True, "QUInt8")])
def test_small_cnn_prequantized_compiles_and_matches(tmp_path, fmt, per_channel, act):
    rng = np.random.default_rng(1)
    samples = rng.uniform(-1, 1, (32, 1, 1, 8, 8)).astype(np.float32)
    path = quantize_static(small_cnn(), tmp_path, [s for s in samples], fmt=fmt, per_channel=per_channel,
                           act=getattr(ort_quant.QuantType, act))
    kinds = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert ("QLinearConv" in kinds) == (fmt == "QOperator")
    g = _build(path, tmp_path / "build")
    assert g.meta["quant"]["precision"] == 24
    worst, exact = compare_with_onnxruntime(path, g, samples, "x")
    print(f"\n{fmt} per_channel={per_channel} {act}: max {worst} LSB, {exact:.1%} exact")
    assert worst <= 1 and exact >= 0.9
    for k in range(3):                         # circuit witness == runtime (api.witness checks it)
        inp = tmp_path / f"in{k}.json"
        inp.write_text(json.dumps({"input_data": samples[k].tolist()}))
        _, outs = api.witness(tmp_path / "build", inp)
        assert len(outs) == 4


# ---------------------------------------------------------------- refusals


def test_dynamic_quantization_is_refused_by_name(tmp_path):
    src = save(small_cnn(), tmp_path / "f.onnx")
    dst = tmp_path / "dyn.onnx"
    ort_quant.quantize_dynamic(str(src), str(dst), weight_type=ort_quant.QuantType.QUInt8)
    with pytest.raises(UnsupportedOpError) as e:
        import_onnx(dst)
    assert e.value.op in ("DynamicQuantizeLinear", "MatMulInteger", "ConvInteger")
    assert "dynamic quantization" in str(e.value)


def test_quantized_tensor_used_as_integer_is_refused(tmp_path):
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="quant"),
             helper.make_node("Cast", ["q"], ["y"], name="cast", to=TensorProto.FLOAT)]
    inits = [numpy_helper.from_array(np.array(0.1, np.float32), "s"),
             numpy_helper.from_array(np.array(3, np.uint8), "z")]
    m = make_model(nodes, [vinfo("x", [1, 4])], [vinfo("y", [1, 4])], inits)
    with pytest.raises(UnsupportedOpError) as e:
        import_onnx(save(m, tmp_path / "m.onnx"))
    assert e.value.op == "QuantizeLinear" and "quant" in str(e.value)


def test_dequantize_of_a_non_quantized_tensor_is_refused(tmp_path):
    nodes = [helper.make_node("Cast", ["x"], ["xi"], name="cast", to=TensorProto.UINT8),
             helper.make_node("DequantizeLinear", ["xi", "s", "z"], ["y"], name="dq")]
    inits = [numpy_helper.from_array(np.array(0.1, np.float32), "s"),
             numpy_helper.from_array(np.array(3, np.uint8), "z")]
    m = make_model(nodes, [vinfo("x", [1, 4])], [vinfo("y", [1, 4])], inits)
    with pytest.raises(UnsupportedOpError) as e:
        import_onnx(save(m, tmp_path / "m.onnx"))
    assert e.value.op == "DequantizeLinear" and "dq" in str(e.value)
