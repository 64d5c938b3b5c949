"""An independent R1CS checker: circom `.r1cs` + snarkjs `.wtns` (+ `.sym` for names).

It shares no code with circom or snarkjs. It reads the iden3 binary formats itself and
evaluates every constraint

    (A · w) * (B · w) == (C · w)   (mod p)

for an arbitrary witness w, so tests (and auditors) can submit adversarial witnesses
directly, not only those the witness generator computes. It reports the first violated
constraint, every violated constraint on request, and the names of the signals a
constraint involves (from the `.sym` file).

    python -m zkml.r1cs build/main.r1cs build/witness.wtns [--sym build/main.sym] [--all]

exits 0 when every constraint holds, 1 when some constraint is violated (it prints the
first one with its signal names and values), 2 on unreadable or mismatched files.

File formats (little endian; the container is `zkml.binfile.sections`):

* `.r1cs`, section 1 (header): n8 u32, prime (n8 bytes), nWires u32, nPubOut u32, nPubIn u32,
  nPrvIn u32, nLabels u64, nConstraints u32; section 2: nConstraints × three linear
  combinations, each nTerms u32 then nTerms × (wire u32, coefficient n8 bytes, standard
  form, < p); section 3: nWires × label id u64.
* `.wtns`: see `zkml.wtns`. Wire 0 is the constant 1; wires 1..nPubOut are the public
  outputs, then the public inputs, then the private inputs, then internal signals.
* `.sym`: one line per signal `label, wire (-1 if eliminated), component, name`.
"""
from __future__ import annotations

import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import binfile
from .errors import BuildError

LC = dict  # {wire: coefficient}


@dataclass
class Violation:
    index: int                      # constraint index (the order of the .r1cs file and of snarkjs)
    a: int                          # A·w, B·w, C·w mod p
    b: int
    c: int
    wires: list[int]
    names: list[str] = field(default_factory=list)   # first .sym name of each wire (when known)

    def describe(self, values: list[int] | None = None) -> str:
        sig = ", ".join(f"{n}={values[w]}" if values is not None else n
                        for w, n in zip(self.wires, self.names or [f"w{w}" for w in self.wires]))
        return (f"constraint {self.index} violated: (A·w)(B·w) = {self.a}·{self.b} != C·w = {self.c} "
                f"(mod p); signals: {sig}")


class R1CS:
    """A parsed circom .r1cs file.

    `constraints[i]` is a tuple (A, B, C) of {wire: coefficient} dicts, coefficients in
    [0, p). Evaluation uses precomputed (wire, coefficient) tuples for speed.
    """

    def __init__(self, path: str | Path | None = None, *, data: bytes | None = None):
        if data is None:
            if path is None:
                raise TypeError("R1CS needs a path or data")
            p = Path(path)
            if not p.exists():
                raise BuildError(f"{p} not found")
            data = p.read_bytes()
        self.path = Path(path) if path is not None else None
        what = str(path) if path is not None else "r1cs data"
        try:  # a file shorter than its own headers makes struct raise: report it as truncated
            secs = binfile.sections(data, b"r1cs", what)
            for sid in (1, 2):
                if sid not in secs:
                    raise BuildError(f"{what}: missing section {sid}")
            h, hsize = secs[1]
            n8 = struct.unpack_from("<I", data, h)[0]
            if n8 == 0 or n8 % 8 or hsize != 4 + n8 + 28:
                raise BuildError(f"{what}: malformed header (n8={n8}, header size {hsize})")
            self.n8 = n8
            self.prime = int.from_bytes(data[h + 4:h + 4 + n8], "little")
            (self.n_wires, self.n_pub_out, self.n_pub_in, self.n_prv_in, self.n_labels,
             self.n_constraints) = struct.unpack_from("<IIIIQI", data, h + 4 + n8)
        except struct.error:
            raise BuildError(f"{what} is truncated") from None
        if self.prime < 2 or self.n_wires < 1:
            raise BuildError(f"{what}: malformed header (prime {self.prime}, {self.n_wires} wires)")
        pos, size = secs[2]
        end = pos + size
        p = self.prime
        constraints = []
        terms = []
        unpack_u32 = struct.Struct("<I").unpack_from
        from_bytes = int.from_bytes
        step = 4 + n8
        try:
            for _ in range(self.n_constraints):
                lcs = []
                for _ in range(3):
                    (n,) = unpack_u32(data, pos)
                    pos += 4
                    if pos + n * step > end:
                        raise BuildError(f"{what}: constraint section is truncated")
                    lc = {}
                    for _ in range(n):
                        (w,) = unpack_u32(data, pos)
                        c = from_bytes(data[pos + 4:pos + step], "little")
                        if w >= self.n_wires or c >= p:
                            raise BuildError(f"{what}: constraint {len(constraints)} has a term (wire {w}, "
                                             f"coefficient {c}) outside the header's bounds")
                        lc[w] = c
                        pos += step
                    lcs.append(lc)
                constraints.append(tuple(lcs))
                terms.append(tuple(tuple(lc.items()) for lc in lcs))
        except struct.error:
            raise BuildError(f"{what}: constraint section is truncated") from None
        if pos != end:
            raise BuildError(f"{what}: constraint section has {end - pos} trailing bytes")
        self.constraints: list[tuple[LC, LC, LC]] = constraints
        self._terms = terms
        self.wire_labels: list[int] | None = None
        if 3 in secs:
            lpos, lsize = secs[3]
            if lsize == 8 * self.n_wires:
                self.wire_labels = list(struct.unpack_from(f"<{self.n_wires}Q", data, lpos))

    # -- evaluation -----------------------------------------------------------------
    def _eval(self, lc, values) -> int:
        """A linear combination ({wire: coeff} or ((wire, coeff), ...)) at `values`, mod p."""
        items = lc.items() if isinstance(lc, dict) else lc
        return sum(c * values[w] for w, c in items) % self.prime

    def check_witness_shape(self, values: list[int], prime: int | None = None) -> None:
        """Raise BuildError unless `values` can be a witness of this R1CS."""
        if prime is not None and prime != self.prime:
            raise BuildError(f"the witness is over another field (prime {prime}) than the R1CS ({self.prime})")
        if len(values) != self.n_wires:
            raise BuildError(f"the witness has {len(values)} values, the R1CS has {self.n_wires} wires")
        if values[0] != 1:
            raise BuildError(f"wire 0 must be the constant 1, the witness has {values[0]}")

    def violated(self, values: list[int], first_only: bool = False, check_shape: bool = True) -> list[int]:
        """Indices of the constraints the witness violates (all, or only the first).

        Values are used as given (reduced mod p): a value >= p is the same field element as
        its remainder, as it is for snarkjs; `canonical()` says whether a witness is reduced."""
        if check_shape:
            self.check_witness_shape(values)
        p = self.prime
        bad = []
        for i, (a, b, c) in enumerate(self._terms):
            av = sum([k * values[w] for w, k in a]) if a else 0
            if av % p:
                bv = sum([k * values[w] for w, k in b]) if b else 0
                prod = av * bv
            else:
                prod = 0
            cv = sum([k * values[w] for w, k in c]) if c else 0
            if (prod - cv) % p:
                bad.append(i)
                if first_only:
                    break
        return bad

    def unsatisfied(self, values: list[int]) -> list[int]:
        """Indices of every violated constraint (harness compatibility)."""
        return self.violated(values, check_shape=False)

    def first_violated(self, values: list[int]) -> int | None:
        bad = self.violated(values, first_only=True)
        return bad[0] if bad else None

    def holds(self, values: list[int]) -> bool:
        return self.first_violated(values) is None

    def canonical(self, values: list[int]) -> bool:
        """Every value is a canonical field element in [0, p)."""
        return all(0 <= v < self.prime for v in values)

    def violation(self, i: int, values: list[int], names: dict[int, list[str]] | None = None) -> Violation:
        a, b, c = (self._eval(lc, values) for lc in self._terms[i])
        ws = sorted(self.wires(i))
        return Violation(i, a, b, c, ws, [names[w][0] if names and w in names else f"w{w}" for w in ws])

    # -- structure ------------------------------------------------------------------
    def wires(self, i: int) -> set[int]:
        """The non-constant wires constraint i mentions."""
        a, b, c = self.constraints[i]
        return {w for w in (*a, *b, *c) if w != 0}

    def constraints_of(self, wire: int) -> list[int]:
        """Indices of the constraints that mention `wire`."""
        if not hasattr(self, "_by_wire"):
            by: dict[int, list[int]] = {}
            for i in range(self.n_constraints):
                for w in self.wires(i):
                    by.setdefault(w, []).append(i)
            self._by_wire = by
        return self._by_wire.get(wire, [])

    @property
    def n_public(self) -> int:
        return self.n_pub_out + self.n_pub_in


# --------------------------------------------------------------------------- .sym
def read_sym(path: str | Path) -> dict[str, int]:
    """{signal name: witness index (-1 when the optimizer eliminated it)}."""
    p = Path(path)
    if not p.exists():
        raise BuildError(f"{p} not found")
    sym = {}
    for k, line in enumerate(p.read_text().splitlines()):
        if not line.strip():
            continue
        parts = line.split(",", 3)
        if len(parts) != 4:
            raise BuildError(f"{p}:{k + 1}: not a circom .sym line")
        try:
            sym[parts[3]] = int(parts[1])
        except ValueError:
            raise BuildError(f"{p}:{k + 1}: not a circom .sym line") from None
    return sym


def wire_names(sym: dict[str, int]) -> dict[int, list[str]]:
    """{wire: [signal names]} for the signals that survive in the witness."""
    out: dict[int, list[str]] = {}
    for s, i in sym.items():
        if i >= 0:
            out.setdefault(i, []).append(s)
    return out


# --------------------------------------------------------------------------- files
@dataclass
class Report:
    ok: bool
    constraints: int
    violations: list[Violation]
    values: list[int] = field(repr=False, default_factory=list)

    def __str__(self) -> str:
        if self.ok:
            return f"all {self.constraints} constraints hold"
        head = self.violations[0]
        more = f" ({len(self.violations)} violated)" if len(self.violations) > 1 else ""
        return head.describe(self.values) + more


def check(r1cs: str | Path | R1CS, wtns: str | Path | list[int], sym: str | Path | dict | None = None,
          all_violations: bool = False) -> Report:
    """Evaluate every constraint of `r1cs` at the witness (a .wtns path or a list of values)."""
    from .wtns import read_wtns
    r = r1cs if isinstance(r1cs, R1CS) else R1CS(r1cs)
    if isinstance(wtns, (str, Path)):
        values, prime = read_wtns(wtns)
        r.check_witness_shape(values, prime)
    else:
        values = list(wtns)
        r.check_witness_shape(values)
    names = None
    if sym is not None:
        names = wire_names(sym if isinstance(sym, dict) else read_sym(sym))
    bad = r.violated(values, first_only=not all_violations, check_shape=False)
    return Report(not bad, r.n_constraints, [r.violation(i, values, names) for i in bad], values)


def main(argv: list[str] | None = None) -> int:
    import argparse

    from .errors import ZkmlError
    ap = argparse.ArgumentParser(prog="python -m zkml.r1cs", description=__doc__.split("\n\n")[0])
    ap.add_argument("r1cs")
    ap.add_argument("wtns")
    ap.add_argument("--sym", help="circom .sym file (default: beside the .r1cs)")
    ap.add_argument("--all", action="store_true", help="list every violated constraint")
    a = ap.parse_args(argv)
    sym = a.sym or (Path(a.r1cs).with_suffix(".sym") if Path(a.r1cs).with_suffix(".sym").exists() else None)
    try:
        rep = check(a.r1cs, a.wtns, sym, all_violations=a.all)
    except ZkmlError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if rep.ok:
        print(rep)
        return 0
    for v in rep.violations:
        print(v.describe(rep.values))
    print(f"WITNESS IS NOT CORRECT: {len(rep.violations)}{'' if a.all else '+'} of {rep.constraints} "
          "constraints violated", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
