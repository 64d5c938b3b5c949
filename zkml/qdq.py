"""Pre-quantized ONNX models: read the model's own scales and zero points instead of calibrating.

Two formats come out of onnxruntime.quantization.quantize_static:

  * QDQ:       float ops surrounded by QuantizeLinear/DequantizeLinear pairs; weights and biases
               are integer initializers behind a DequantizeLinear.
  * QOperator: QLinearConv / QLinearMatMul on integer tensors.

`normalize` rewrites both into the float graph zkml imports anyway, and returns what the model
said about quantization:

  * activation hints  {tensor: Grid(scale, zero_point, qmin, qmax)}  — a Q→DQ pair on tensor x
    becomes x itself, and x keeps the pair's grid (int8 grids are shifted by +128 onto uint8:
    (q - zp)·s = ((q + 128) - (zp + 128))·s, the same real values);
  * weight hints     {constant: WeightGrid(scales, zero_points, axis, qmin, qmax)} — the
    DequantizeLinear of an integer initializer is constant-folded by the importer as usual, and
    the operator rule (Dense/Conv) quantizes the folded float weights back onto exactly this grid,
    so the integers of the circuit are the model's integers.

QOperator nodes are expanded into DQ → float op → Q first, so both formats share one path.
Dynamic quantization (DynamicQuantizeLinear, and the MatMulInteger / ConvInteger it feeds, whose
int32 results carry no output scale: the scales are computed from the data at run time) has no
fixed grid to prove and is refused with that reason.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .errors import UnsupportedOpError

QDQ_OPS = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "MatMulInteger",
           "ConvInteger", "DynamicQuantizeLinear", "QGemm"}
# ops that onnxruntime's QOperator format applies to integer tensors as they are (they commute
# with an affine quantization: they move, select or take the max of values)
_PASSTHROUGH = {"MaxPool", "GlobalMaxPool", "Flatten", "Reshape", "Squeeze", "Unsqueeze", "Transpose",
                "Identity", "Slice", "Gather", "Resize", "Upsample", "SpaceToDepth", "DepthToSpace"}
# onnxruntime contrib operators its static quantizer emits in QOperator format
CONTRIB_OPS = {("com.microsoft", "QGemm")}

_RANGES = {onnx.TensorProto.UINT8: (0, 255), onnx.TensorProto.INT8: (-128, 127),
           onnx.TensorProto.UINT16: (0, 65535), onnx.TensorProto.INT16: (-32768, 32767),
           onnx.TensorProto.INT32: (-(1 << 31), (1 << 31) - 1)}


@dataclass(frozen=True)
class Grid:
    """A per-tensor activation grid, already moved onto unsigned integers [0, 2^bits)."""
    scale: float
    zero_point: int
    bits: int


@dataclass
class WeightGrid:
    scales: np.ndarray        # float64, one per index along `axis` (or one for per-tensor)
    zero_points: np.ndarray   # int64, the model's (signed or unsigned) zero points
    axis: int
    qmin: int
    qmax: int

    def per_output(self, n_out: int, out_axis: int, ndim: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Scales and zero points per output channel when the grid is per tensor or per
        `out_axis`; None when it runs along another axis (the rule then calibrates its own)."""
        if self.scales.size == 1:
            return np.full(n_out, float(self.scales.reshape(-1)[0])), \
                np.full(n_out, int(self.zero_points.reshape(-1)[0]), dtype=np.int64)
        if self.axis % ndim != out_axis % ndim or self.scales.size != n_out:
            return None
        return self.scales.reshape(-1).astype(np.float64), self.zero_points.reshape(-1).astype(np.int64)


def is_prequantized(model: onnx.ModelProto) -> bool:
    return any(n.op_type in QDQ_OPS for n in model.graph.node)


def _attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _unsigned(scale: float, zp: int, elem: int, where: str, opset: int, name: str) -> Grid:
    if elem not in (onnx.TensorProto.UINT8, onnx.TensorProto.INT8, onnx.TensorProto.UINT16,
                    onnx.TensorProto.INT16):
        raise UnsupportedOpError("QuantizeLinear", opset, name,
                                 f"{where}: only 8- and 16-bit activation grids are supported "
                                 f"(element type {onnx.TensorProto.DataType.Name(elem)})")
    lo, hi = _RANGES[elem]
    if not (np.isfinite(scale) and scale > 0):
        raise UnsupportedOpError("QuantizeLinear", opset, name, f"{where}: scale {scale} is not positive")
    return Grid(float(scale), int(zp) - lo, (hi - lo).bit_length())


class _Graph:
    def __init__(self, model: onnx.ModelProto, opset: int):
        self.model, self.g, self.opset = model, model.graph, opset
        self.inits = {i.name: i for i in self.g.initializer}
        self.counter = 0

    def const(self, name: str) -> np.ndarray | None:
        i = self.inits.get(name)
        return None if i is None else numpy_helper.to_array(i)

    def fresh(self, base: str) -> str:
        self.counter += 1
        return f"{base}__zkml{self.counter}"

    def add_init(self, name: str, arr: np.ndarray) -> str:
        t = numpy_helper.from_array(arr, name)
        self.g.initializer.append(t)
        self.inits[name] = t
        return name

    def producers(self) -> dict[str, onnx.NodeProto]:
        return {o: n for n in self.g.node for o in n.output}


def _expand_qoperators(g: _Graph) -> None:
    """QLinearConv / QLinearMatMul -> DQ -> float op -> Q; refuse dynamic quantization."""
    out: list[onnx.NodeProto] = []
    qgrid: dict[str, tuple[str, str]] = {}      # integer tensor -> (scale, zero point) names
    for n in g.g.node:
        t, ins = n.op_type, list(n.input) + [""] * 9
        if t == "QuantizeLinear":
            qgrid[n.output[0]] = (n.input[1], n.input[2] if len(n.input) > 2 else "")
        if t in _PASSTHROUGH and n.input and n.input[0] in qgrid:
            # QOperator format runs these directly on the integers; they commute with the
            # quantization, so: DQ -> the op on reals -> Q on the same grid
            s, z = qgrid[n.input[0]]
            xf, yf = g.fresh(f"{n.input[0]}_dq"), g.fresh(f"{n.output[0]}_f")
            out.append(helper.make_node("DequantizeLinear", [n.input[0], s, z], [xf], name=g.fresh(n.name)))
            out.append(helper.make_node(t, [xf, *n.input[1:]], [yf], name=n.name,
                                        **{a.name: helper.get_attribute_value(a) for a in n.attribute}))
            out.append(helper.make_node("QuantizeLinear", [yf, s, z], [n.output[0]], name=g.fresh(n.name)))
            qgrid[n.output[0]] = (s, z)
            continue
        if t == "DynamicQuantizeLinear":
            raise UnsupportedOpError(t, g.opset, n.name,
                                     "dynamic quantization computes its scales from the data at run time, "
                                     "so there is no fixed grid to prove; quantize with "
                                     "onnxruntime.quantization.quantize_static, or give zkml the float model")
        if t == "QGemm":       # com.microsoft: A, a_s, a_zp, B, b_s, b_zp, C, y_s, y_zp
            x, xs, xz, w, ws, wz, c, ys, yz = ins[:9]
            ins = [x, xs, xz, w, ws, wz, ys, yz, c]
        if t in ("QLinearConv", "QLinearMatMul", "QGemm"):
            if t == "QGemm" and not ins[6]:
                raise UnsupportedOpError(t, g.opset, n.name, "a QGemm without an output scale (float "
                                         "output) is not supported")
            x, xs, xz, w, ws, wz, ys, yz = ins[:8]
            xf, wf, yf = g.fresh(f"{x}_dq"), g.fresh(f"{w}_dq"), g.fresh(f"{n.output[0]}_f")
            out.append(helper.make_node("DequantizeLinear", [x, xs, xz], [xf], name=g.fresh(n.name)))
            axis = 1 if t == "QLinearMatMul" or (t == "QGemm" and not _attr(n, "transB", 0)) else 0
            out.append(helper.make_node("DequantizeLinear", [w, ws, wz], [wf], name=g.fresh(n.name), axis=axis))
            args = [xf, wf]
            if t in ("QLinearConv", "QGemm") and ins[8]:
                b = g.const(ins[8])
                sx, sw = g.const(xs), g.const(ws)
                if b is None or sx is None or sw is None:
                    raise UnsupportedOpError(t, g.opset, n.name, "bias and scales must be constants")
                bs = g.add_init(g.fresh(f"{n.name}_bias_scale"),
                                (np.asarray(sx, np.float32) * np.asarray(sw, np.float32)).astype(np.float32).reshape(-1))
                bz = g.add_init(g.fresh(f"{n.name}_bias_zp"), np.zeros(g.const(bs).shape, dtype=np.int32))
                bf = g.fresh(f"{ins[8]}_dq")
                out.append(helper.make_node("DequantizeLinear", [ins[8], bs, bz], [bf], name=g.fresh(n.name), axis=0))
                args.append(bf)
            if t in ("QLinearConv", "QGemm"):
                out.append(helper.make_node("Conv" if t == "QLinearConv" else "Gemm", args, [yf], name=n.name,
                                            **{a.name: helper.get_attribute_value(a) for a in n.attribute}))
            else:
                out.append(helper.make_node("MatMul", args, [yf], name=n.name))
            out.append(helper.make_node("QuantizeLinear", [yf, ys, yz], [n.output[0]], name=g.fresh(n.name)))
            qgrid[n.output[0]] = (ys, yz)
            continue
        if t in ("ConvInteger", "MatMulInteger"):
            raise UnsupportedOpError(t, g.opset, n.name,
                                     "an int32 result with no output scale is what onnxruntime's dynamic "
                                     "quantization emits (its scales are computed from the data at run time); "
                                     "quantize with quantize_static (QDQ or QOperator format), or give zkml "
                                     "the float model")
        out.append(n)
    del g.g.node[:]
    g.g.node.extend(out)


def normalize(model: onnx.ModelProto, opset: int) -> tuple[dict[str, Grid], dict[str, WeightGrid],
                                                           onnx.ModelProto]:
    """Rewrite `model` in place (see the module docstring); return the (activation, weight) hints
    and the reference model for onnxruntime: the QDQ form with every Q/DQ pair kept (the
    pairs clamp: a quantizer fuses a Relu into a zero point of 0, so the float graph without
    them is not the model), holding every tensor name the float graph uses."""
    g = _Graph(model, opset)
    _expand_qoperators(g)
    reference = onnx.ModelProto()
    reference.CopyFrom(model)
    acts: dict[str, Grid] = {}
    weights: dict[str, WeightGrid] = {}
    graph_outputs = {o.name for o in g.g.output}
    producers = g.producers()
    renames: dict[str, str] = {}
    keep: list[onnx.NodeProto] = []
    dropped_q: set[str] = set()
    for n in g.g.node:
        if n.op_type != "DequantizeLinear":
            keep.append(n)
            continue
        q, s, z = (list(n.input) + ["", ""])[:3]
        scale, zp = g.const(s), (g.const(z) if z else None)
        if scale is None or (z and zp is None):
            raise UnsupportedOpError("DequantizeLinear", opset, n.name, "scale and zero point must be constants")
        if zp is None:
            zp = np.zeros(scale.shape, dtype=np.uint8)
        if q in g.inits:                                   # an integer weight or bias
            qmin, qmax = _RANGES.get(g.inits[q].data_type, (None, None))
            if qmin is None:
                raise UnsupportedOpError("DequantizeLinear", opset, n.name,
                                         f"unsupported integer type of '{q}'")
            axis = int(_attr(n, "axis", 1))
            weights[n.output[0]] = WeightGrid(np.asarray(scale, np.float64), np.asarray(zp, np.int64),
                                              axis, qmin, qmax)
            keep.append(n)                                 # constant-folded by the importer
            continue
        p = producers.get(q)
        if p is None or p.op_type != "QuantizeLinear":
            raise UnsupportedOpError("DequantizeLinear", opset, n.name,
                                     f"its input '{q}' is neither an integer constant nor the output of a "
                                     "QuantizeLinear; only QDQ pairs and quantized constants are supported")
        ps, pz = g.const(p.input[1]), (g.const(p.input[2]) if len(p.input) > 2 and p.input[2] else None)
        if pz is None:
            pz = np.zeros((), dtype=np.uint8)
        if scale.size != 1 or ps.size != 1:
            raise UnsupportedOpError("QuantizeLinear", opset, p.name,
                                     "per-channel activation quantization is not supported (per tensor only)")
        if float(ps.reshape(-1)[0]) != float(scale.reshape(-1)[0]) or int(pz.reshape(-1)[0]) != int(zp.reshape(-1)[0]):
            raise UnsupportedOpError("DequantizeLinear", opset, n.name,
                                     "its scale/zero point differ from those of the QuantizeLinear feeding it")
        x = p.input[0]
        grid = _unsigned(float(scale.reshape(-1)[0]), int(zp.reshape(-1)[0]),
                         helper.np_dtype_to_tensor_dtype(pz.dtype), f"tensor '{x}'", opset, p.name)
        if acts.get(x, grid) != grid:
            raise UnsupportedOpError("QuantizeLinear", opset, p.name, f"tensor '{x}' is quantized on two grids")
        acts[x] = grid
        renames[n.output[0]] = x
        dropped_q.add(p.output[0])
        if n.output[0] in graph_outputs:                    # keep the output's name
            keep.append(helper.make_node("Identity", [x], [n.output[0]], name=n.name))
            acts[n.output[0]] = grid
    out = []
    for n in keep:
        if n.op_type == "QuantizeLinear" and n.output[0] in dropped_q:
            continue
        if n.op_type == "QuantizeLinear":
            raise UnsupportedOpError("QuantizeLinear", opset, n.name,
                                     "its integer output feeds something other than a DequantizeLinear")
        for k, i in enumerate(n.input):
            if i in renames:
                n.input[k] = renames[i]
        out.append(n)
    del g.g.node[:]
    g.g.node.extend(out)
    for o in g.g.output:
        if o.name in dropped_q:
            raise UnsupportedOpError("QuantizeLinear", opset, o.name,
                                     "the model outputs integers; zkml expects the float output (end with a "
                                     "DequantizeLinear)")
    # the value_info of removed integer tensors would confuse shape inference: drop it
    live = {t for n in g.g.node for t in [*n.input, *n.output]}
    keep_vi = [v for v in g.g.value_info if v.name in live]
    del g.g.value_info[:]
    g.g.value_info.extend(keep_vi)
    return acts, weights, reference
