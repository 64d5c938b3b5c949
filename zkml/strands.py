"""Stranded (SIMD) encoding of signal x signal products for layers whose weights are signals.

With `--weights public|private|hashed` every weight is a private signal, so each product
(x - x_zp) * (w - w_zp) costs one R1CS constraint (circuits/dense_w.circom DenseW,
circuits/conv_w.circom ConvW: the *plain* encoding). The *stranded* encoding (ZEN) packs NL
lanes of L bits into one field element, so one constraint multiplies a signal into NL
partial dot products at once (circuits/strands.circom). zkml packs the requantization input
N_j = M_j*acc_j + 2^(s-1) + K*2^s of each output, so the requantization's own decomposition
is the lane range check: L = SHIFT + QBITS + 2 from the bound analysis (worst case over every
weight of the layer's bits), NL = floor(252 / L). The soundness argument is in the header of
circuits/strands.circom and in docs/SOUNDNESS.md.

Layouts, chosen per layer at compile time (`plan`), with their product counts:

    Dense    plain      ROWS*NOUT*NIN                 (DenseW)
             channels   ROWS*ceil(NOUT/NL)*NIN        (StrandDenseW: weights of NL outputs per strand)
    Conv     plain      N*CO*CG*present               (ConvW; present = (position, tap) pairs inside the image)
             channels   N*G*ceil(MG/NL)*CG*present    (StrandConvWChannels: weights of NL output channels)
             positions  N*CO*CG*block_taps            (StrandConvWPositions: inputs of NL output positions,
                                                       each weight used once per block: weight reuse)

Every layout has the same RequantClamp per output. At --O1 circom keeps linear constraints: a
strand group has two, a plain output one (Conv) or two (Dense). `strands="auto"` takes the
layout with the fewest constraints by that formula (--O2 count first, then --O1;
tests/test_strands.py checks it against circom's R1CS at both levels); plain wins when NL < 2 (lanes wider than 126 bits) or when a strand
would hold one lane only (one output per group, e.g. a Dense with one output, a Conv with one
output channel and one output position). `strands="off"` keeps every layer plain.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .errors import ZkmlError
from .ir import FIELD_SAFE_BITS
from .ops import Bounds
from .ops._requant import requant_args
from .ops._window import tap_table

STRAND_MODES = ("auto", "off")
TEMPLATE_FILES = {"DenseW": "dense_w.circom", "ConvW": "conv_w.circom", "StrandDenseW": "strands.circom",
                  "StrandConvWChannels": "strands.circom", "StrandConvWPositions": "strands.circom"}
TEMPLATES = {("Dense", "plain"): "DenseW", ("Dense", "channels"): "StrandDenseW", ("Conv", "plain"): "ConvW",
             ("Conv", "channels"): "StrandConvWChannels", ("Conv", "positions"): "StrandConvWPositions"}
# Linear constraints circom keeps at --O1 (--O2 eliminates every linear constraint): a strand group
# has two (s <== sum of products + constants; s === sum_j lane_j 2^(jL)); a plain output has the
# sum it feeds RequantClamp (DenseW: also SignalDot's out <== acc).
LINEAR_PER_GROUP = 2
LINEAR_PER_PLAIN_OUTPUT = {"Dense": 2, "Conv": 1}


class StrandsError(ZkmlError):
    """An unknown --strands mode."""


def check_mode(strands: str) -> str:
    if strands not in STRAND_MODES:
        raise StrandsError(f"--strands {strands!r}: choose one of {', '.join(STRAND_MODES)}")
    return strands


@dataclass(frozen=True)
class Plan:
    node: str
    op: str
    layout: str          # plain | channels | positions
    template: str
    lanes: int           # NL (1 for plain)
    lane_bits: int       # L (0 for plain)
    products: int        # signal x signal constraints of the chosen layout
    plain_products: int
    groups: int          # strand groups (StrandRequant instances); 0 for plain
    candidates: dict     # layout -> {"O2": n, "O1": n}: constraints beyond the requantization

    def as_dict(self) -> dict:
        return asdict(self)


def signal_bounds(node, ins, out) -> Bounds:
    """The bound analysis of a layer with weights as signals (worst case over every weight)."""
    if node.op == "Dense":
        from .visibility import signal_weight_bounds
        return signal_weight_bounds(node, ins, out)
    if node.op == "Conv":
        from .ops.conv import signal_weight_bounds
        return signal_weight_bounds(node, ins, out)
    raise ZkmlError(f"node '{node.name}': {node.op} has no weights-as-signals template")


def lane_geometry(b: Bounds) -> tuple[int, int]:
    """(L, NL): lanes of L = SHIFT + QBITS + 2 bits, NL = floor(252 / L) per field element."""
    L = b.circuit["SHIFT"] + b.circuit["QBITS"] + 2
    return L, FIELD_SAFE_BITS // L


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def candidates(node, nl: int) -> dict[str, tuple[int, int]]:
    """layout -> (products, strand groups) for NL lanes per strand."""
    p = node.params
    if node.op == "Dense":
        out = {"plain": (p.rows * p.n_out * p.n_in, 0)}
        if nl >= 2:
            ng = _ceil(p.n_out, nl)
            out["channels"] = (p.rows * ng * p.n_in, p.rows * ng)
        return out
    geo = p.geometry()
    _, inside = tap_table(geo)                                   # [P, KH*KW]
    cg, mg, pos = p.c // p.group, p.m // p.group, geo.oh * geo.ow
    present = int(inside.sum())
    out = {"plain": (p.n * p.m * cg * present, 0)}
    if nl >= 2:
        nb = _ceil(mg, nl)
        out["channels"] = (p.n * p.group * nb * cg * present, p.n * p.group * nb * pos)
        block_taps = sum(int(inside[b:b + nl].any(axis=0).sum()) for b in range(0, pos, nl))
        out["positions"] = (p.n * p.m * cg * block_taps, p.n * p.m * _ceil(pos, nl))
    return out


def costs(node, cands: dict) -> dict[str, dict[str, int]]:
    """layout -> {"O2": constraints, "O1": constraints} beyond the RequantClamps (the same in every
    layout): the formula the layout is chosen by, checked against circom's R1CS in the tests."""
    outs = node.params.rows * node.params.n_out if node.op == "Dense" else \
        node.params.n * node.params.m * node.params.oh * node.params.ow
    return {k: {"O2": prods, "O1": prods + (LINEAR_PER_GROUP * groups if k != "plain"
                                           else LINEAR_PER_PLAIN_OUTPUT[node.op] * outs)}
            for k, (prods, groups) in cands.items()}


def plan(node, ins, out, strands: str = "auto") -> Plan:
    """The layout of one signal-weight layer (Dense or Conv): the cheapest by the constraint formula."""
    check_mode(strands)
    b = signal_bounds(node, ins, out)
    L, nl = lane_geometry(b)
    cands = candidates(node, nl if strands == "auto" else 1)
    cost = costs(node, cands)
    layout = min(cost, key=lambda k: (cost[k]["O2"], cost[k]["O1"], k != "plain"))     # ties: plain
    packed = layout != "plain"
    return Plan(node.name, node.op, layout, TEMPLATES[(node.op, layout)], nl if packed else 1, L if packed else 0,
                cands[layout][0], cands["plain"][0], cands[layout][1], cost)


def forced_plan(node, ins, out, layout: str) -> Plan:
    """The plan of one given layout (ValueError when it does not apply: NL < 2, or Dense positions)."""
    b = signal_bounds(node, ins, out)
    L, nl = lane_geometry(b)
    cands = candidates(node, nl)
    if layout not in cands:
        raise ValueError(f"layout {layout!r} does not apply to {node.op} '{node.name}' (NL = {nl})")
    cost = costs(node, cands)
    packed = layout != "plain"
    return Plan(node.name, node.op, layout, TEMPLATES[(node.op, layout)], nl if packed else 1, L if packed else 0,
                cands[layout][0], cands["plain"][0], cands[layout][1], cost)


def component(node, ins, out, strands: str = "auto") -> tuple[str, list]:
    """Template and arguments of a signal-weight layer, its weights on the port `w`."""
    return template_args(node, ins, out, plan(node, ins, out, strands))


def template_args(node, ins, out, pl: Plan) -> tuple[str, list]:
    """The component of a signal-weight layer for a given plan (tests force each layout)."""
    b = signal_bounds(node, ins, out)
    p = node.params
    if node.op == "Dense":
        args = [("ROWS", p.rows), ("NIN", p.n_in), ("NOUT", p.n_out), ("WZP", p.w_zp), ("B", p.bias),
                ("XZP", p.x_zp), ("M", p.mult), ("K", b.circuit["K"]), *requant_args(b)]
    else:
        from .ops._window import geometry_args
        args = [*geometry_args(p.geometry()), ("CO", p.m), ("G", p.group), ("WZP", p.w_zp), ("B", p.bias),
                ("XZP", p.x_zp), ("MULT", p.mult), ("K", b.circuit["K"]), *requant_args(b)]
    if pl.layout != "plain":
        args += [("NL", pl.lanes), ("L", pl.lane_bits)]
    return pl.template, args


def plans(graph, layers, strands: str = "auto") -> list[Plan]:
    """The plan of every signal-weight layer [(node index, node)] of the graph."""
    return [plan(n, [graph.tensors[i] for i in n.inputs], graph.tensors[n.output], strands) for _, n in layers]
