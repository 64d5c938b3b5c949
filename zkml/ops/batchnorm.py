"""BatchNormalization (inference): y = a[c] * x + d[c] per channel (axis 1), with
    a[c] = scale[c] / sqrt(var[c] + epsilon),   d[c] = B[c] - mean[c] * a[c]

It is not an IR operator of its own. onnx_import
  - folds it into the preceding Conv (W[m] *= a[m], b[m] = a[m]*b[m] + d[m]) or Dense
    (Gemm/MatMul with a 2-D output, same per output column) when that producer's output has
    no other use and no fused Relu/Clip;
  - lowers every other BatchNormalization to a depthwise 1x1 Conv with weight a[c] and bias
    d[c] (`as_conv`): its integer kernel is the per-channel affine requantization
        y = clamp(floor(((x - x_zp) * (wq[c] - w_zp[c]) + bias[c]) * mult[c] + 2^(s-1)) / 2^s) + zp, ...)
    (zkml/ops/conv.py); a single-value weight channel quantizes exactly to +-(2^bits - 1),
    and its weights are always quantized per channel.
"""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOpError
from ..fgraph import FNode
from . import onnx_rule
from ._window import attr, guarded


@onnx_rule("BatchNormalization")
@guarded
def batchnorm_rule(node, g, opset):
    x = node.input[0]
    if int(attr(node, "training_mode", 0)) or len([o for o in node.output if o]) > 1:
        raise UnsupportedOpError("BatchNormalization", opset, node.name,
                                 "training mode (running statistics outputs) is not supported")
    if x in g.constants or any(i not in g.constants for i in node.input[1:5]):
        raise UnsupportedOpError("BatchNormalization", opset, node.name,
                                 "scale, bias, mean and variance must be constants")
    scale, bias, mean, var = (g.constants[i].astype(np.float64).reshape(-1) for i in node.input[1:5])
    eps = float(attr(node, "epsilon", 1e-5))
    if len({scale.size, bias.size, mean.size, var.size}) != 1 or not np.all(var + eps > 0):
        raise UnsupportedOpError("BatchNormalization", opset, node.name,
                                 "scale, bias, mean and variance must have one value per channel, variance + "
                                 "epsilon > 0")
    a = scale / np.sqrt(var + eps)
    d = bias - mean * a
    shape = g.shapes.get(x)
    if shape is None or len(shape) < 2 or shape[1] != a.size:
        raise UnsupportedOpError("BatchNormalization", opset, node.name,
                                 f"input shape {shape} does not have {a.size} channels on axis 1")
    return [FNode("BatchNorm", node.name, [x], node.output[0], {"a": a, "d": d},
                  [f"BatchNormalization '{node.name}'"])]


def can_fold(producer: FNode, bn: FNode, shapes: dict) -> bool:
    """Whether `bn` can be folded into `producer` (whose only consumer it is)."""
    if producer.attrs.get("relu") or producer.attrs.get("clip"):
        return False
    if producer.op == "Conv":
        return producer.attrs["W"].shape[0] == bn.attrs["a"].size
    if producer.op == "Dense":
        out = shapes.get(producer.output)
        return out is not None and len(out) == 2 and out[1] == bn.attrs["a"].size
    return False


def fold(producer: FNode, bn: FNode) -> None:
    """W[m] *= a[m]; b[m] = a[m] * b[m] + d[m] (Conv weights [M, ...] and Dense W [n_out, n_in])."""
    a, d = bn.attrs["a"], bn.attrs["d"]
    producer.attrs["W"] = producer.attrs["W"] * a[:, None]
    producer.attrs.pop("w_grid", None)     # the weights left a pre-quantized model's grid
    producer.attrs["b"] = producer.attrs["b"] * a + d


def as_conv(bn: FNode, shapes: dict) -> FNode:
    """The standalone per-channel affine map as a depthwise 1x1 Conv FNode."""
    from .conv import pointwise_geometry
    a, d = bn.attrs["a"], bn.attrs["d"]
    return FNode("Conv", bn.name, list(bn.inputs), bn.output,
                 {"W": a.reshape(-1, 1), "b": d.copy(), "geom": pointwise_geometry(shapes[bn.inputs[0]]),
                  "group": a.size, "relu": False, "per_channel": True}, list(bn.onnx))
