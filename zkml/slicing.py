"""Sliced models: the IR cut at layer boundaries into segments, each its own circuit, chained by
Poseidon commitments of the boundary tensors (docs/SLICING.md).

    zkml compile MODEL.onnx --slices N | --max-constraints K   -> BUILD/slices.json, BUILD/segments/NN/
    zkml prove BUILD --input FILE [--ray [ADDRESS]]             -> a proof per segment
    zkml verify BUILD                                           -> every proof + the commitment chain

Layout of a sliced build folder: `model.ir.json` and `model.onnx` of the whole model (the
reference runtime computes every boundary tensor from them), `slices.json` (this module's
manifest) and `segments/00`, `segments/01`, ...: complete build folders (model.ir.json of the
segment, main.circom, main.r1cs, main_js/, build.json), so `zkml setup/prove/verify/deploy` work on
any one of them.

Chaining: segment k computes the boundary tensor t_k and publishes c_k = PoseidonChain(pack(t_k))
(visibility `hashed` for its output, zkml/visibility.py); segment k+1 takes t_k as a private
input, range-checks it (every circuit range-checks its input) and publishes the same commitment of
it (`hashed` input). The verifier accepts the chain only if every segment's proof verifies under
its own key and c_k (output of k) == c_k (input of k+1) for every boundary; the model's input and
output keep their chosen visibility in the first and last segments. Packing is injective on
range-checked lanes and Poseidon is collision resistant, so equal commitments mean the same tensor:
the segments prove one computation of the whole model. The commitments carry no salt: they bind
but do not hide (an intermediate activation of a low-entropy input could be found by trying inputs).

A cut goes where at most MAX_BUNDLE tensors of one bit width cross. One tensor is the boundary
itself; several (a residual branch spanning the cut, or a layer's input carried past the first of
its channel groups) are bundled into one boundary tensor: an identity Concat of their flattened
values at the end of the producing segment, IndexMaps back to the tensors at the start of the
consuming one (both free: equalities). When the layer boundaries cannot give the slices asked for
(or a layer alone exceeds --max-constraints), big Dense / Conv / ConvTranspose layers are split
into output-channel groups (`split_layers`: the same integers, joined by identity Concats).
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import __version__
from .errors import BuildError, InputError, VerificationError, ZkmlError
from .ir import Graph, verify as ir_verify
from .visibility import Visibility, VisibilityError, split_public

Log = Callable[[str], None]
_quiet: Log = lambda s: None  # noqa: E731

MANIFEST = "slices.json"
SEGMENTS = "segments"
# estimates (constraints) for --max-constraints; the real counts are read from each compiled segment
POSEIDON16 = 300          # circomlib Poseidon(16), rough (tests/test_slicing.py checks the estimates within 2x)
LUT_PER_VALUE = 40        # Lut / ArgMax / pooling: per output value (Lut measured at 37-39 for 8 bits)


class SliceError(ZkmlError):
    """A model cannot be sliced as asked (too many slices, a layer above --max-constraints, ...)."""


# --------------------------------------------------------------------------- cutting the IR
MAX_BUNDLE = 4            # tensors one boundary may carry (zkml/ops/concat.py MAX_INPUTS)


def _last_use(graph: Graph) -> dict[str, int]:
    last: dict[str, int] = {}
    for j, n in enumerate(graph.nodes):
        for t in n.inputs:
            last[t] = j
    for o in graph.outputs:
        last[o] = len(graph.nodes)
    return last


def cut_candidates(graph: Graph) -> dict[int, list[str]]:
    """{i: the tensors crossing a cut after node i} for every place a cut may go: at most
    MAX_BUNDLE tensors cross, all of the same bit width (one range check covers the boundary),
    and none of them is a model output. One tensor is the plain layer boundary; several (a
    residual branch, or the input of a layer split into channel groups carried past the first
    group) are bundled into one boundary tensor (`split`)."""
    last = _last_use(graph)
    out: dict[int, list[str]] = {}
    live = [graph.inputs[0]]
    for i, n in enumerate(graph.nodes[:-1]):
        live = [t for t in (*live, n.output) if last.get(t, -1) > i]
        if live and len(live) <= MAX_BUNDLE and not set(live) & set(graph.outputs) \
                and len({graph.tensors[t].bits for t in live}) == 1:
            out[i] = list(live)
    return out


def node_estimates(graph: Graph) -> list[int]:
    """Estimated R1CS constraints of each node (requantizing nodes from their bound record)."""
    from .ops import REGISTRY
    from .ops._requant import requant_constraints
    bounds = ir_verify(graph)
    est = []
    for n in graph.nodes:
        ins = [graph.tensors[i] for i in n.inputs]
        out = graph.tensors[n.output]
        c = bounds[n.name].circuit
        emitted = REGISTRY[n.op].circom(n, ins, out, bounds[n.name])
        if emitted is None or emitted[0] == "IndexMap" or (n.op == "Concat" and all(n.params.ident)):
            est.append(0)           # a relabeling: equalities only, no constraint after --O1
        elif "SHIFT" in c and "QBITS" in c:
            est.append(out.size * (requant_constraints(c, "O1") + 1))   # + the operator's sum
        else:
            est.append(out.size * LUT_PER_VALUE)
    return est


def boundary_estimate(graph: Graph, tensors: str | list[str]) -> int:
    """Constraints a boundary adds: the consumer's range check, and a commitment on each side."""
    from .packing import n_words
    from .poseidon import chain_constraints
    ts = [graph.tensors[t] for t in ([tensors] if isinstance(tensors, str) else tensors)]
    size, bits = sum(t.size for t in ts), ts[0].bits
    return size * (bits + 1) + 2 * chain_constraints(n_words(size, bits)) * POSEIDON16


# --------------------------------------------------------------------------- splitting a layer
def _concat_params(ins: list, axis: int, out_bits: int, flat: bool = False):
    """Params of an identity Concat (no requantization: pure equalities) of the tensors `ins`
    along `axis`, or of their flattened values one after another when `flat`."""
    from .ops.concat import Params as ConcatParams
    if flat:
        part = np.concatenate([np.full(t.size, k) for k, t in enumerate(ins)])
        index = np.concatenate([np.arange(t.size) for t in ins])
    else:
        part = np.concatenate([np.full(t.shape, k) for k, t in enumerate(ins)], axis=axis).reshape(-1)
        index = np.concatenate([np.arange(t.size).reshape(t.shape) for t in ins], axis=axis).reshape(-1)
    return ConcatParams([t.size for t in ins], [int(v) for v in part], [int(v) for v in index], [],
                        [1] * len(ins), [t.zero_point for t in ins], [0] * len(ins), 1, 0, out_bits)


def split_layers(graph: Graph, limit: int) -> Graph:
    """The same model with every node estimated above `limit` constraints that its operator can
    split (Dense, Conv, ConvTranspose: `OpDef.split_channels`) computed as channel groups of at
    most ~limit each, joined back by identity Concats (free: equalities). Each group's values
    equal the whole node's (the per-channel weights, bias and multipliers are sliced; the shift
    and the output grid are shared), so the model computes exactly the same integers; the
    places between the groups become cut candidates (their boundary carries the layer's input
    and the channels made so far)."""
    import math
    from .ir import Node, Tensor
    from .ops import REGISTRY
    est = node_estimates(graph)
    nodes, tensors = [], dict(graph.tensors)
    for n, e in zip(graph.nodes, est):
        op = REGISTRY[n.op]
        ch = op.channels(n.params)
        groups = min(ch, math.ceil(e / limit)) if limit > 0 else 1
        if groups < 2:
            nodes.append(n)
            continue
        out = graph.tensors[n.output]
        axis = op.channel_axis % len(out.shape)
        edges = [round(ch * k / groups) for k in range(groups + 1)]
        acc = None
        for k, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
            name = f"{n.output}#ch{lo}-{hi - 1}"
            shape = list(out.shape)
            shape[axis] = hi - lo
            tensors[name] = Tensor(name, shape, out.bits, out.scale, out.zero_point)
            nodes.append(Node(n.op, f"{n.name}#ch{lo}-{hi - 1}", list(n.inputs), name,
                              op.split_channels(n.params, lo, hi), list(n.onnx)))
            if acc is None:
                acc = name
                continue
            last = k == groups - 1
            cat = n.output if last else f"{n.output}#ch0-{hi - 1}"
            if not last:
                shape = list(out.shape)
                shape[axis] = hi
                tensors[cat] = Tensor(cat, shape, out.bits, out.scale, out.zero_point)
            nodes.append(Node("Concat", f"{n.name}#join{k}", [acc, name], cat,
                              _concat_params([tensors[acc], tensors[name]], axis, out.bits), list(n.onnx)))
            acc = cat
    g = Graph(list(graph.inputs), list(graph.outputs), tensors, nodes, dict(graph.meta))
    ir_verify(g)
    return g


def segment_costs(graph: Graph, cuts: list[int], est: list[int] | None = None,
                  cands: dict | None = None) -> list[int]:
    """Estimated constraints of each segment for these cuts: its nodes plus the boundary on each side."""
    est = node_estimates(graph) if est is None else est
    cands = cut_candidates(graph) if cands is None else cands
    edges = [-1, *cuts, len(graph.nodes) - 1]
    return [sum(est[a + 1:b + 1]) + sum(boundary_estimate(graph, cands[i]) for i in (a, b) if i in cuts)
            for a, b in zip(edges[:-1], edges[1:])]


def balanced_cuts(graph: Graph, slices: int, est: list[int], cands: dict) -> list[int] | None:
    """The slices-1 cuts that minimise the largest segment estimate, boundaries included (a
    boundary costs its range check and two commitments, so a cheap boundary is preferred when the
    balance allows); ties go to the smaller total. Every segment must hold some constraint.
    None when no such choice exists. Dynamic programming over the cut candidates: O(N C^2)."""
    pos = sorted(cands)
    last = len(graph.nodes) - 1
    cum = [0, *np.cumsum(est).tolist()]
    bcost = {c: boundary_estimate(graph, cands[c]) for c in pos}
    INF = (float("inf"), float("inf"))

    def seg(a: int, b: int) -> float:      # nodes a..b; a-1 and b are cuts (or the model's ends)
        work = cum[b + 1] - cum[a]
        if work <= 0:
            return float("inf")
        return work + (bcost[a - 1] if a > 0 else 0) + (bcost[b] if b < last else 0)

    if slices == 1:
        return []
    # best[i] = (max, total) over the first j segments, the j-th ending at pos[i]; back[j][i] = previous cut index
    best = [(seg(0, c), seg(0, c)) for c in pos]
    backs = []
    for _ in range(2, slices):
        nb, back = [INF] * len(pos), [-1] * len(pos)
        for i, c in enumerate(pos):
            for h in range(i):
                if best[h][0] == float("inf"):
                    continue
                s_ = seg(pos[h] + 1, c)
                cand = (max(best[h][0], s_), best[h][1] + s_)
                if cand < nb[i]:
                    nb[i], back[i] = cand, h
        best = nb
        backs.append(back)
    end, endv = -1, INF
    for i, c in enumerate(pos):
        if best[i][0] == float("inf"):
            continue
        s_ = seg(c + 1, last)
        v = (max(best[i][0], s_), best[i][1] + s_)
        if v < endv:
            end, endv = i, v
    if end < 0 or endv[0] == float("inf"):
        return None
    idx = [end]
    for back in reversed(backs):
        idx.append(back[idx[-1]])
    return [pos[i] for i in reversed(idx)]


def choose_cuts(graph: Graph, slices: int | None = None, max_constraints: int | None = None) -> list[int]:
    """Cut points (after node i) for N balanced slices, or as few as keep every segment's estimate
    (commitments included) within max_constraints."""
    cands = cut_candidates(graph)
    est = node_estimates(graph)
    cum = np.cumsum(est).tolist()
    total = cum[-1] if cum else 0
    if slices is not None:
        if slices < 1:
            raise SliceError("--slices must be at least 1")
        pos = sorted(cands)
        if slices - 1 > len(pos):
            raise SliceError(f"the model has {len(pos) + 1} segments at most ({len(pos)} places where a cut can "
                             f"go, after splitting the layers that can be split); --slices {slices} is too many")
        cuts = balanced_cuts(graph, slices, est, cands)
        if cuts is None:
            raise SliceError(f"--slices {slices} is too many for this model: a segment would hold no constraint "
                             f"(the model's estimate is ~{total:,} constraints over {len(graph.nodes)} nodes)")
        return cuts
    if max_constraints is None:
        raise SliceError("give --slices N or --max-constraints K")
    cuts, start = [], 0

    def seg_cost(a: int, b: int) -> int:       # nodes a..b inclusive, with its boundary overheads
        c = cum[b] - (cum[a - 1] if a > 0 else 0)
        if a > 0:
            c += boundary_estimate(graph, cands[a - 1])
        if b < len(graph.nodes) - 1:
            c += boundary_estimate(graph, cands[b])
        return c

    while True:
        if seg_cost(start, len(graph.nodes) - 1) <= max_constraints:
            return cuts
        fits = [c for c in sorted(cands) if c >= start and seg_cost(start, c) <= max_constraints]
        if not fits:
            nxt = next((c for c in sorted(cands) if c >= start), len(graph.nodes) - 1)
            heavy = max(range(start, nxt + 1), key=lambda i: est[i])
            raise SliceError(f"no cut keeps the segment starting at node '{graph.nodes[start].name}' within "
                             f"--max-constraints {max_constraints}: the shortest segment from there (to node "
                             f"'{graph.nodes[nxt].name}') needs ~{seg_cost(start, nxt):,} constraints with its "
                             f"boundary commitments, and its node '{graph.nodes[heavy].name}' "
                             f"({graph.nodes[heavy].op}) alone needs ~{est[heavy]:,} and cannot be split further; "
                             "raise the limit")
        cuts.append(fits[-1])
        start = fits[-1] + 1


def plan(graph: Graph, slices: int | None = None, max_constraints: int | None = None) -> tuple[Graph, list[int]]:
    """The graph to cut (big layers split into channel groups where that is needed) and its cuts.
    --max-constraints K: layers above K/2 are split. --slices N: layers are split only when the
    layer boundaries cannot give N segments or give a largest segment more than 25% above
    total/N, and the split plan is kept only if its largest segment (boundaries included) is
    the smaller one."""
    if slices is not None and max_constraints is not None:
        raise SliceError("give --slices or --max-constraints, not both")
    est = node_estimates(graph)
    total = sum(est)
    if max_constraints is not None:
        g = graph if max(est, default=0) <= max_constraints // 2 else split_layers(graph, max_constraints // 2)
        return g, choose_cuts(g, max_constraints=max_constraints)
    if slices is None:
        raise SliceError("give --slices N or --max-constraints K")
    options = []
    try:
        cuts = choose_cuts(graph, slices=slices)
        options.append((max(segment_costs(graph, cuts, est)), graph, cuts))
        if slices == 1 or options[0][0] <= 1.25 * total / slices:
            return graph, cuts
    except SliceError:
        pass
    g = split_layers(graph, max(1, total // (2 * slices)))
    try:
        cuts = choose_cuts(g, slices=slices)
        options.append((max(segment_costs(g, cuts)), g, cuts))
    except SliceError:
        if not options:
            raise
    _, g, cuts = min(options, key=lambda o: o[0])     # the smaller largest segment, boundaries included
    return g, cuts


def boundary_name(k: int) -> str:
    return f"zkml/boundary{k:02d}"


def split(graph: Graph, cuts: list[int]) -> list[Graph]:
    """The segment graphs. Segment k reads the boundary before it and outputs the one after it; a
    boundary crossed by one tensor is that tensor, one crossed by several is a bundle
    `zkml/boundaryKK`: the producing segment ends with an identity Concat of their flattened
    values and the consuming segment starts with an IndexMap per tensor (both free)."""
    from .ir import Node, Tensor
    from .ops.layout import Params as IndexMapParams
    cands = cut_candidates(graph)
    bounds = [-1, *cuts, len(graph.nodes) - 1]
    segs = []
    for k in range(len(bounds) - 1):
        nodes = list(graph.nodes[bounds[k] + 1:bounds[k + 1] + 1])
        extra: dict[str, Tensor] = {}
        if k == 0:
            inp = graph.inputs[0]
        else:
            live = cands[bounds[k]]
            inp = live[0] if len(live) == 1 else boundary_name(k - 1)
            if len(live) > 1:
                ts = [graph.tensors[t] for t in live]
                extra[inp] = Tensor(inp, [sum(t.size for t in ts)], ts[0].bits, 1.0, 0)
                off, pre = 0, []
                for t in ts:
                    pre.append(Node("IndexMap", f"{inp}/{t.name}", [inp], t.name,
                                    IndexMapParams(extra[inp].size, list(range(off, off + t.size)), 0), []))
                    off += t.size
                nodes = pre + nodes
        if k == len(bounds) - 2:
            outs = list(graph.outputs)
        else:
            live = cands[bounds[k + 1]]
            if len(live) == 1:
                outs = [live[0]]
            else:
                name = boundary_name(k)
                ts = [graph.tensors[t] for t in live]
                extra[name] = Tensor(name, [sum(t.size for t in ts)], ts[0].bits, 1.0, 0)
                nodes.append(Node("Concat", name, list(live), name, _concat_params(ts, 0, ts[0].bits, flat=True), []))
                outs = [name]
        names = {inp, *outs, *(t for n in nodes for t in (*n.inputs, n.output))}
        meta = dict(graph.meta, segment=k, segments=len(bounds) - 1)
        if k < len(bounds) - 2:
            meta["postprocess"] = None
        tensors = {t: graph.tensors[t] for t in graph.tensors if t in names}
        tensors.update(extra)
        g = Graph([inp], outs, tensors, nodes, meta)
        ir_verify(g)
        segs.append(g)
    return segs


def boundary_parts(graph: Graph, cuts: list[int]) -> list[list[str]]:
    """The model tensors each boundary carries, in bundle order."""
    cands = cut_candidates(graph)
    return [list(cands[c]) for c in cuts]


def segment_visibility(vis: Visibility, k: int, n: int) -> Visibility:
    return Visibility(input=vis.input if k == 0 else "hashed", weights="constant",
                      output=vis.output if k == n - 1 else "hashed")


# --------------------------------------------------------------------------- compile
def is_sliced(build: str | Path) -> bool:
    return (Path(build) / MANIFEST).is_file()


def seg_dir(build: Path, k: int) -> Path:
    return Path(build) / SEGMENTS / f"{k:02d}"


def compile(model: str | Path, out_dir: str | Path = "build", *, slices: int | None = None,
            max_constraints: int | None = None, calibration: str | Path | None = None, cfg=None,
            log: Log = _quiet, pack_outputs: bool = True, visibility: Visibility | None = None,
            optimize: str = "auto", fuse_pools: bool = True) -> dict:
    """Quantize the model once, cut it and compile every segment into BUILD/segments/NN."""
    import onnx
    from . import api
    vis = (visibility or Visibility()).check()
    if vis.weights != "constant":
        raise VisibilityError(f"--weights {vis.weights} is not supported with slicing yet: the weights of a "
                              "sliced model are constants of each segment (--weights constant)")
    if slices is not None and max_constraints is not None:
        raise SliceError("give --slices or --max-constraints, not both")
    t0 = time.time()
    graph, onnx_model, cfg, calib = api.quantize_model(model, calibration, cfg, log)
    n_layers = len(graph.nodes)
    graph, cuts = plan(graph, slices, max_constraints)
    if len(graph.nodes) != n_layers:
        split_nodes = sorted({n.name.split("#ch")[0] for n in graph.nodes if "#ch" in n.name})
        log(f"split {len(split_nodes)} layer(s) into output-channel groups to place the cuts: {', '.join(split_nodes)}")
    parts = split(graph, cuts)
    bparts = boundary_parts(graph, cuts)
    est = node_estimates(graph)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for f in (*api._STALE, "main.circom", "main.r1cs", "main.sym", "build.json", MANIFEST):
        (out / f).unlink(missing_ok=True)
    for d in ("main_js", SEGMENTS, "proofs"):
        if (out / d).exists():
            shutil.rmtree(out / d)
    graph.save(out / "model.ir.json")
    onnx.save(onnx_model, out / "model.onnx")
    bnames = [p[0] if len(p) == 1 else boundary_name(k) for k, p in enumerate(bparts)]
    log(f"sliced into {len(parts)} segment(s) at "
        f"{', '.join(b if len(p) == 1 else b + ' (' + ' + '.join(p) + ')' for b, p in zip(bnames, bparts)) or 'no boundary'}")
    records, pos = [], 0
    edges = [-1, *cuts, len(graph.nodes) - 1]
    for k, g in enumerate(parts):
        n_own = edges[k + 1] - edges[k]         # the whole model's nodes in this segment
        d = seg_dir(out, k)
        sv = segment_visibility(vis, k, len(parts))
        log(f"segment {k:02d}/{len(parts):02d}: {len(g.nodes)} node(s) {g.nodes[0].name} .. {g.nodes[-1].name}, "
            f"input {sv.input}, output {sv.output}")
        meta = api.compile_graph(g, d, model, None, cfg, calib, log=lambda s, k=k: log(f"  [{k:02d}] {s}"),
                                 pack_outputs=pack_outputs if k == len(parts) - 1 else True, visibility=sv,
                                 optimize=optimize, fuse_pools=fuse_pools)
        records.append(dict(dir=str(d.relative_to(out)), nodes=[n.name for n in g.nodes], input=g.inputs[0],
                            input_parts=bparts[k - 1] if k > 0 else [g.inputs[0]], outputs=g.outputs, visibility=sv.as_dict(), public_segments=meta["public_segments"],
                            constraints=meta["circuit"]["constraints"],
                            estimate=int(sum(est[pos:pos + n_own])), circom=meta["circuit"]["circom"]))
        pos += n_own
    manifest = dict(zkml_version=__version__, source=str(model), visibility=vis.as_dict(),
                    boundaries=bnames, boundary_parts=bparts, segments=records,
                    total_constraints=sum(r["constraints"] for r in records),
                    estimate=int(sum(est)), seconds=round(time.time() - t0, 2))
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))
    log(f"{len(parts)} segment circuits: {manifest['total_constraints']:,} constraints in total "
        f"({', '.join(format(r['constraints'], ',') for r in records)})")
    return manifest


def manifest_of(build: str | Path) -> dict:
    p = Path(build) / MANIFEST
    try:
        m = json.loads(p.read_text())
    except FileNotFoundError:
        raise BuildError(f"{p} not found: not a sliced build (compile with --slices or --max-constraints)") from None
    except (OSError, ValueError, RecursionError) as e:
        raise BuildError(f"{p} is not valid JSON ({type(e).__name__}); recompile the model") from None
    if not isinstance(m, dict) or not isinstance(m.get("segments"), list) or not m["segments"] \
            or not isinstance(m.get("visibility"), dict) or not isinstance(m.get("boundaries"), list):
        raise BuildError(f"{p} is not a slicing manifest; recompile the model")
    for k, s in enumerate(m["segments"]):   # fixed folder names: a manifest cannot point elsewhere
        if not isinstance(s, dict) or s.get("dir") != f"{SEGMENTS}/{k:02d}" or not isinstance(s.get("input"), str):
            raise BuildError(f"{p}: segment {k} is malformed; recompile the model")
    return m


def _check_layout(build: Path, m: dict, k: int) -> list[dict]:
    """Segment k's public layout, which must chain: hashed input for k > 0, hashed output before the last."""
    from . import api
    d = Path(build) / m["segments"][k]["dir"]
    layout = api.public_segments_of(d)
    modes = {s.get("kind"): s.get("mode") for s in layout if isinstance(s, dict)}
    n = len(m["segments"])
    if (k > 0 and modes.get("input") != "hashed") or (k < n - 1 and modes.get("output") != "hashed"):
        raise BuildError(f"{d / 'build.json'}: segment {k:02d} does not publish its boundary commitments "
                         "(not a segment of this sliced build); recompile the model")
    return layout


# --------------------------------------------------------------------------- prove
def boundary_inputs(build: str | Path, input: str | Path, log: Log = _quiet) -> list[list[int]]:
    """The integer input of every segment for a float model input: the quantized input, then each
    boundary tensor as the reference runtime computes it on the whole model."""
    import zkml_runtime as rt
    from . import api
    from .inputs import load_input
    build = Path(build)
    m = manifest_of(build)
    g = api.load_graph(build)
    x = load_input(input, g.tensors[g.inputs[0]].shape)
    q, clipped = rt.quantize_input(g, x)
    if clipped:
        log(f"WARNING: {clipped} input values lay outside the calibrated range and were clipped")
    env = rt.run(g, q)
    return [[int(v) for t in s.get("input_parts") or [s["input"]] for v in env[t].reshape(-1)]
            for s in m["segments"]]


def prove_segment(seg: str, q_in: list[int], ptau: str | None = None, prover: str = "auto",
                  threads: int | None = None) -> dict:
    """Set up (when the segment has no keys) and prove one segment on its integer input; writes
    seg/proof.json, public.json, prove.json. Runs in-process or as a Ray task (module-level, so
    a worker imports it); the build folder is shared through the file system."""
    if threads:
        os.environ["RAYON_NUM_THREADS"] = str(threads)    # arkworks' thread pool (before groth16py loads)
    import zkml_runtime as rt
    from . import api
    from .provers import get_prover
    from .visibility import public_signals
    t_all = time.time()
    seg = Path(seg)
    times = {}
    if not (seg / "main.zkey").exists():
        t = time.time()
        api.setup(seg, ptau)
        times["setup"] = round(time.time() - t, 2)
    g = api.load_graph(seg)
    api.check_build_files(seg)
    api._check_zkey(seg)
    q = np.array(q_in, dtype=np.int64).reshape(g.tensors[g.inputs[0]].shape)
    t = time.time()
    outputs = [[int(v) for v in o.reshape(-1)] for o in rt.run_outputs(g, q)]
    expected = public_signals(api.public_segments_of(seg), outputs, [int(v) for v in q_in], [])
    wtns, _ = api.witness_from_integers(seg, q, expected)
    times["witness"] = round(time.time() - t, 2)
    t = time.time()
    backend = get_prover(prover, seg / "main.zkey")
    backend.prove(wtns, seg)
    times["prove"] = round(time.time() - t, 2)
    times["total"] = round(time.time() - t_all, 2)
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
               resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    rec = dict(segment=seg.name, prover=backend.name, seconds=times, peak_rss_mib=round(peak, 1),
               host=socket.gethostname(), pid=os.getpid(), outputs=[v for o in outputs for v in o])
    (seg / "prove.json").write_text(json.dumps(rec, indent=2))
    return rec


@dataclass
class SlicedProveResult:
    segments: list[dict]
    seconds: float
    ray: str | None                 # the Ray cluster used (None: in-process)
    outputs: list = field(default_factory=list)


def prove(build: str | Path, input: str | Path, *, ray: str | bool | None = None, num_cpus: int | None = None,
          ptau: str | Path | None = None, prover: str = "auto", log: Log = _quiet) -> SlicedProveResult:
    """Prove every segment: in-process one after another (ray None/False), or as Ray tasks on a
    local Ray instance started here (ray True or "local", `num_cpus` workers) or on the cluster at
    `ray` (an address such as "ray://host:10001" or "auto"). Every task reads and writes its
    segment folder, which must be on a file system the workers share (docs/SLICING.md)."""
    build = Path(build).resolve()
    m = manifest_of(build)
    t0 = time.time()
    inputs = boundary_inputs(build, input, log)
    n = len(m["segments"])
    dirs = [str(build / s["dir"]) for s in m["segments"]]
    for d in dirs:
        for f in ("proof.json", "public.json", "prove.json"):
            (Path(d) / f).unlink(missing_ok=True)
    log(f"{n} segment(s); boundary activations computed with the reference runtime")
    results: list[dict | None] = [None] * n
    if not ray:
        for k in range(n):
            log(f"segment {k:02d}: proving in-process ...")
            results[k] = prove_segment(dirs[k], inputs[k], str(ptau) if ptau else None, prover)
            _report(log, results[k], sum(r is not None for r in results), n)
        where = None
    else:
        try:
            import ray as _ray
        except ImportError:
            raise ZkmlError("--ray needs Ray: pip install 'zkml[ray]' (or prove without --ray)") from None
        where = _ray_start(_ray, None if ray is True or ray == "local" else str(ray), num_cpus, log)
        try:
            task = _ray.remote(num_cpus=1, max_calls=1)(prove_segment)    # a fresh worker per task: its peak RSS is the task's
            refs = {task.remote(dirs[k], inputs[k], str(ptau) if ptau else None, prover, 1): k for k in range(n)}
            log(f"submitted {n} Ray task(s)")
            pending = list(refs)
            while pending:
                done, pending = _ray.wait(pending, num_returns=1)
                k = refs[done[0]]
                try:
                    results[k] = _ray.get(done[0])
                except _ray.exceptions.RayTaskError as e:
                    cause = e.cause if isinstance(getattr(e, "cause", None), ZkmlError) else None
                    raise ZkmlError(f"segment {k:02d} failed on Ray: {cause or str(e).splitlines()[-1][:300]}") from None
                _report(log, results[k], n - len(pending), n)
        finally:
            if where.startswith("local"):
                _ray.shutdown()
    res = SlicedProveResult(results, round(time.time() - t0, 2), where, results[-1]["outputs"])
    (build / "prove.json").write_text(json.dumps(asdict(res), indent=2))
    return res


def _report(log: Log, r: dict, done: int, n: int) -> None:
    s = r["seconds"]
    log(f"segment {r['segment']} proven [{done}/{n}]: "
        + (f"setup {s['setup']} s, " if "setup" in s else "")
        + f"witness {s['witness']} s, prove {s['prove']} s ({r['prover']}), peak {r['peak_rss_mib']:.0f} MiB, "
          f"host {r['host']} pid {r['pid']}")


def _ray_start(ray, address: str | None, num_cpus: int | None, log: Log) -> str:
    if ray.is_initialized():
        return "existing " + str(ray.get_runtime_context().gcs_address)
    if address:
        ray.init(address=address, log_to_driver=False)
        log(f"connected to the Ray cluster at {address}: {ray.cluster_resources().get('CPU', 0):g} CPUs")
        return address
    cpus = num_cpus or os.cpu_count() or 1
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False,
             object_store_memory=128 * 1024 * 1024)    # nothing big goes through the object store
    log(f"started a local Ray instance with {cpus} worker CPU(s)")
    return f"local ({cpus} CPUs)"


# --------------------------------------------------------------------------- verify
@dataclass
class SlicedVerifyResult:
    valid: bool
    reason: str = ""
    segments: list = field(default_factory=list)      # per segment: {valid, in_commitment, out_commitment}
    outputs: list | None = None
    commitments: dict | None = None                   # the model's hashed input/output commitments


def _segment_check(d: Path, proof_p: Path, public_p: Path) -> tuple[bool, str, list[int]]:
    """The two verifiers of api.verify on one segment proof: (valid, reason, public signals)."""
    from . import groth16, pyverify
    from .api import _read_json
    vk = _read_json(d / "verification_key.json", "run `zkml prove`")
    if not proof_p.exists() or not public_p.exists():
        return False, f"no proof ({proof_p.name}/{public_p.name} missing)", []
    proof, pub = _read_json(proof_p, "run `zkml prove`"), _read_json(public_p, "run `zkml prove`")
    try:
        pyverify.check(vk, proof, pub)
    except VerificationError as e:
        return False, str(e).removeprefix("invalid proof: "), []
    if not groth16.snarkjs_verify(d / "verification_key.json", public_p, proof_p):
        raise ZkmlError("verifiers disagree: snarkjs rejects a proof the Python verifier accepts; please report this")
    return True, "", [int(x) for x in pub]


def verify(build: str | Path, proofs: list[tuple[str | Path, str | Path]] | None = None, *,
           claimed_outputs: list | None = None, input_commitment: str | int | None = None,
           log: Log = _quiet) -> SlicedVerifyResult:
    """Every segment proof under its own key, then the chain: the output commitment of segment k
    equals the input commitment of segment k+1. `proofs`: [(proof.json, public.json)] in segment
    order (default: those in each segment folder). The model's ends are checked as `zkml verify`
    checks a build: public outputs decoded, hashed outputs against `claimed_outputs` (default: the
    last segment's prove.json), a hashed input against `input_commitment` when given."""
    from . import api
    from .visibility import commitment
    build = Path(build)
    m = manifest_of(build)
    n = len(m["segments"])
    dirs = [build / s["dir"] for s in m["segments"]]
    if proofs is None:
        proofs = [(d / "proof.json", d / "public.json") for d in dirs]
    if len(proofs) != n:
        return SlicedVerifyResult(False, f"{len(proofs)} segment proofs given, the model has {n} segments")
    segs, parts, pubs = [], [], []
    for k, (d, (pf, pb)) in enumerate(zip(dirs, proofs)):
        ok, reason, pub = _segment_check(d, Path(pf), Path(pb))
        rec = dict(segment=k, valid=ok)
        if ok:
            try:
                p = split_public(_check_layout(build, m, k), pub)
            except ValueError:
                ok, reason = False, "its public signals do not fit the segment's layout"
            else:
                parts.append(p)
                pubs.append(pub)
                for side in ("input", "output"):
                    if m["segments"][k]["visibility"][side] == "hashed":
                        rec[f"{side[:-3] if side == 'output' else 'in'}_commitment"] = str(p[side][0])
        segs.append(rec)
        log(f"segment {k:02d}: {'valid' if ok else 'INVALID: ' + reason}")
        if not ok:
            return SlicedVerifyResult(False, f"segment {k:02d}: {reason}", segs)
    for k in range(n - 1):
        a, b = parts[k]["output"][0], parts[k + 1]["input"][0]
        if a != b:
            return SlicedVerifyResult(False, f"the chain is broken between segments {k:02d} and {k + 1:02d}: "
                                      f"output commitment {a} != next input commitment {b} (proofs of different "
                                      "inputs, or out of order)", segs)
    log(f"commitment chain: {n - 1} boundar{'y' if n == 2 else 'ies'} match")
    res = SlicedVerifyResult(True, "", segs, commitments={})
    vis = m["visibility"]
    last = dirs[-1]
    if vis["output"] == "public":
        res.outputs = api.decode_public(last, pubs[-1])
    elif vis["output"] == "hashed":
        seg = next(s for s in api.public_segments_of(last) if s["kind"] == "output")
        if claimed_outputs is None:
            rec = Path(proofs[-1][0]).parent / "prove.json"
            data = api._read_json(rec, "give the claimed outputs") if rec.exists() else None
            claimed_outputs = data.get("outputs") if isinstance(data, dict) else None
            if claimed_outputs is None:
                raise InputError("the outputs are committed by hash: give the claimed integer output values")
        vals = [int(v) for v in claimed_outputs]
        if sum(t["size"] for t in seg["tensors"]) != len(vals):
            raise InputError(f"the claimed outputs must be {sum(t['size'] for t in seg['tensors'])} integers")
        if commitment(seg["tensors"], [vals]) != parts[-1]["output"][0]:
            return SlicedVerifyResult(False, "the claimed outputs do not match the proven output commitment", segs)
        res.outputs = vals
        res.commitments["output"] = str(parts[-1]["output"][0])
    if vis["input"] == "hashed":
        res.commitments["input"] = str(parts[0]["input"][0])
        if input_commitment is not None and str(int(input_commitment)) != res.commitments["input"]:
            return SlicedVerifyResult(False, "the proof is about another input than the committed one", segs)
    return res
