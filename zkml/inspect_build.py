"""`zkml inspect BUILD`: where the constraints go and where the quantization error comes from.

For each IR node: op, input and output shapes, output bits and the widest value its
constraints handle (from the bound analysis), the R1CS constraints attributed to it, and the
largest difference between its dequantized integer output and onnxruntime's float value of the
same tensor over sample inputs (the calibration set recorded in build.json by default).

Attribution of constraints: the emitted circuit names every node's component `n<k>_<name>`
(zkml/emit.py), and circom's .sym file names the wires. A constraint of node k involves node k's
own signals and node k's inputs, which are node k-1's outputs under another name; so each
constraint goes to the highest node index among the names of its wires. Constraints touching no
node (the input range check, output packing, commitments) are reported under their component.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .errors import BuildError, InputError
from .ir import Graph, verify
from .r1cs import R1CS, read_sym

_NODE = re.compile(r"^main\.n(\d+)_")
_TOP = re.compile(r"^main\.([A-Za-z_][A-Za-z0-9_]*)")


@dataclass
class Row:
    index: int
    name: str
    op: str
    inputs: str
    output: str
    bits: int
    max_bits: int
    constraints: int
    max_err: float | None = None      # max |dequantized integer - onnxruntime float|
    max_err_lsb: float | None = None  # the same in units of the output's quantization step

    @property
    def per_value(self) -> float:
        size = int(np.prod([int(d) for d in re.findall(r"\d+", self.output)] or [1]))
        return self.constraints / max(size, 1)


def attribute_constraints(build: Path) -> dict[str, int]:
    """{"n<k>" or component name: constraints} for build/main.r1cs with build/main.sym."""
    r = R1CS(build / "main.r1cs")
    sym = read_sym(build / "main.sym")
    owner: dict[int, tuple[int, int, str]] = {}     # wire -> (node index or -1, in a component?, key)
    for name, w in sym.items():
        if w < 0:
            continue
        m = _NODE.match(name)
        if m:
            cand = (int(m.group(1)), 1, f"n{m.group(1)}")
        else:   # main.<component>.<signal> names a component; main.<signal> is the top level
            top = _TOP.match(name)
            comp = top is not None and name.count(".") >= 2
            cand = (-1, int(comp), top.group(1) if comp else "main")
        if w not in owner or cand[:2] > owner[w][:2]:
            owner[w] = cand
    counts: dict[str, int] = {}
    for a, b, c in r.constraints:
        best = (-2, 0, "main")
        for lc in (a, b, c):
            for w in lc:
                o = owner.get(w)
                if o is not None and o[:2] > best[:2]:
                    best = o
        counts[best[2]] = counts.get(best[2], 0) + 1
    return counts


def _samples(build: Path, meta: dict, g: Graph, samples: str | Path | None, n: int) -> tuple[np.ndarray, str]:
    from .inputs import load_samples
    shape = g.tensors[g.inputs[0]].shape
    src = samples or ((meta.get("calibration") or {}).get("file"))
    if src and Path(src).exists():
        arr = load_samples(src, shape, "samples")
        return arr[:n], str(src)
    if samples:
        raise InputError(f"{samples}: no such file")
    rng = np.random.default_rng(0)
    return rng.standard_normal((min(n, 16), *shape)), "standard-normal random inputs (no calibration file found)"


def inspect(build: str | Path, samples: str | Path | None = None, n_samples: int = 64,
            reference: bool = True) -> tuple[list[Row], dict]:
    """The per-node table and a summary dict (totals, sample source)."""
    import zkml_runtime as rt
    build = Path(build)
    for f in ("model.ir.json", "main.r1cs", "main.sym", "build.json"):
        if not (build / f).exists():
            raise BuildError(f"{build / f} not found: run `zkml compile` first")
    meta = json.loads((build / "build.json").read_text())
    g = Graph.load(build / "model.ir.json")
    bounds = verify(g)
    counts = attribute_constraints(build)
    errs: dict[str, tuple[float, float]] = {}
    source = None
    if reference and (build / "model.onnx").exists():
        import onnx
        from .quantize import run_float
        xs, source = _samples(build, meta, g, samples, n_samples)
        names = [n.output for n in g.nodes]
        ref = run_float(onnx.load(str(build / "model.onnx")), xs, names)
        for x_i, x in enumerate(xs):
            q, _ = rt.quantize_input(g, x)
            vals = rt.run(g, q)
            for t in names:
                deq = rt.dequantize(g, t, vals[t]).reshape(-1)
                r = ref[t][x_i].reshape(-1)
                if r.size != deq.size:
                    continue
                e = float(np.abs(deq - r).max(initial=0.0))
                prev = errs.get(t, (0.0, 0.0))
                errs[t] = (max(prev[0], e), max(prev[1], e / g.tensors[t].scale))
    rows = []
    for k, n in enumerate(g.nodes):
        b = bounds.get(n.name)
        out = g.tensors[n.output]
        e = errs.get(n.output)
        rows.append(Row(k, n.name, n.op, " ".join(str(g.tensors[i].shape) for i in n.inputs), str(out.shape),
                        out.bits, getattr(b, "max_bits", out.bits), counts.get(f"n{k}", 0),
                        None if e is None else e[0], None if e is None else e[1]))
    other = {k: v for k, v in counts.items() if not re.fullmatch(r"n\d+", k)}
    summary = dict(constraints=sum(counts.values()), other=other, samples=source,
                   circuit=meta.get("circuit"))
    return rows, summary


def table(rows: list[Row], summary: dict) -> str:
    lines = ["| # | node | op | inputs | output | bits (max) | constraints | per value | max error (LSB) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        err = "—" if r.max_err is None else f"{r.max_err:.4g} ({r.max_err_lsb:.2f})"
        lines.append(f"| {r.index} | {r.name} | {r.op} | {r.inputs} | {r.output} | {r.bits} ({r.max_bits}) | "
                     f"{r.constraints:,} | {r.per_value:.1f} | {err} |")
    for k, v in sorted(summary["other"].items()):
        lines.append(f"| | {k} | | | | | {v:,} | | |")
    lines.append(f"| | **total** | | | | | **{summary['constraints']:,}** | | |")
    return "\n".join(lines)


def chart(rows: list[Row], summary: dict, path: Path, title: str = "") -> Path:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise BuildError("the chart needs matplotlib: pip install matplotlib") from None
    labels = [f"{r.index} {r.op} {r.name[:28]}" for r in rows] + sorted(summary["other"])
    values = [r.constraints for r in rows] + [summary["other"][k] for k in sorted(summary["other"])]
    fig, ax = plt.subplots(figsize=(9, 0.4 * len(labels) + 1.5))
    ax.barh(range(len(labels)), values, color="#3b6ea8")
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("R1CS constraints")
    ax.set_title(title or f"constraints per layer (total {summary['constraints']:,})")
    for i, v in enumerate(values):
        ax.text(v, i, f" {v:,}", va="center", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def to_json(rows: list[Row], summary: dict) -> dict:
    return dict(nodes=[asdict(r) for r in rows], **summary)
