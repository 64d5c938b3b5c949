"""Load an ONNX model into the canonical float graph (zkml.fgraph).

Steps: read and check the file, upgrade opsets older than 13 with onnx's version
converter, fix the batch dimension to 1, infer shapes, fold constants, map every node
through the operator registry's ONNX rules, then fuse (constant Add into the preceding
Dense/Conv bias; BatchNormalization into the preceding Conv/Dense, else lowered to a depthwise
1x1 Conv; Relu and Clip(min <= 0 <= max) into the preceding Dense/Add/Conv/AvgPool
requantization). Anything unknown raises
UnsupportedOpError naming the op, the opset and the node.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

from .errors import ModelError, UnsupportedOpError
from . import qdq
from .fgraph import FGraph, FNode
from .ops import ONNX_RULES, batchnorm, clip

MIN_OPSET = 13
# nodes that only relabel or carry constants and need no rule of their own
_CONST_OPS = {"Constant"}


def _opset(model: onnx.ModelProto) -> int:
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return imp.version
    return 0


def load_model(path: str | Path) -> onnx.ModelProto:
    """Read, check and normalize an ONNX file (opset >= 13, batch 1, shapes inferred)."""
    p = Path(path)
    if not p.exists():
        raise ModelError(f"{p}: no such file")
    data = p.read_bytes()
    if not data:
        raise ModelError(f"{p}: the file is empty, not an ONNX model")
    try:
        model = onnx.load_model_from_string(data)
    except Exception as e:  # protobuf raises DecodeError and friends
        raise ModelError(f"{p}: not a valid ONNX file ({type(e).__name__}: {str(e)[:200]})") from None
    if not model.graph.node and not model.graph.output:
        raise ModelError(f"{p}: the ONNX graph is empty")
    try:
        onnx.checker.check_model(model)
    except Exception as e:
        raise ModelError(f"{p}: the ONNX checker rejects the model: {str(e).splitlines()[0][:300]}") from None
    for imp in model.opset_import:
        if imp.domain not in ("", "ai.onnx"):
            used = {n.domain for n in model.graph.node}
            if imp.domain in used:  # (onnxruntime's QGemm is read by zkml/qdq.py)
                n = next((n for n in model.graph.node if n.domain == imp.domain
                          and (n.domain, n.op_type) not in qdq.CONTRIB_OPS), None)
                if n is None:
                    continue
                raise UnsupportedOpError(f"{imp.domain}.{n.op_type}", imp.version, n.name or n.op_type,
                                         "custom operator domains are not supported")
    opset = _opset(model)
    if opset < MIN_OPSET:
        try:
            from onnx import version_converter
            model = version_converter.convert_version(model, MIN_OPSET)
        except Exception as e:
            raise ModelError(f"{p}: opset {opset} is older than {MIN_OPSET} and onnx's version converter "
                             f"could not upgrade it ({str(e).splitlines()[0][:200]})") from None
    _fix_batch(model)
    try:
        model = shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception as e:
        raise ModelError(f"{p}: ONNX shape inference failed: {str(e).splitlines()[0][:300]}") from None
    return model


def _fix_batch(model: onnx.ModelProto) -> None:
    inits = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    for vi in list(inputs) + list(model.graph.output):
        dims = vi.type.tensor_type.shape.dim
        for k, d in enumerate(dims):
            if d.HasField("dim_value") and d.dim_value > 0:
                continue
            if k == 0 or vi in model.graph.output:
                d.ClearField("dim_param")
                d.dim_value = 1
            else:
                raise ModelError(f"input '{vi.name}' has a dynamic dimension {k} ('{d.dim_param}'); "
                                 "only the batch dimension may be dynamic (it is fixed to 1)")
    # stale value_info may carry the symbolic batch; inference recomputes it
    del model.graph.value_info[:]


def _shape_of(vi) -> list[int] | None:
    tt = vi.type.tensor_type
    if not tt.HasField("shape"):
        return None
    dims = []
    for d in tt.shape.dim:
        if not d.HasField("dim_value"):
            return None
        dims.append(int(d.dim_value))
    return dims


def _fold(node: onnx.NodeProto, consts: dict, opset: int) -> list[np.ndarray]:
    """Evaluate a node whose inputs are all constants with onnx's reference evaluator."""
    if node.op_type == "Constant":
        attr = node.attribute[0]
        if attr.name == "value":
            return [numpy_helper.to_array(attr.t)]
        return [np.array(onnx.helper.get_attribute_value(attr))]
    from onnx.reference import ReferenceEvaluator
    try:
        ev = ReferenceEvaluator(node)
        return list(ev.run(None, {i: consts[i] for i in node.input if i}))
    except Exception as e:
        raise UnsupportedOpError(node.op_type, opset, node.name or node.op_type,
                                 f"constant folding failed: {str(e)[:200]}") from None


def import_onnx(path: str | Path) -> tuple[FGraph, onnx.ModelProto]:
    """Return the canonical float graph and the normalized ONNX model (for onnxruntime)."""
    model = load_model(path)
    opset = _opset(model)
    act_grids, weight_grids, reference = {}, {}, model
    if qdq.is_prequantized(model):        # QDQ / QOperator: keep the model's own grids
        act_grids, weight_grids, reference = qdq.normalize(model, opset)
        try:
            model = shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
        except Exception as e:
            raise ModelError(f"{path}: ONNX shape inference failed after reading the Q/DQ nodes: "
                             f"{str(e).splitlines()[0][:300]}") from None
    g = model.graph
    for init in g.initializer:
        if init.data_location == onnx.TensorProto.EXTERNAL:
            raise ModelError(f"{path}: initializer '{init.name}' keeps its data in an external file; zkml reads "
                             "self-contained ONNX files only")
    try:
        consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    except Exception as e:  # e.g. raw_data whose size does not match the dims
        raise ModelError(f"{path}: an initializer cannot be read ({type(e).__name__}: {str(e)[:200]})") from None
    for name, arr in consts.items():
        if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
            raise ModelError(f"{path}: initializer '{name}' holds NaN or infinite values")
    inputs = [i.name for i in g.input if i.name not in consts]
    if len(inputs) != 1:
        raise ModelError(f"{path}: the model has {len(inputs)} inputs {inputs}; zkml supports exactly one")
    shapes: dict[str, list[int]] = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        s = _shape_of(vi)
        if s is not None:
            shapes[vi.name] = s
        if vi.name in inputs and vi.type.tensor_type.elem_type not in (onnx.TensorProto.FLOAT,
                                                                        onnx.TensorProto.DOUBLE,
                                                                        onnx.TensorProto.FLOAT16):
            raise ModelError(f"input '{vi.name}' is not a float tensor; zkml quantizes float inputs")
    for name, s in shapes.items():
        _check_size(name, s)
    fg = FGraph(inputs=inputs, outputs=[o.name for o in g.output], shapes=shapes, nodes=[],
                constants=consts, opset=opset, source=str(path), act_grids=act_grids,
                weight_grids=weight_grids)
    for k, node in enumerate(g.node):
        if not node.name:
            node.name = f"{node.op_type}_{k}"
        if all((not i) or i in consts for i in node.input) and node.op_type not in ("Softmax",):
            for name in node.output:   # refuse before evaluating: folding would allocate the tensor
                _check_size(name, shapes.get(name))
            for name, val in zip(node.output, _fold(node, consts, opset)):
                consts[name] = np.asarray(val)
            continue
        if node.op_type == "Softmax":
            fg.nodes.append(FNode("Softmax", node.name, [node.input[0]], node.output[0],
                                  {"axis": _attr_int(node, "axis", -1)}, [f"Softmax '{node.name}'"]))
            continue
        if node.op_type == "Dropout":
            node = onnx.helper.make_node("Identity", [node.input[0]], [node.output[0]], name=node.name)
        if node.op_type == "Reshape" and node.input[1] not in consts:
            raise UnsupportedOpError("Reshape", opset, node.name, "the target shape must be a constant")
        rule = ONNX_RULES.get(node.op_type)
        if rule is None or node.domain not in ("", "ai.onnx"):
            raise UnsupportedOpError(node.op_type, opset, node.name)
        fg.nodes.extend(rule(node, fg, opset))
    for n in fg.nodes:
        for t in [*n.inputs, n.output]:
            if t not in consts and t not in shapes:
                raise ModelError(f"shape inference left the shape of '{t}' (node '{n.name}') unknown")
    _check_softmax(fg)
    _fuse(fg)
    return fg, reference


# More values than this in one tensor cannot become a Groth16 circuit on one machine (each value
# costs at least a range check of `bits` constraints); refusing early also keeps a tiny hostile
# file that declares a huge shape from allocating memory (calibration samples, constant folding).
MAX_TENSOR_ELEMENTS = 1 << 24


def _check_size(name: str, shape: list[int] | None) -> None:
    if shape is None:
        return
    n = 1
    for d in shape:
        n *= max(int(d), 0)
    if n > MAX_TENSOR_ELEMENTS:
        raise ModelError(f"tensor '{name}' has shape {shape} ({n} values); zkml supports at most "
                         f"2^24 = {MAX_TENSOR_ELEMENTS} values per tensor")


def _attr_int(node, name, default):
    for a in node.attribute:
        if a.name == name:
            return int(a.i)
    return default


def _check_softmax(fg: FGraph) -> None:
    for n in list(fg.nodes):
        if n.op == "Softmax" and n.output not in fg.outputs and not fg.consumers(n.output):
            fg.nodes.remove(n)      # every reader was an ArgMax that reads the logits (zkml/ops/argmax.py)
            continue
        if n.op == "Softmax" and (n.output not in fg.outputs or fg.consumers(n.output)):
            raise UnsupportedOpError("Softmax", fg.opset, n.name,
                                     "Softmax is supported only as the last node (left to the caller)")


def _single_use(fg: FGraph, tensor: str) -> bool:
    return tensor not in fg.outputs and len(fg.consumers(tensor)) == 1


# producers whose output is a requantization: a following Relu / Clip becomes its clamp
_REQUANT_OPS = ("Dense", "Add", "Conv", "AvgPool", "Affine", "Sub", "ConvTranspose")


def _fuse(fg: FGraph) -> None:
    _fuse_pass(fg)
    # a BatchNormalization that could not be folded is a depthwise 1x1 Conv (per-channel affine
    # requantization); fuse again so that a following Relu/Clip becomes its clamp
    lowered = False
    for k, n in enumerate(fg.nodes):
        if n.op == "BatchNorm":
            fg.nodes[k] = batchnorm.as_conv(n, fg.shapes)
            lowered = True
    if lowered:
        _fuse_pass(fg)


def _channel_bias(c: np.ndarray, out_shape: list[int]) -> np.ndarray | None:
    """The per-channel (axis 1) values of a constant added to an [N, C, ...] tensor, or None
    when the constant does not broadcast to it or varies along other axes."""
    try:
        if list(np.broadcast_shapes(c.shape, tuple(out_shape))) != list(out_shape):
            return None
    except ValueError:
        return None
    cb = np.moveaxis(np.broadcast_to(c, out_shape), 1, 0).reshape(out_shape[1], -1)
    return cb[:, 0] if np.all(cb == cb[:, :1]) else None


def _fuse_pass(fg: FGraph) -> None:
    changed = True
    while changed:
        changed = False
        for n in list(fg.nodes):
            users = fg.consumers(n.output)
            if len(users) != 1 or not _single_use(fg, n.output):
                continue
            u = users[0]
            fused = n.attrs.get("relu") or n.attrs.get("clip")
            # Dense -> Add(constant): fold into the bias
            if n.op == "Dense" and u.op == "Add" and not fused:
                other = [i for i in u.inputs if i != n.output]
                if len(other) == 1 and other[0] in fg.constants:
                    c = fg.constants[other[0]].astype(np.float64)
                    out_shape = fg.shapes[u.output]
                    if list(np.broadcast_shapes(c.shape, fg.shapes[n.output])) != list(fg.shapes[n.output]):
                        continue
                    cb = np.broadcast_to(c, out_shape).reshape(-1, n.attrs["W"].shape[0])
                    if not np.all(cb == cb[0]):
                        continue  # varies per row: not a bias
                    n.attrs["b"] = n.attrs["b"] + cb[0]
                    _absorb(fg, n, u)
                    changed = True
                    break
            # Conv -> Add(per-channel constant): fold into the bias
            if n.op == "Conv" and u.op == "Add" and not fused:
                other = [i for i in u.inputs if i != n.output]
                if len(other) == 1 and other[0] in fg.constants:
                    cb = _channel_bias(fg.constants[other[0]].astype(np.float64), fg.shapes[n.output])
                    if cb is not None and fg.shapes[u.output] == fg.shapes[n.output]:
                        n.attrs["b"] = n.attrs["b"] + cb
                        _absorb(fg, n, u)
                        changed = True
                        break
            # Conv / Dense -> BatchNormalization: fold into the weights and bias
            if u.op == "BatchNorm" and batchnorm.can_fold(n, u, fg.shapes):
                batchnorm.fold(n, u)
                _absorb(fg, n, u)
                changed = True
                break
            # requantizing op -> Relu: clamp at the zero point inside the requantization
            if n.op in _REQUANT_OPS and u.op == "Relu" and not n.attrs.get("relu"):
                n.attrs["relu"] = True
                _absorb(fg, n, u)
                changed = True
                break
            # requantizing op -> Clip(min <= 0 <= max): the requantization's clamp to the Clip
            # output's calibrated range is the clip (zkml/ops/clip.py)
            if n.op in _REQUANT_OPS and u.op == "Clip" and clip.fusable(u):
                n.attrs["clip"] = True
                _absorb(fg, n, u)
                changed = True
                break


def _absorb(fg: FGraph, n: FNode, u: FNode) -> None:
    n.output = u.output
    n.onnx = n.onnx + u.onnx
    fg.nodes.remove(u)
