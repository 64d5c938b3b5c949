"""Sliding-window geometry shared by Conv and the pools (ONNX semantics, 1-D and 2-D).

Every windowed operator is handled as 2-D over an [N, C, H, W] view of its input: a 1-D
operator ([N, C, L]) becomes H = 1 with a kernel of height 1. For output position (oy, ox)
and kernel tap (ky, kx) the input position is

    iy = oy*SH - PT + ky*DH,    ix = ox*SW - PL + kx*DW

A tap is *present* when 0 <= iy < H and 0 <= ix < W; every other tap lies in the padding
(or, with ceil_mode, beyond it). `window_geometry` resolves auto_pad / ceil_mode into
explicit integers (kernel, strides, pads, dilations, output size) exactly as onnxruntime.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..errors import UnsupportedOpError, ZkmlError

# the most values an index table (Pad, Transpose, Concat) may describe, as onnx_import allows per tensor
MAX_VALUES = 1 << 24


def guarded(rule):
    """Wrap an ONNX rule: attributes or constant inputs that do not fit the operator (a hostile
    or broken model; most are caught by onnx's checker and shape inference first) end in a named
    UnsupportedOpError rather than a Python exception."""
    @functools.wraps(rule)
    def wrapper(node, g, opset):
        try:
            return rule(node, g, opset)
        except ZkmlError:
            raise
        except (ValueError, IndexError, TypeError, KeyError, OverflowError, AttributeError, ZeroDivisionError) as e:
            raise UnsupportedOpError(node.op_type, opset, node.name or node.op_type,
                                     f"attributes or constant inputs do not fit the operator "
                                     f"({type(e).__name__}: {str(e)[:160]})") from None
    return wrapper


@dataclass
class Geometry:
    n: int
    c: int
    h: int
    w: int
    kh: int
    kw: int
    sh: int
    sw: int
    pt: int      # pad top (begin of H)
    pl: int      # pad left (begin of W)
    pb: int      # pad bottom (end of H)
    pr: int      # pad right (end of W)
    dh: int
    dw: int
    oh: int
    ow: int

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def attr(node, name, default):
    import onnx
    for a in node.attribute:
        if a.name == name:
            v = onnx.helper.get_attribute_value(a)
            return v.decode() if isinstance(v, bytes) else v
    return default


def window_geometry(node, x_shape: list[int], kernel: list[int] | None, opset: int,
                    ceil_ok: bool = False) -> Geometry:
    """Resolve an ONNX Conv/Pool node's attributes for input shape x_shape = [N, C, *spatial]."""
    op, name = node.op_type, node.name
    nd = len(x_shape) - 2
    if nd not in (1, 2):
        raise UnsupportedOpError(op, opset, name, f"only 1-D and 2-D windows are supported "
                                                  f"(input has {nd} spatial dimensions)")
    kernel = list(kernel if kernel is not None else attr(node, "kernel_shape", None) or [])
    if len(kernel) != nd:
        raise UnsupportedOpError(op, opset, name, f"kernel_shape {kernel} does not match the input rank")
    strides = list(attr(node, "strides", None) or [1] * nd)
    dil = list(attr(node, "dilations", None) or [1] * nd)
    pads = list(attr(node, "pads", None) or [0] * (2 * nd))
    ceil = int(attr(node, "ceil_mode", 0))
    auto = attr(node, "auto_pad", "NOTSET") or "NOTSET"
    if (len(strides), len(dil), len(pads)) != (nd, nd, 2 * nd) or \
            not all(isinstance(v, int) for v in kernel + strides + dil + pads):
        raise UnsupportedOpError(op, opset, name, f"kernel_shape/strides/dilations/pads do not match "
                                                  f"{nd} spatial dimensions")
    if ceil and not ceil_ok:
        raise UnsupportedOpError(op, opset, name, "ceil_mode is not defined for this operator")
    if min(strides + dil + kernel) < 1 or min(pads) < 0:
        raise UnsupportedOpError(op, opset, name, "strides, dilations and kernel must be >= 1, pads >= 0")
    spatial = list(x_shape[2:])
    ext = [(k - 1) * d + 1 for k, d in zip(kernel, dil)]   # the window's extent
    out = []
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = [0] * (2 * nd)
        for i in range(nd):
            o = -(-spatial[i] // strides[i])
            total = max((o - 1) * strides[i] + ext[i] - spatial[i], 0)
            small, big = total // 2, total - total // 2
            pads[i], pads[nd + i] = (small, big) if auto == "SAME_UPPER" else (big, small)
            out.append(o)
    elif auto == "VALID":
        pads = [0] * (2 * nd)
        out = [(spatial[i] - ext[i]) // strides[i] + 1 for i in range(nd)]
    elif auto == "NOTSET":
        for i in range(nd):
            span = spatial[i] + pads[i] + pads[nd + i] - ext[i]
            if ceil:
                o = -(-span // strides[i]) + 1
                if (o - 1) * strides[i] >= spatial[i] + pads[i]:   # the last window must start inside
                    o -= 1
            else:
                o = span // strides[i] + 1
            out.append(o)
    else:
        raise UnsupportedOpError(op, opset, name, f"auto_pad={auto!r} is not supported")
    if min(out) < 1:
        raise UnsupportedOpError(op, opset, name, f"empty output (spatial size {out})")
    if nd == 1:
        return Geometry(x_shape[0], x_shape[1], 1, spatial[0], 1, kernel[0], 1, strides[0], 0, pads[0], 0,
                        pads[1], 1, dil[0], 1, out[0])
    return Geometry(x_shape[0], x_shape[1], spatial[0], spatial[1], kernel[0], kernel[1], strides[0],
                    strides[1], pads[0], pads[1], pads[2], pads[3], dil[0], dil[1], out[0], out[1])


def tap_table(g: Geometry) -> tuple[np.ndarray, np.ndarray]:
    """(index, inside) for every output position p = oy*OW + ox and tap t = ky*KW + kx:
    index[p, t] = iy*W + ix (0 where the tap is not present), inside[p, t] = tap present."""
    oy, ox = np.meshgrid(np.arange(g.oh), np.arange(g.ow), indexing="ij")
    ky, kx = np.meshgrid(np.arange(g.kh), np.arange(g.kw), indexing="ij")
    iy = oy.reshape(-1, 1) * g.sh - g.pt + ky.reshape(1, -1) * g.dh
    ix = ox.reshape(-1, 1) * g.sw - g.pl + kx.reshape(1, -1) * g.dw
    inside = (iy >= 0) & (iy < g.h) & (ix >= 0) & (ix < g.w)
    index = np.where(inside, iy * g.w + ix, 0)
    return index, inside


def padded_counts(g: Geometry) -> np.ndarray:
    """Per output position: the taps inside the padded extent [-pad_begin, size + pad_end)
    (what AveragePool with count_include_pad=1 divides by)."""
    oy, ox = np.meshgrid(np.arange(g.oh), np.arange(g.ow), indexing="ij")
    ky, kx = np.meshgrid(np.arange(g.kh), np.arange(g.kw), indexing="ij")
    iy = oy.reshape(-1, 1) * g.sh - g.pt + ky.reshape(1, -1) * g.dh
    ix = ox.reshape(-1, 1) * g.sw - g.pl + kx.reshape(1, -1) * g.dw
    ok = (iy >= -g.pt) & (iy < g.h + g.pb) & (ix >= -g.pl) & (ix < g.w + g.pr)
    return ok.sum(axis=1)


def geometry_args(g: Geometry) -> list:
    """The template arguments every windowed template takes, in this order."""
    return [("N", g.n), ("C", g.c), ("H", g.h), ("W", g.w), ("OH", g.oh), ("OW", g.ow), ("KH", g.kh),
            ("KW", g.kw), ("SH", g.sh), ("SW", g.sw), ("PT", g.pt), ("PL", g.pl), ("DH", g.dh), ("DW", g.dw)]


def check_windows_nonempty(g: Geometry, op: str, opset: int, name: str) -> None:
    _, inside = tap_table(g)
    if not inside.any(axis=1).all():
        raise UnsupportedOpError(op, opset, name, "a window lies entirely in the padding")

