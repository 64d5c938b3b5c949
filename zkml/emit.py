"""Emit `main.circom`: one component per IR node, wired through flat signal arrays.

Constant template arguments (weights, index maps) become circom functions named after
the node so the generated file stays readable; every component carries a comment naming
the ONNX nodes it implements and its types.
"""
from __future__ import annotations

import re
from pathlib import Path

import jinja2

from . import __version__
from .ir import Graph, Tensor, verify
from .ops import REGISTRY
from .packing import public_layout
from .toolchain import CIRCUITS_DIR
from .strands import TEMPLATE_FILES as SIGNAL_WEIGHT_FILES, check_mode, component as signal_weight_component
from .visibility import Visibility, layer_weights, segments, weight_signal, weighted_layers


def _ident(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_]", "_", name).strip("_")
    return s or "node"


def _safe(text) -> str:
    """Text for a `//` comment: anything but printable ASCII is escaped, so a name taken from
    an ONNX file can never end the comment and inject circuit code (\\n, \\r, U+2028, ...)."""
    out = []
    for ch in str(text):
        o = ord(ch)
        out.append(ch if 0x20 <= o < 0x7f and ch != "\\" else ("\\\\" if ch == "\\" else f"\\u{o:04x}"))
    return "".join(out)


def _circom_value(v) -> str:
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_circom_value(x) for x in v) + "]"
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, int):
        return str(v)
    raise TypeError(f"cannot emit template argument {v!r}")


def _ttype(t: Tensor) -> str:
    return f"uint{t.bits}{t.shape}"


def emit(graph: Graph, pack_outputs: bool = True, visibility: Visibility | None = None,
         strands: str = "auto") -> str:
    """main.circom for the graph; `visibility` (zkml/visibility.py) says which tensors are public,
    private or committed by hash, and whether the weights are constants or signals; `strands`
    (zkml/strands.py) whether signal x signal products may be packed (auto) or stay plain (off)."""
    vis = (visibility or Visibility()).check()
    check_mode(strands)
    bounds = verify(graph)
    src: dict[str, str] = {graph.inputs[0]: "input_range.out"}
    nodes, consts, includes = [], [], ["range.circom"]
    signal_w = {k: weight_signal(k) for k, _ in weighted_layers(graph, vis)}
    if "hashed" in (vis.input, vis.weights, vis.output) or "public" in (vis.input, vis.weights):
        includes.append("commit.circom")
    for k, node in enumerate(graph.nodes):
        op = REGISTRY[node.op]
        ins = [graph.tensors[i] for i in node.inputs]
        out = graph.tensors[node.output]
        var = f"n{k}_{_ident(node.name)}"[:60]
        comment = _safe(f"node '{node.name}': {node.op} <- {', '.join(node.onnx)}; "
                        f"{' x '.join(_ttype(t) for t in ins)} -> {_ttype(out)}"
                        + (f"; weights from signal {signal_w[k]}" if k in signal_w else ""))
        spec = (signal_weight_component(node, ins, out, strands) if k in signal_w
                else op.circom(node, ins, out, bounds[node.name]))
        if spec is None:
            src[node.output] = src[node.inputs[0]]
            nodes.append(dict(comment=comment, template=None, output=_safe(node.output)))
            continue
        template, args = spec
        tfile = SIGNAL_WEIGHT_FILES[template] if k in signal_w else op.template_file
        if tfile not in includes:
            includes.append(tfile)
        rendered = []
        for pname, a in args:
            if isinstance(a, (list, tuple)):
                fname = f"{var}_{pname}"
                consts.append(dict(name=fname, value=_circom_value(a)))
                rendered.append(f"{fname}()")
            else:
                rendered.append(f"{_circom_value(a)} /*{pname}*/")
        ports = [("in", src[node.inputs[0]])] if len(ins) == 1 else \
            [(p, src[i]) for p, i in zip(("a", "b", "c", "d"), node.inputs)]
        if k in signal_w:
            ports.append(("w", f"{signal_w[k]}_range.out"))
        nodes.append(dict(comment=comment, template=template, var=var, args=", ".join(rendered),
                          ports=ports, output=_safe(node.output)))
        src[node.output] = f"{var}.out"
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(CIRCUITS_DIR)),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    tin = graph.tensors[graph.inputs[0]]
    outs = [dict(name=_safe(o), bits=graph.tensors[o].bits, shape=graph.tensors[o].shape,
                 scale=graph.tensors[o].scale, zero_point=graph.tensors[o].zero_point,
                 size=graph.tensors[o].size, src=src[o]) for o in graph.outputs]
    outs = [dict(o, **lay) for o, lay in zip(outs, public_layout(outs, pack_outputs))]
    segs = {s["kind"]: s for s in segments(graph, vis, pack_outputs)}
    srcs = {"output": [src[o] for o in graph.outputs], "input": ["input_range.out"],
            "weights": [f"{w}_range.out" for w in signal_w.values()]}
    for kind, s in segs.items():
        s["tensors"] = [dict(t, name=_safe(t["name"]), src=x) for t, x in zip(s["tensors"], srcs[kind])]
    weights = [dict(signal=signal_w[k], name=_safe(n.name), size=len(layer_weights(n)), bits=n.params.w_bits)
               for k, n in weighted_layers(graph, vis)]
    post = graph.meta.get("postprocess")
    return env.get_template("main.circom.j2").render(
        vis=vis, seg=segs, weights=weights,
        version=__version__, source=_safe(Path(graph.meta.get("source", "?")).name),
        input=dict(name=_safe(tin.name), bits=tin.bits, shape=tin.shape, scale=tin.scale,
                   zero_point=tin.zero_point, size=tin.size),
        outputs=outs, postprocess=(f"{post['op']} over axis {post['axis']}" if post else ""),
        includes=includes, consts=consts, nodes=nodes)
