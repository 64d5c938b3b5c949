"""ConvMaxPool: a Conv (constant weights) whose only consumer is a MaxPool, pooled *before* the
requantization. Made by `fuse_conv_maxpool` from a quantized graph, never by an ONNX rule.

Integer semantics (kernel): exactly MaxPool(Conv(x)) of zkml/ops/conv.py and zkml/ops/pool.py:
the Conv's requantized outputs, then the maximum over each pool window of them.

Why the circuit may pool first. Per output channel m the Conv's requantization
    f_m(acc) = clamp(floor((acc*mult[m] + 2^(s-1)) / 2^s) + zp, lo, 2^bits - 1)
is non-decreasing in acc (mult[m] >= 0; floor, + and clamp are monotone), and a pool window
stays in one channel, so max_t f_m(acc_t) = f_m(max_t acc_t). The circuit therefore compares
the accumulators (linear in the input: free with constant weights) and requantizes one value
per pool window, instead of requantizing every Conv output and comparing 8-bit values:

    unfused   conv_outputs * R  +  windows * (taps - 1) * cmp(out_bits)
    fused     windows * (R + (taps - 1) * cmp(ABITS))

with R one RequantClamp and cmp(b) one running-max step over b-bit values (Num2Bits(b + 1) and a
selection). ABITS, the accumulator's width, is ~10 bits more than the 8-bit output, so fusing
pays whenever a window holds 2+ Conv outputs (LeNet: 4 taps, R ~ 42 at --O1). The pass fuses
a pair only when the fused count is smaller, and only with constant weights (with weights as
signals the accumulator is a sum of products, and packed lanes are extracted by the
requantization itself: zkml/strands.py).

Circuit (circuits/conv.circom, ConvMaxPool2D): A = acc + AOFF >= 0 for every Conv output,
AOFF and ABITS from the bound rule below (0 <= A < 2^ABITS for every valid input); MaxWindow's
running maximum (circuits/pool.circom), written out over the A of each window's present taps
(linear combinations, not wired into a component); RequantClamp on
N = (Amax - AOFF)*mult[m] + 2^(s-1) + K*2^s, the same N (and bounds) the Conv would requantize.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..ir import Graph, Node, bits_for
from . import Bounds, register
from ._requant import requant_args, requant_constraints
from ._window import Geometry, tap_table
from .conv import Conv, Params as ConvParams, channel_acc_ranges
from .pool import MaxParams, max_window_constraints


@dataclass
class Params(ConvParams):
    # the pool window over the Conv's output grid [n, m, oh, ow] (zkml/ops/_window.py names)
    pkh: int
    pkw: int
    psh: int
    psw: int
    ppt: int
    ppl: int
    pdh: int
    pdw: int
    poh: int
    pow: int

    def conv(self) -> ConvParams:
        return ConvParams(**{f.name: getattr(self, f.name) for f in dataclasses.fields(ConvParams)})

    def pool(self) -> MaxParams:
        return MaxParams(self.n, self.m, self.oh, self.ow, self.poh, self.pow, self.pkh, self.pkw, self.psh,
                         self.psw, self.ppt, self.ppl, self.pdh, self.pdw, self.out_bits)

    def pool_geometry(self) -> Geometry:
        return self.pool().geometry()


@register
class ConvMaxPool(Conv):
    name = "ConvMaxPool"
    Params = Params
    template_file = "conv.circom"

    def quantize(self, f, ctx):   # pragma: no cover - made by fuse_conv_maxpool, not from ONNX
        raise NotImplementedError("ConvMaxPool is made by fuse_conv_maxpool from a quantized graph")

    def split_channels(self, p: Params, lo: int, hi: int):
        return dataclasses.replace(p, **dataclasses.asdict(super().split_channels(p.conv(), lo, hi)))

    def kernel(self, p: Params, x):
        from . import REGISTRY
        return REGISTRY["MaxPool"].kernel(p.pool(), super().kernel(p.conv(), x))

    def bounds(self, node, ins, out) -> Bounds:
        p: Params = node.params
        # the two facts pooling first relies on (fuse_conv_maxpool checks them; a hand-edited IR
        # must not get past ir.verify without them)
        if any(v < 0 for v in p.mult):
            raise ValueError("a negative multiplier: the requantization would not be monotone")
        if min(window_taps(p.pool_geometry()), default=0) < 1:
            raise ValueError("a pool window lies entirely in the padding")
        b = super().bounds(node, ins, out)          # the Conv's requantization, unchanged
        ranges = channel_acc_ranges(p, ins[0].qmax)
        lo, hi = min(r[0] for r in ranges), max(r[1] for r in ranges)
        aoff = max(0, -lo)
        abits = bits_for(hi + aoff)
        return Bounds(max(b.max_bits, abits + 1), b.what, dict(b.circuit, AOFF=aoff, ABITS=abits))

    def circom(self, node, ins, out, b: Bounds):
        p: Params = node.params
        name, args = super().circom(node, ins, out, b)
        k = [a for a, _ in args].index("K")
        pg = p.pool_geometry()
        pool = [("PH", pg.oh), ("PW", pg.ow), ("PKH", pg.kh), ("PKW", pg.kw), ("PSH", pg.sh), ("PSW", pg.sw),
                ("PPT", pg.pt), ("PPL", pg.pl), ("PDH", pg.dh), ("PDW", pg.dw),
                ("AOFF", b.circuit["AOFF"]), ("ABITS", b.circuit["ABITS"])]
        return "ConvMaxPool2D", [*args[:k + 1], *pool, *requant_args(b)]


# --------------------------------------------------------------------------- the fusion pass
def window_taps(g: Geometry) -> list[int]:
    """The number of present taps of every output position of a window geometry."""
    _, inside = tap_table(g)
    return [int(v) for v in inside.sum(axis=1)]


def fused_cost(conv: Node, pool: Node, ins, opt: str = "O2") -> tuple[int, int]:
    """(unfused, fused) constraint estimates of a Conv -> MaxPool pair (see the module doc)."""
    from . import REGISTRY
    p = fuse_params(conv.params, pool.params)
    fake = Node("ConvMaxPool", conv.name, conv.inputs, pool.output, p)
    b = REGISTRY["ConvMaxPool"].bounds(fake, ins, None)
    wiring = 1 if opt == "O1" else 0    # --O1 keeps the linear combination wired into RequantClamp's input
    rq = requant_constraints(b.circuit, opt) + wiring
    taps = window_taps(p.pool_geometry())
    per_nc = p.n * p.m
    unfused = per_nc * (p.oh * p.ow * rq + sum(max_window_constraints(t, p.out_bits, opt) for t in taps))
    fused = per_nc * sum(rq + max_window_constraints(t, b.circuit["ABITS"], opt) for t in taps)
    return unfused, fused


def fuse_params(c: ConvParams, m: MaxParams) -> Params:
    g = m.geometry()
    return Params(**dataclasses.asdict(c), pkh=g.kh, pkw=g.kw, psh=g.sh, psw=g.sw, ppt=g.pt, ppl=g.pl,
                  pdh=g.dh, pdw=g.dw, poh=g.oh, pow=g.ow)


def fusable(graph: Graph, conv: Node, readers: list[Node]) -> bool:
    """A Conv whose output only one MaxPool reads (`readers`: every node reading it), over exactly
    the Conv's output grid, with non-negative multipliers (so that its requantization is monotone)."""
    if conv.op != "Conv" or len(readers) != 1 or readers[0].op != "MaxPool":
        return False
    c, pool = conv.params, readers[0]
    m = pool.params
    return (pool.inputs == [conv.output] and conv.output not in graph.outputs
            and (m.n, m.c, m.h, m.w) == (c.n, c.m, c.oh, c.ow) and m.bits == c.out_bits
            and all(v >= 0 for v in c.mult))


def fuse_conv_maxpool(graph: Graph, log=None, opt: str = "O2") -> Graph:
    """The same graph with every Conv -> MaxPool pair that `fusable` allows and that costs fewer
    constraints fused (`fused_cost` at circom level `opt`) replaced by one ConvMaxPool node (same
    output tensor)."""
    nodes, drop = [], set()
    by_input = {}
    for n in graph.nodes:
        for i in n.inputs:
            by_input.setdefault(i, []).append(n)
    for n in graph.nodes:
        if id(n) in drop:
            continue
        nxt = by_input.get(n.output, [])
        if fusable(graph, n, nxt):
            ins = [graph.tensors[i] for i in n.inputs]
            unfused, fused = fused_cost(n, nxt[0], ins, opt)
            if fused < unfused:
                pool = nxt[0]
                nodes.append(Node("ConvMaxPool", n.name, list(n.inputs), pool.output,
                                  fuse_params(n.params, pool.params), [*n.onnx, *pool.onnx]))
                drop.add(id(pool))
                if log:
                    log(f"pooling before requantizing: Conv '{n.name}' + MaxPool '{pool.name}' "
                        f"(~{unfused:,} -> ~{fused:,} constraints)")
                continue
        nodes.append(n)
    if not drop:
        return graph
    used = {t for n in nodes for t in (*n.inputs, n.output)} | set(graph.inputs) | set(graph.outputs)
    return Graph(list(graph.inputs), list(graph.outputs), {k: t for k, t in graph.tensors.items() if k in used},
                 nodes, dict(graph.meta))
