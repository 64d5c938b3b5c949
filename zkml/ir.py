"""The integer IR: small typed dataclasses, saved as JSON (`build/model.ir.json`).

Every tensor is an array of unsigned integers in [0, 2**bits) with a dequantization
rule real = scale * (q - zero_point). Scales are metadata for dequantizing only: no
computation after quantization uses a float. Each node's integer semantics is defined by
its operator in `zkml/ops/` (one file per operator: params, kernel, bound rule, circom).
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import BitWidthError, BuildError, ModelError

IR_VERSION = 1
# BN254 scalar field: r ~ 2^253.6. Every integer the circuit represents must stay below
# 2^FIELD_SAFE_BITS so that field arithmetic equals integer arithmetic and every
# decomposition into bits is unique.
FIELD_SAFE_BITS = 252
# the most values one tensor may hold (as zkml/onnx_import.py allows): a larger shape in an IR
# file can only be hand-written, and would make the runtime allocate it
MAX_TENSOR_VALUES = 1 << 24
BN254_R = 21888242871839275222246405745257275088548364400416034343698204186575808495617


@dataclass
class Tensor:
    name: str
    shape: list[int]
    bits: int
    scale: float
    zero_point: int

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def qmax(self) -> int:
        return (1 << self.bits) - 1


@dataclass
class Node:
    op: str                 # IR operator name, a key of zkml.ops.REGISTRY
    name: str               # unique IR node name (from the ONNX node that produced the output)
    inputs: list[str]
    output: str
    params: Any             # the operator's Params dataclass
    onnx: list[str] = field(default_factory=list)  # "OpType 'name'" of every ONNX node fused here


@dataclass
class Graph:
    inputs: list[str]
    outputs: list[str]
    tensors: dict[str, Tensor]
    nodes: list[Node]
    meta: dict = field(default_factory=dict)

    def producer(self, tensor: str) -> Node | None:
        for n in self.nodes:
            if n.output == tensor:
                return n
        return None

    # -- serialization -------------------------------------------------------------
    def to_json(self) -> dict:
        return {
            "ir_version": IR_VERSION,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "tensors": {k: dataclasses.asdict(t) for k, t in self.tensors.items()},
            "nodes": [
                {"op": n.op, "name": n.name, "inputs": n.inputs, "output": n.output,
                 "onnx": n.onnx, "params": dataclasses.asdict(n.params)}
                for n in self.nodes
            ],
            "meta": self.meta,
        }

    @classmethod
    def from_json(cls, d: dict) -> "Graph":
        from .ops import REGISTRY  # the registry holds each operator's Params type

        if not isinstance(d, dict):
            raise BuildError("the IR must be a JSON object; recompile the model")
        if d.get("ir_version") != IR_VERSION:
            raise BuildError(f"IR version {d.get('ir_version')} is not {IR_VERSION}; recompile the model")
        _check_structure(d)
        nodes = []
        for nd in d["nodes"]:
            if nd["op"] not in REGISTRY:
                raise BuildError(f"IR node '{nd['name']}' has unknown op {nd['op']}")
            for k, v in nd["params"].items():   # Params hold integers only (scales are tensor metadata)
                if not _integers(v):
                    raise BuildError(f"IR node '{nd['name']}': parameter {k} is not an integer (or a list of "
                                     "integers); recompile the model")
            params = REGISTRY[nd["op"]].Params(**nd["params"])
            nodes.append(Node(nd["op"], nd["name"], nd["inputs"], nd["output"], params, nd.get("onnx", [])))
        tensors = {k: _tensor(k, t) for k, t in d["tensors"].items()}
        return cls(d["inputs"], d["outputs"], tensors, nodes, d.get("meta", {}))

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), separators=(",", ":")))

    @classmethod
    def load(cls, path: Path) -> "Graph":
        p = Path(path)
        if not p.exists():
            raise BuildError(f"{p} not found: run `zkml compile` first")
        try:
            d = json.loads(p.read_text())
        except (ValueError, RecursionError, OSError) as e:   # JSONDecodeError, bad UTF-8, "[[[[...", a directory
            raise BuildError(f"{p} is not valid JSON ({type(e).__name__}: {str(e)[:200]}); recompile the model") \
                from None
        try:
            return cls.from_json(d)
        except (KeyError, TypeError, AttributeError) as e:
            raise BuildError(f"{p} is not a zkml IR file ({type(e).__name__}: {e}); recompile the model") from None


def _integers(v) -> bool:
    """An int (not a bool) of at most 256 bits, None, or a (nested) list of those. (Every value a
    circuit handles is below 2^252; larger ones can only come from a hand-edited IR.)"""
    if isinstance(v, list):
        return all(_integers(x) for x in v)
    return v is None or (isinstance(v, int) and not isinstance(v, bool) and abs(v) < (1 << 256))


def _strs(v) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _check_structure(d: dict) -> None:
    """The JSON types of an IR file (a hand-edited or garbled one fails here, with its path)."""
    ok = {"inputs": _strs(d.get("inputs")) and len(d["inputs"]) == 1,
          "outputs": _strs(d.get("outputs")) and len(d["outputs"]) >= 1,
          "tensors": isinstance(d.get("tensors"), dict) and all(isinstance(t, dict) for t in d["tensors"].values()),
          "nodes": isinstance(d.get("nodes"), list), "meta": isinstance(d.get("meta", {}), dict)}
    for k, nd in enumerate(d.get("nodes") or []):
        ok[f"nodes[{k}]"] = (isinstance(nd, dict) and all(isinstance(nd.get(f), str) for f in ("op", "name", "output"))
                             and _strs(nd.get("inputs")) and isinstance(nd.get("params"), dict)
                             and _strs(nd.get("onnx", [])))
    meta = d.get("meta") if isinstance(d.get("meta"), dict) else {}
    for k, typ in (("quant", dict), ("calibration", dict), ("postprocess", (dict, type(None)))):
        ok[f"meta.{k}"] = isinstance(meta.get(k), typ) if k in meta else True
    post = meta.get("postprocess")
    if isinstance(post, dict):
        ok["meta.postprocess"] = post.get("op") == "softmax" and isinstance(post.get("axis"), int)
    bad = [k for k, v in ok.items() if not v]
    if bad:
        raise BuildError(f"the IR's {', '.join(bad[:4])} {'is' if len(bad) == 1 else 'are'} malformed; "
                         "recompile the model")


def _tensor(name: str, t: dict) -> Tensor:
    """A Tensor record from JSON, checked: a tampered or hand-written IR fails here, by name."""
    t = Tensor(**t)
    ok = (isinstance(t.name, str) and isinstance(t.shape, list) and t.shape
          and all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in t.shape)
          and math.prod(t.shape) <= MAX_TENSOR_VALUES
          and isinstance(t.bits, int) and not isinstance(t.bits, bool) and 1 <= t.bits <= FIELD_SAFE_BITS - 2
          and isinstance(t.scale, (int, float)) and not isinstance(t.scale, bool) and math.isfinite(t.scale)
          and t.scale > 0 and isinstance(t.zero_point, int) and not isinstance(t.zero_point, bool)
          and 0 <= t.zero_point <= t.qmax)
    if not ok:
        raise BuildError(f"IR tensor '{name}' is malformed (shape {t.shape!r}, bits {t.bits!r}, scale {t.scale!r}, "
                         f"zero point {t.zero_point!r}); recompile the model")
    return t


def _dry_run(op, node: Node, ins: list[Tensor], out: Tensor) -> None:
    """Run the kernel once on zeros: parameters whose shapes do not fit the tensors (a hand-edited
    or mixed-up IR) fail here, by node name, rather than in the middle of `run`."""
    import numpy as np
    try:
        y = op.kernel(node.params, *[np.zeros(t.shape, dtype=np.int64) for t in ins])
        if np.asarray(y).size != out.size:
            raise ValueError(f"the kernel gives {np.asarray(y).size} values for a tensor of {out.size}")
    except OverflowError:
        pass    # a kernel's fixed-width fast path, not a malformed IR (the kernel's own concern)
    except (TypeError, ValueError, KeyError, IndexError, ZeroDivisionError, AttributeError) as e:
        raise BuildError(f"node '{node.name}' ({node.op}): its parameters are malformed or inconsistent with "
                         f"its tensors ({type(e).__name__}: {str(e)[:200]})") from None


def bits_for(v: int) -> int:
    """Bits needed to hold the non-negative integer v (at least 1)."""
    if v < 0:
        raise ValueError("bits_for takes a non-negative integer")
    return max(1, int(v).bit_length())


def verify(graph: Graph) -> dict[str, Any]:
    """Check the graph is well formed and compute every node's bounds.

    Returns {node name: the operator's bound record}. Raises BitWidthError naming the
    node and the bits when any value the circuit handles could reach the field size, and
    BuildError on structural problems (unknown tensors, shape or bit mismatches).
    """
    from .ops import REGISTRY

    # every name is text: an ONNX name that is not valid UTF-8 reaches here as bytes (protobuf
    # gives up decoding it) and would only fail later, in the middle of writing the build
    names = [*graph.inputs, *graph.outputs, *graph.tensors,
             *(x for n in graph.nodes for x in (n.name, n.output, *n.inputs))]
    bad = next((x for x in names if isinstance(x, bytes)), None)
    if bad is not None:
        raise ModelError(f"the name {bad!r} is not text: every ONNX node and tensor name must be valid UTF-8")
    known = set(graph.inputs)
    for name in graph.inputs:
        if name not in graph.tensors:
            raise BuildError(f"graph input '{name}' has no tensor record")
    bounds = {}
    for node in graph.nodes:
        for i in node.inputs:
            if i not in known:
                raise BuildError(f"node '{node.name}' reads '{i}' before it is computed")
        if node.op not in REGISTRY:
            raise BuildError(f"node '{node.name}' has unknown op {node.op}")
        op = REGISTRY[node.op]
        missing = [t for t in (*node.inputs, node.output) if t not in graph.tensors]
        if missing:
            raise BuildError(f"node '{node.name}' uses tensor(s) {missing} that have no tensor record")
        ins = [graph.tensors[i] for i in node.inputs]
        out = graph.tensors[node.output]
        try:
            b = op.bounds(node, ins, out)
        except (TypeError, ValueError, KeyError, IndexError, ZeroDivisionError, AttributeError, OverflowError,
                MemoryError) as e:   # (the last two: a shift or bit width of 2^200 in a hand-edited IR)
            raise BuildError(f"node '{node.name}' ({node.op}): its parameters are malformed or inconsistent with "
                             f"its tensors ({type(e).__name__}: {e})") from None
        if b.max_bits > FIELD_SAFE_BITS:
            raise BitWidthError(node.name, b.max_bits, FIELD_SAFE_BITS, b.what)
        for t in (*ins, out):
            if t.bits > FIELD_SAFE_BITS - 2:
                raise BitWidthError(node.name, t.bits, FIELD_SAFE_BITS - 2, f"tensor '{t.name}'")
        _dry_run(op, node, ins, out)
        bounds[node.name] = b
        known.add(node.output)
    for o in graph.outputs:
        if o not in known:
            raise BuildError(f"graph output '{o}' is never computed")
    return bounds
