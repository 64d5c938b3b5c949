"""Visibility per tensor: what the proof reveals of the input, the weights and the output.

    input    private (default) | public | hashed
    weights  constant (default) | public | private | hashed
    output   public (default)  | private | hashed

* constant: the weights are compile-time constants of the circuit; the verifying key binds them
  (cheapest: a product by a constant costs no constraint).
* public: the tensor's values are public signals, packed ~253/bits per field element
  (zkml/packing.py). The input and weights are always packed; the output follows
  `--no-pack-outputs`.
* private: the values are private witness signals and nothing about them is published.
* hashed: one public signal, the Poseidon commitment of the packed values (zkml/poseidon.py,
  circuits/commit.circom): the user publishes the commitment of their weights or input, and
  the proof shows the output was computed from the committed values.

Weights that are not constants become private witness inputs `w<k>` of the circuit (one array per
weighted layer k, range-checked to the layer's weight bits) and the layer multiplies signal x
signal: plain (circuits/dense_w.circom, circuits/conv_w.circom: one constraint per product) or
stranded (circuits/strands.circom: one constraint per NL products; zkml/strands.py picks per
layer). The weight matrices of Dense layers (Gemm, MatMul) and Conv kernels become signals;
biases, zero points and requantization multipliers stay constants bound by the verifying key.
A ConvTranspose with non-constant weights is refused by name.

Public signals, in order (build.json `public_segments`): the output segment, then the input
segment, then the weights segment; each is empty (private / constant), its packed words
(public) or one commitment (hashed).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .errors import BitWidthError, UnsupportedOpError, ZkmlError
from .ir import FIELD_SAFE_BITS, Graph
from .ops import Bounds
from .ops._requant import requant_args, requant_bounds
from .packing import lanes_per_word, n_words, pack, public_layout, to_public
from .poseidon import commit_words

INPUT_MODES = ("private", "public", "hashed")
WEIGHT_MODES = ("constant", "public", "private", "hashed")
OUTPUT_MODES = ("public", "private", "hashed")
SIGNAL_WEIGHT_OPS = ("Dense", "Conv")
WEIGHTED_OPS = ("Dense", "Conv", "ConvTranspose")


class VisibilityError(ZkmlError):
    """An unknown visibility mode, or one the model's operators do not support."""


@dataclass(frozen=True)
class Visibility:
    input: str = "private"
    weights: str = "constant"
    output: str = "public"

    def check(self) -> "Visibility":
        for what, v, modes in (("input", self.input, INPUT_MODES), ("weights", self.weights, WEIGHT_MODES),
                               ("output", self.output, OUTPUT_MODES)):
            if v not in modes:
                raise VisibilityError(f"--{what} {v!r}: choose one of {', '.join(modes)}")
        return self

    @property
    def signal_weights(self) -> bool:
        return self.weights != "constant"

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_meta(cls, meta: dict) -> "Visibility":
        v = meta.get("visibility") or {}
        if not isinstance(v, dict):
            raise VisibilityError("build.json: 'visibility' is not a record; recompile the model")
        return cls(**{k: v[k] for k in ("input", "weights", "output") if k in v}).check()


# --------------------------------------------------------------------------- weights as signals
def weighted_layers(graph: Graph, vis: Visibility) -> list[tuple[int, object]]:
    """(node index, node) of every layer whose weights become signals (none for constant weights)."""
    if not vis.signal_weights:
        return []
    out = []
    for k, n in enumerate(graph.nodes):
        if n.op in SIGNAL_WEIGHT_OPS:
            out.append((k, n))
        elif n.op in WEIGHTED_OPS:
            raise UnsupportedOpError(n.op, graph.meta.get("opset", 0), n.name,
                                     f"--weights {vis.weights} is implemented for Dense (Gemm, MatMul) and Conv "
                                     "layers only so far; compile with --weights constant")
    if not out:
        raise VisibilityError(f"--weights {vis.weights}: the model has no Dense or Conv layer whose weights could "
                              "be signals; use --weights constant")
    return out


def weight_signal(k: int) -> str:
    """Name of the circuit's private input array holding layer k's weights."""
    return f"w{k}"


def layer_weights(node) -> list[int]:
    """A layer's weights in the order its template reads them: Dense w[j*NIN + k] (DenseW),
    Conv w[m*T + t] (ConvW, T = C/G*KH*KW; zkml/strands.py for the packed templates)."""
    rows = node.params.wq if node.op == "Conv" else node.params.w
    return [int(v) for row in rows for v in row]


def weight_tensors(graph: Graph, vis: Visibility) -> list[dict]:
    """[{name, signal, bits, size, values}] per signal-weight layer, in node order."""
    return [dict(name=n.name, signal=weight_signal(k), bits=n.params.w_bits, size=len(layer_weights(n)),
                 values=layer_weights(n)) for k, n in weighted_layers(graph, vis)]


def signal_weight_bounds(node, ins, out) -> Bounds:
    """Dense with weights as signals: the accumulator range over every weight in [0, 2^w_bits)
    (not only the model's), so no prover-chosen weight can take N outside [0, 2^252)."""
    p = node.params
    xmax, wmax = ins[0].qmax, (1 << p.w_bits) - 1
    amin = amax = None
    for j in range(p.n_out):
        corners = [(x - p.x_zp) * (w - p.w_zp[j]) for x in (0, xmax) for w in (0, wmax)]
        lo_j = (p.n_in * min(corners) + p.bias[j]) * p.mult[j]
        hi_j = (p.n_in * max(corners) + p.bias[j]) * p.mult[j]
        amin = lo_j if amin is None else min(amin, lo_j)
        amax = hi_j if amax is None else max(amax, hi_j)
    b = requant_bounds(amin, amax, p.shift, p.out_zp, p.out_lo, p.out_bits, what="dense accumulator (signal weights)")
    if b.max_bits > FIELD_SAFE_BITS:
        raise BitWidthError(f"node '{node.name}': with weights as signals the {b.what} needs {b.max_bits} bits "
                            f"(> {FIELD_SAFE_BITS}); use --weights constant or fewer bits")
    return b


def signal_weight_component(node, ins, out) -> tuple[str, list]:
    """Template and arguments of a Dense layer taking its weights from the signal port `w`."""
    p = node.params
    b = signal_weight_bounds(node, ins, out)
    return "DenseW", [("ROWS", p.rows), ("NIN", p.n_in), ("NOUT", p.n_out), ("WZP", p.w_zp), ("B", p.bias),
                      ("XZP", p.x_zp), ("M", p.mult), ("K", b.circuit["K"]), *requant_args(b)]


# --------------------------------------------------------------------------- public signals
def tensor_layout(name: str, bits: int, size: int) -> dict:
    return dict(name=name, bits=bits, size=size, packed=True, lanes=lanes_per_word(bits), words=n_words(size, bits))


def segments(graph: Graph, vis: Visibility, pack_outputs: bool = True) -> list[dict]:
    """The public signals, in order: [{kind, mode, words, tensors: [layout]}]."""
    outs = [dict(name=o, bits=graph.tensors[o].bits, size=graph.tensors[o].size) for o in graph.outputs]
    tin = graph.tensors[graph.inputs[0]]
    segs = [dict(kind="output", mode=vis.output,
                 tensors=public_layout(outs, pack_outputs) if vis.output == "public"
                 else [tensor_layout(o["name"], o["bits"], o["size"]) for o in outs]),
            dict(kind="input", mode=vis.input, tensors=[tensor_layout(tin.name, tin.bits, tin.size)]),
            dict(kind="weights", mode=vis.weights,
                 tensors=[tensor_layout(t["name"], t["bits"], t["size"]) for t in weight_tensors(graph, vis)])]
    for s in segs:
        s["words"] = (sum(t["words"] for t in s["tensors"]) if s["mode"] == "public" else
                      1 if s["mode"] == "hashed" else 0)
    return segs


def commitment(tensors: list[dict], values: list[list[int]]) -> int:
    """Poseidon chain over the packed words of several tensors (concatenated in order)."""
    words = [w for t, v in zip(tensors, values) for w in pack([int(x) for x in v], t["bits"])]
    return commit_words(words)


def segment_values(seg: dict, values: list[list[int]]) -> list[int]:
    """The public signals of one segment for the tensors' integer values."""
    if seg["mode"] == "public":
        return to_public(seg["tensors"], values)
    if seg["mode"] == "hashed":
        return [commitment(seg["tensors"], values)]
    return []


def public_signals(segs: list[dict], outputs: list[list[int]], q_input: list[int],
                   weights: list[list[int]]) -> list[int]:
    """Every public signal the circuit must produce, computed in Python (runtime side)."""
    vals = {"output": outputs, "input": [q_input], "weights": weights}
    return [v for s in segs for v in segment_values(s, vals[s["kind"]])]


def split_public(segs: list[dict], public: list[int]) -> dict[str, list[int]]:
    """public.json values -> {segment kind: its signals}; ValueError when the count differs."""
    if sum(s["words"] for s in segs) != len(public):
        raise ValueError(f"{len(public)} public signals, the build's layout has {sum(s['words'] for s in segs)}")
    out, pos = {}, 0
    for s in segs:
        out[s["kind"]] = public[pos:pos + s["words"]]
        pos += s["words"]
    return out
