"""Execute the integer IR on integer inputs (numpy int64 / Python ints, no floats)."""
from __future__ import annotations

import numpy as np

from zkml.errors import InputError
from zkml.ir import Graph
from zkml.ops import REGISTRY


def quantize_input(graph: Graph, x: np.ndarray) -> tuple[np.ndarray, int]:
    """Float input -> unsigned integers of the input tensor. Returns (q, number clipped)."""
    t = graph.tensors[graph.inputs[0]]
    x = np.asarray(x, dtype=np.float64)
    if x.size != t.size:
        raise InputError(f"input has {x.size} values, the model expects {t.size} (shape {t.shape})")
    if not np.all(np.isfinite(x)):
        raise InputError(f"input holds {int((~np.isfinite(x)).sum())} NaN or infinite values")
    with np.errstate(over="ignore"):          # huge finite inputs clip like any out-of-range value
        q = np.round(x.reshape(t.shape) / t.scale) + t.zero_point
    clipped = int(((q < 0) | (q > t.qmax)).sum())
    return np.clip(q, 0, t.qmax).astype(np.int64), clipped


def check_integer_input(graph: Graph, q: np.ndarray) -> np.ndarray:
    t = graph.tensors[graph.inputs[0]]
    q = np.asarray(q)
    if q.size != t.size:
        raise InputError(f"integer input has {q.size} values, the model expects {t.size}")
    if not np.issubdtype(q.dtype, np.integer):
        raise InputError("integer input must hold integers")
    if q.min() < 0 or q.max() > t.qmax:
        raise InputError(f"integer input out of range: values must lie in [0, {t.qmax}] "
                         f"(got {int(q.min())}..{int(q.max())})")
    return q.reshape(t.shape).astype(np.int64)


def run(graph: Graph, q_input: np.ndarray) -> dict[str, np.ndarray]:
    """Run every node; return all tensors (integer arrays in their IR shapes)."""
    env = {graph.inputs[0]: check_integer_input(graph, q_input)}
    for node in graph.nodes:
        op = REGISTRY[node.op]
        out = op.kernel(node.params, *[env[i] for i in node.inputs])
        t = graph.tensors[node.output]
        out = np.asarray(out, dtype=np.int64).reshape(t.shape)
        if out.size and (out.min() < 0 or out.max() > t.qmax):  # a kernel bug, never user input
            raise AssertionError(f"kernel of {node.op} '{node.name}' left the range of {t.bits} bits")
        env[node.output] = out
    return env


def run_outputs(graph: Graph, q_input: np.ndarray) -> list[np.ndarray]:
    env = run(graph, q_input)
    return [env[o] for o in graph.outputs]


def dequantize(graph: Graph, name: str, q: np.ndarray) -> np.ndarray:
    t = graph.tensors[name]
    return t.scale * (np.asarray(q, dtype=np.float64) - t.zero_point)


def postprocess(graph: Graph, y: np.ndarray) -> np.ndarray:
    """Float post-processing left to the caller (a final Softmax), applied to dequantized y."""
    post = graph.meta.get("postprocess")
    if not post:
        return y
    if post["op"] == "softmax":
        z = y - y.max(axis=post["axis"], keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=post["axis"], keepdims=True)
    raise ValueError(f"unknown postprocess {post}")
