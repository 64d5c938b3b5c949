"""Slice, Gather (constant indices), Resize / Upsample (mode nearest): pure relabelings, lowered
to the IndexMap IR operator of zkml/ops/layout.py (no constraint, the output keeps the input's
scale and zero point).

Each rule computes, once at import, the source index of every output element:

    Slice   numpy slicing of arange(n).reshape(shape) with the constant starts/ends/axes/steps
            (ONNX Slice clamps exactly as numpy does, negative steps included);
    Gather  np.take(arange(n).reshape(shape), indices, axis) with the constant indices
            (negative indices count from the end; out of range is refused);
    Resize  per resized axis, output position o -> x_ori(o) by coordinate_transformation_mode,
            rounded by nearest_mode, clamped to [0, n - 1] (ONNX's edge padding); the
            tf_crop_and_resize positions outside the input take extrapolation_value (IndexMap
            fill, quantized to the input's grid, refused if outside its calibrated range).

Resize modes `linear` and `cubic` (and `antialias`) are refused: each output is then a weighted
sum of 2^r or 4^r inputs with fractional weights, i.e. a requantizing operator with per-position
weights (a Conv-like template), not a relabeling. Bilinear is a possible follow-up.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import UnsupportedOpError
from ..fgraph import FNode
from . import onnx_rule
from ._window import MAX_VALUES, attr, guarded
from .layout import _const_input as _const, separable_index


def out_shape(node, g) -> list[int]:
    """The output's inferred shape; a 0-d output is held as shape [1] (the IR has no 0-d tensors)."""
    s = g.shapes[node.output[0]]
    if not s:
        g.shapes[node.output[0]] = s = [1]
    return list(s)


def _index_map(node, g, opset, idx: np.ndarray, fill: float = 0.0) -> list[FNode]:
    idx = np.asarray(idx, dtype=np.int64).reshape(-1)
    if idx.size == 0 or idx.size > MAX_VALUES:
        raise UnsupportedOpError(node.op_type, opset, node.name, f"the output has {idx.size} values")
    if idx.size != int(np.prod(out_shape(node, g))):
        raise UnsupportedOpError(node.op_type, opset, node.name,
                                 f"{idx.size} values computed for the inferred output shape {g.shapes[node.output[0]]}")
    return [FNode("IndexMap", node.name, [node.input[0]], node.output[0], {"idx": idx, "fill": float(fill)},
                  [f"{node.op_type} '{node.name}'"])]


def _activation(node, g, opset):
    x = node.input[0]
    if x in g.constants:   # pragma: no cover - a constant input is folded by onnx_import
        raise UnsupportedOpError(node.op_type, opset, node.name, "the data input is a constant")
    return x, list(g.shapes[x])


@onnx_rule("Slice")
@guarded
def slice_rule(node, g, opset):
    x, shape = _activation(node, g, opset)
    r = len(shape)
    starts = _const(node, g, 1, opset, "starts")
    ends = _const(node, g, 2, opset, "ends")
    if starts is None or ends is None:
        raise UnsupportedOpError("Slice", opset, node.name, "starts and ends are required")
    axes = _const(node, g, 3, opset, "axes")
    steps = _const(node, g, 4, opset, "steps")
    starts, ends = [int(v) for v in starts.reshape(-1)], [int(v) for v in ends.reshape(-1)]
    axes = list(range(len(starts))) if axes is None else [int(a) for a in axes.reshape(-1)]
    steps = [1] * len(starts) if steps is None else [int(v) for v in steps.reshape(-1)]
    if not len(starts) == len(ends) == len(axes) == len(steps) or any(not -r <= a < r for a in axes) \
            or len({a % r for a in axes}) != len(axes) or 0 in steps:
        raise UnsupportedOpError("Slice", opset, node.name, f"starts {starts}, ends {ends}, axes {axes}, "
                                                            f"steps {steps} do not fit an input of rank {r}")
    sl = [slice(None)] * r
    for s, e, a, st in zip(starts, ends, axes, steps):
        sl[a % r] = slice(s, e, st)
    return _index_map(node, g, opset, np.arange(int(np.prod(shape))).reshape(shape)[tuple(sl)])


@onnx_rule("Gather")
@guarded
def gather_rule(node, g, opset):
    x, shape = _activation(node, g, opset)
    ind = _const(node, g, 1, opset, "the indices (an embedding lookup by a computed index)")
    axis = int(attr(node, "axis", 0))
    if not -len(shape) <= axis < len(shape):
        raise UnsupportedOpError("Gather", opset, node.name, f"axis {axis} for an input of rank {len(shape)}")
    ind = ind.astype(np.int64)
    n = shape[axis]
    if ind.size and (ind.min() < -n or ind.max() >= n):
        raise UnsupportedOpError("Gather", opset, node.name, f"an index lies outside [-{n}, {n - 1}]")
    return _index_map(node, g, opset, np.take(np.arange(int(np.prod(shape))).reshape(shape), ind, axis=axis))


_COORD_MODES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
                "tf_crop_and_resize")
_NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def nearest_source(o: int, n: int, m: int, scale: float, mode: str, nearest: str,
                   roi: tuple[float, float] = (0.0, 1.0)) -> int:
    """Source index along one axis for output position o (input length n, output length m, scale
    factor `scale`), per the ONNX Resize specification; -1 = extrapolation (tf_crop_and_resize)."""
    if mode == "align_corners":
        x = 0.0 if m == 1 else o * (n - 1) / (m - 1)
    elif mode == "asymmetric":
        x = o / scale
    elif mode == "tf_crop_and_resize":
        x = (roi[1] - roi[0]) * (n - 1) / 2 if m == 1 else o * (roi[1] - roi[0]) * (n - 1) / (m - 1)
        x += roi[0] * (n - 1)
        if x < 0 or x > n - 1:
            return -1
    elif mode == "pytorch_half_pixel":
        x = -0.5 if m == 1 else (o + 0.5) / scale - 0.5
    elif mode == "half_pixel":
        x = (o + 0.5) / scale - 0.5
    else:  # half_pixel_symmetric
        adjustment = m / (scale * n)
        x = n / 2 * (1 - adjustment) + (o + 0.5) / scale - 0.5
    lo = math.floor(x)
    frac = x - lo
    if frac == 0:
        k = lo
    elif nearest == "floor":
        k = lo
    elif nearest == "ceil":
        k = lo + 1
    elif nearest == "round_prefer_floor":
        k = lo if frac <= 0.5 else lo + 1
    else:
        k = lo if frac < 0.5 else lo + 1
    return min(max(k, 0), n - 1)


def _resize_scales(node, g, opset, shape, oshape):
    """(scale factor per axis, roi [2r]) of a Resize (opset 10+) or Upsample node."""
    r = len(shape)
    if node.op_type == "Upsample" or opset < 11:    # inputs (X, scales)
        scales, sizes, roi = _const(node, g, 1, opset, "scales"), None, None
    else:
        roi = _const(node, g, 1, opset, "roi")
        scales = _const(node, g, 2, opset, "scales")
        sizes = _const(node, g, 3, opset, "sizes")
    if scales is not None and scales.size == 0:
        scales = None
    if sizes is not None and sizes.size == 0:
        sizes = None
    if (scales is None) == (sizes is None):
        raise UnsupportedOpError(node.op_type, opset, node.name, "exactly one of scales and sizes must be given")
    axes = attr(node, "axes", None)
    axes = list(range(r)) if axes is None else [int(a) % r for a in axes]
    full_roi = [0.0] * r + [1.0] * r
    if roi is not None and roi.size:
        roi = [float(v) for v in roi.reshape(-1)]
        if len(roi) != 2 * len(axes):
            raise UnsupportedOpError(node.op_type, opset, node.name, f"roi of {len(roi)} values for axes {axes}")
        for k, a in enumerate(axes):
            full_roi[a], full_roi[r + a] = roi[k], roi[len(axes) + k]
    fs = [1.0] * r
    if scales is not None:
        v = [float(s) for s in scales.reshape(-1)]
        if len(v) != len(axes) or min(v) <= 0:
            raise UnsupportedOpError(node.op_type, opset, node.name, f"scales {v} for axes {axes}")
        for k, a in enumerate(axes):
            fs[a] = v[k]
    else:
        v = [int(s) for s in sizes.reshape(-1)]
        if len(v) != len(axes):
            raise UnsupportedOpError(node.op_type, opset, node.name, f"sizes {v} for axes {axes}")
        ratios = {a: v[k] / shape[a] for k, a in enumerate(axes)}
        policy = attr(node, "keep_aspect_ratio_policy", "stretch")
        if policy == "not_larger":
            ratios = {a: min(ratios.values()) for a in axes}
        elif policy == "not_smaller":
            ratios = {a: max(ratios.values()) for a in axes}
        for a in axes:
            fs[a] = ratios[a]
    return fs, full_roi


@onnx_rule("Resize", "Upsample")
@guarded
def resize_rule(node, g, opset):
    x, shape = _activation(node, g, opset)
    mode = attr(node, "mode", "nearest")
    if mode != "nearest":
        raise UnsupportedOpError(node.op_type, opset, node.name,
                                 f"mode {mode!r}: only mode 'nearest' (a relabeling) is supported; linear and cubic "
                                 "interpolation are weighted sums with fractional weights (not implemented)")
    if int(attr(node, "antialias", 0)):
        raise UnsupportedOpError(node.op_type, opset, node.name, "antialias is not supported")
    cmode = attr(node, "coordinate_transformation_mode", "half_pixel" if node.op_type == "Resize" and opset >= 11
                 else "asymmetric")
    nearest = attr(node, "nearest_mode", "round_prefer_floor" if opset >= 11 else "floor")
    if cmode not in _COORD_MODES or nearest not in _NEAREST_MODES:
        raise UnsupportedOpError(node.op_type, opset, node.name,
                                 f"coordinate_transformation_mode {cmode!r} / nearest_mode {nearest!r}")
    oshape = out_shape(node, g)
    r = len(shape)
    if len(oshape) != r:
        raise UnsupportedOpError(node.op_type, opset, node.name, f"output shape {oshape} for input {shape}")
    fs, roi = _resize_scales(node, g, opset, shape, oshape)
    per_axis = [np.array([nearest_source(o, shape[a], oshape[a], fs[a], cmode, nearest, (roi[a], roi[r + a]))
                          for o in range(oshape[a])]) for a in range(r)]
    fill = float(attr(node, "extrapolation_value", 0.0))
    return _index_map(node, g, opset, separable_index(shape, oshape, per_axis), fill)
