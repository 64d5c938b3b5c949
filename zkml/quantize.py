"""Calibrated post-training quantization: float graph → integer IR.

Calibration runs onnxruntime on the user's samples and records every tensor's range;
activations get unsigned affine parameters (uint8 by default); Conv/Dense weights go on the
output's grid (constants: requantization by a shift) or get uint affine parameters per output
channel or per tensor (weights as signals; a pre-quantized model keeps its own); biases become
wide integers and requantizations integer (multiplier, shift) pairs. After this pass nothing
computes with a float.
"""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, replace

import numpy as np
import onnx

from .errors import ModelError, UnsupportedOpError
from .fgraph import FGraph
from .ir import Graph, Node, Tensor, verify
from .ops import REGISTRY
from .qparams import affine_params, aligned_weights, multipliers, quantize_weights


@dataclass
class QuantConfig:
    act_bits: int = 8
    weight_bits: int = 8
    per_channel: bool = True
    precision: int = 16        # significant bits of the requantization multipliers (at most)
    # Conv, ConvTranspose, Dense: the shortest multipliers whose rounding adds at most
    # this many output LSB (zkml/qparams.py multipliers); 0 = always `precision` bits (and always 0
    # for a pre-quantized QDQ / QLinear model)
    mult_error: float = 0.125
    # Conv, ConvTranspose, Dense with constant weights: "aligned" puts the weights on the output's
    # grid so that requantization is a pure shift (zkml/qparams.py aligned_weights: ~10 fewer
    # range-check constraints per output, wider integer weights); "affine" keeps uint`weight_bits`
    # weights and integer multipliers (what weights as signals want: each weight bit is a
    # constraint there). "auto": aligned, unless zkml.api.compile sees weights as signals.
    weight_grid: str = "auto"

    def check(self):
        for k in ("act_bits", "weight_bits"):
            v = getattr(self, k)
            if not 2 <= v <= 32:
                raise ModelError(f"{k}={v} is outside the supported range 2..32")
        if not 4 <= self.precision <= 64:
            raise ModelError(f"precision={self.precision} is outside 4..64")
        if not 0 <= self.mult_error <= 0.5:
            raise ModelError(f"mult_error={self.mult_error} is outside 0..0.5 (output LSB)")
        if self.weight_grid not in ("auto", "aligned", "affine"):
            raise ModelError(f"weight_grid={self.weight_grid!r} is not one of auto, aligned, affine")


class CalibrationWarning(UserWarning):
    pass


def fallback_samples(shape: list[int], n: int = 64, seed: int = 0) -> np.ndarray:
    warnings.warn(
        "no calibration data given: calibrating on standard-normal random inputs. Ranges, and so "
        "accuracy, may be poor; pass --calibration FILE with representative inputs.",
        CalibrationWarning, stacklevel=2)
    return np.random.default_rng(seed).standard_normal((n, *shape))


def ort_session(model: onnx.ModelProto, extra_outputs: list[str] = ()):
    import onnxruntime as ort
    m = onnx.ModelProto()
    m.CopyFrom(model)
    have = {o.name for o in m.graph.output}
    vis = {v.name: v for v in m.graph.value_info}
    for name in extra_outputs:
        if name in have:
            continue
        if name in vis:
            m.graph.output.append(vis[name])
        else:
            m.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
        have.add(name)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def run_float(model: onnx.ModelProto, samples: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """Run onnxruntime sample by sample; return {tensor: stacked values}."""
    sess = ort_session(model, names)
    inp = sess.get_inputs()[0]
    dtype = np.float16 if "float16" in inp.type else (np.float64 if "double" in inp.type else np.float32)
    got: dict[str, list] = {n: [] for n in names}
    for s in samples:
        outs = sess.run(names, {inp.name: s.astype(dtype)})
        for n, v in zip(names, outs):
            got[n].append(np.asarray(v, dtype=np.float64))
    return {n: np.stack(v) for n, v in got.items()}


def calibrate(fg: FGraph, model: onnx.ModelProto, samples: np.ndarray) -> dict[str, tuple[float, float]]:
    names = sorted({t for n in fg.nodes for t in [*n.inputs, n.output] if t not in fg.constants}
                   | set(fg.inputs))
    vals = run_float(model, samples, names)
    ranges = {}
    for n, v in vals.items():
        if not np.all(np.isfinite(v)):
            raise ModelError(f"onnxruntime produced NaN/inf for tensor '{n}' on the calibration data")
        ranges[n] = (float(v.min()), float(v.max()))
    return ranges


class Ctx:
    """What an operator's quantization rule may see."""

    def __init__(self, fg: FGraph, ranges, cfg: QuantConfig):
        self.cfg, self.ranges, self.opset = cfg, ranges, fg.opset
        self.constants, self.shapes = fg.constants, fg.shapes
        self.tensors: dict[str, Tensor] = {}
        self.grids = getattr(fg, "act_grids", {})

    def tensor(self, name: str) -> Tensor:
        return self.tensors[name]

    def new_tensor(self, name: str, relu: bool = False) -> Tensor:
        if name in self.grids:             # a pre-quantized model's own grid for this tensor
            gr = self.grids[name]
            t = Tensor(name, list(self.shapes[name]), gr.bits, gr.scale, gr.zero_point)
            self.tensors[name] = t
            return t
        lo, hi = self.ranges[name]
        if relu:
            lo = 0.0
        scale, zp = affine_params(lo, hi, self.cfg.act_bits)
        t = Tensor(name, list(self.shapes[name]), self.cfg.act_bits, scale, zp)
        self.tensors[name] = t
        return t

    def accumulator_weights(self, node: str, W: np.ndarray, x: Tensor, out: Tensor, per_channel: bool, grid=None):
        """Integer weights and requantization of an output round(acc * x_scale * w_scale[j] / out_scale)
        + zero point of one accumulator (Conv, ConvTranspose, Dense), W a [n_out, k] float matrix:
        (wq, w_scale[n_out], w_zp[n_out], w_bits, mult[n_out], shift). On the output's grid
        (multiplier 1) when the config says aligned; else uint weights and the shortest multipliers
        within the config's error budget. A pre-quantized model's `grid` is always kept."""
        if grid is None and self.cfg.weight_grid != "affine":
            try:
                wq, w_scale, w_zp, w_bits, shift = aligned_weights(W, self.cfg.weight_bits, per_channel,
                                                                   x.scale / out.scale)
            except ValueError as e:
                raise ModelError(f"node '{node}': {e}") from None
            return wq, w_scale, w_zp, w_bits, [1] * W.shape[0], shift
        wq, w_scale, w_zp, w_bits = quantize_weights(W, self.cfg.weight_bits, per_channel, grid)
        mult, shift = multipliers(x.scale * w_scale / out.scale, self.cfg.precision, (1 << out.bits) - 1,
                                  self.cfg.mult_error)
        return wq, w_scale, w_zp, w_bits, mult, shift

    def derived_tensor(self, name: str, src: Tensor, zero_point: int | None = None) -> Tensor:
        t = Tensor(name, list(self.shapes[name]), src.bits, src.scale,
                   src.zero_point if zero_point is None else zero_point)
        self.tensors[name] = t
        return t


def quantize(fg: FGraph, ranges: dict, cfg: QuantConfig, meta: dict | None = None) -> Graph:
    cfg.check()
    if fg.act_grids and (cfg.mult_error or cfg.weight_grid != "affine"):
        # a pre-quantized model keeps its weights and full-length multipliers: its integer outputs
        # are to equal onnxruntime's, not to be within a budget of the real ratios
        cfg = replace(cfg, mult_error=0.0, weight_grid="affine")
    if cfg.weight_grid == "auto":
        cfg = replace(cfg, weight_grid="aligned")
    ctx = Ctx(fg, ranges, cfg)
    for i in fg.inputs:
        ctx.new_tensor(i)
    nodes, outputs, post = [], list(fg.outputs), None
    for f in fg.nodes:
        if f.op == "Softmax":
            post = {"op": "softmax", "axis": f.attrs["axis"], "onnx_output": f.output}
            outputs = [f.inputs[0] if o == f.output else o for o in outputs]
            continue
        if f.op not in REGISTRY:
            raise UnsupportedOpError(f.op, fg.opset, f.name)
        params, out = REGISTRY[f.op].quantize(f, ctx)
        nodes.append(Node(f.op, f.name, list(f.inputs), out.name, params, list(f.onnx)))
    g = Graph(list(fg.inputs), outputs, dict(ctx.tensors), nodes,
              {"source": fg.source, "opset": fg.opset, "quant": asdict(cfg),
               "postprocess": post, **(meta or {})})
    verify(g)
    return g
