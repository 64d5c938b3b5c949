"""Test helper (not a test file): compile small circom circuits, compute witnesses and check
tampered ones against the R1CS.

    c = compile_circuit(source)              # circom --r1cs --wasm --sym --O2, cached per session
    w = c.witness({"in": [1, 2, 3]})          # node <name>_js/generate_witness.js, read with read_wtns
    c.index("main.rq[0].q")                   # witness index from the .sym file
    bad = c.tamper(w, {"main.rq[0].q": q + 1, ...})
    constraints_hold(c.r1cs, bad)             # snarkjs wtns check: False = some constraint fails

`constraints_hold` is the authority: snarkjs's own witness checker, either the command
`snarkjs wtns check <r1cs> <wtns>` (cli=True: its exit code and output) or the same snarkjs
library function `wtns.check` in one persistent node process (the default, ~0.35 s faster per
call; every honest baseline uses the CLI and test_forgery checks that both paths agree).
`R1CS` is the independent Python R1CS checker (zkml/r1cs.py) over the same .r1cs file: it
names the signals of a failing constraint (so a test can say *which* constraint catches an
attack) and evaluates constraints fast enough to enumerate every choice an attacker has for a handful of bits; every rejected
witness is also checked to fail first at the constraint snarkjs reports.

Signals eliminated by the optimizer have witness index -1 in the .sym file: they are not in
the witness at all, the R1CS uses the linear expression that defined them instead. An attack
can only set signals that survive (compile with flags=O1 to keep every non-alias signal).

Compiled circuits are cached by the hash of (source, flags, circuits/*.circom) in one temp
directory per test session (set ZKML_TEST_CIRCUIT_CACHE to keep the cache across sessions).
"""
from __future__ import annotations

import atexit
import collections
import hashlib
import itertools
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from zkml import r1cs
from zkml import toolchain
from zkml.errors import ToolError
from zkml.ir import BN254_R
from zkml.wtns import read_wtns, write_wtns

P = BN254_R
O2 = ["--r1cs", "--wasm", "--sym", "--O2"]
O1 = ["--r1cs", "--wasm", "--sym", "--O1"]

_cache_dir: Path | None = None
_compiled: dict[str, "Circuit"] = {}
_counter = itertools.count()


def cache_dir() -> Path:
    global _cache_dir
    if _cache_dir is None:
        env = os.environ.get("ZKML_TEST_CIRCUIT_CACHE")
        if env:
            _cache_dir = Path(env)
            _cache_dir.mkdir(parents=True, exist_ok=True)
        else:
            _cache_dir = Path(tempfile.mkdtemp(prefix="zkml-test-circuits-"))
            atexit.register(shutil.rmtree, _cache_dir, True)
    return _cache_dir


def _templates_digest() -> str:
    h = hashlib.sha256()
    for f in sorted(toolchain.CIRCUITS_DIR.glob("*.circom")):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


class Eliminated(KeyError):
    """The signal exists but the optimizer removed it from the witness."""


@dataclass
class Circuit:
    folder: Path
    name: str
    flags: list
    sym: dict = field(repr=False)          # signal name -> witness index (-1: eliminated)

    @property
    def r1cs(self) -> Path:
        return self.folder / f"{self.name}.r1cs"

    @property
    def wasm(self) -> Path:
        return self.folder / f"{self.name}_js" / f"{self.name}.wasm"

    # -- witness ------------------------------------------------------------------
    def witness(self, inputs: dict) -> list[int]:
        """Run the circom witness generator (WebAssembly) on `inputs` (ints or nested lists)."""
        k = next(_counter)
        inp = self.folder / f"input_{os.getpid()}_{k}.json"
        out = self.folder / f"witness_{os.getpid()}_{k}.wtns"
        inp.write_text(json.dumps(_stringify(inputs)))
        try:
            toolchain.run([toolchain.node(), self.folder / f"{self.name}_js" / "generate_witness.js",
                           self.wasm, inp, out], hint="the witness generator rejected the input")
            values, prime = read_wtns(out)
        finally:
            inp.unlink(missing_ok=True)
            out.unlink(missing_ok=True)
        assert prime == P
        return values

    # -- signal lookup ------------------------------------------------------------
    def survives(self, name: str) -> bool:
        return self.sym[name] >= 0

    def index(self, name: str) -> int:
        if name not in self.sym:
            close = [s for s in self.sym if s.startswith(name.rsplit(".", 1)[0])][:12]
            raise KeyError(f"no signal {name!r} in {self.name}.sym; signals nearby: {close}")
        i = self.sym[name]
        if i < 0:
            raise Eliminated(f"signal {name!r} was eliminated by the optimizer ({' '.join(self.flags)}); "
                             "target a surviving signal or compile with flags=O1")
        return i

    def value(self, values: list[int], name: str) -> int:
        return values[self.index(name)]

    def names(self, prefix: str) -> list[str]:
        """Every surviving signal whose name starts with `prefix`."""
        return [s for s, i in self.sym.items() if i >= 0 and s.startswith(prefix)]

    def wire_names(self) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for s, i in self.sym.items():
            if i >= 0:
                out.setdefault(i, []).append(s)
        return out

    def tamper(self, values: list[int], assign: dict[str, int], skip_eliminated: bool = False) -> list[int]:
        """A copy of `values` with the named signals set (mod p). Wire 0 stays the constant 1.

        With skip_eliminated, names the optimizer removed are ignored: the R1CS computes
        them from the surviving signals (as the linear expressions that replaced them)."""
        v = list(values)
        for name, x in assign.items():
            if skip_eliminated and name in self.sym and self.sym[name] < 0:
                continue
            v[self.index(name)] = x % P
        assert v[0] == 1, "wire 0 is the constant 1 in every R1CS witness"
        return v


def _stringify(x):
    if isinstance(x, dict):
        return {k: _stringify(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_stringify(v) for v in x]
    return str(int(x))


def read_sym(path: Path) -> dict[str, int]:
    sym = {}
    for line in Path(path).read_text().splitlines():
        if not line.strip():
            continue
        _label, widx, _comp, name = line.split(",", 3)
        sym[name] = int(widx)
    return sym


def compile_circuit(source: str, flags: list = O2, name: str = "circuit") -> Circuit:
    """Compile circom `source` (cached by source, flags and the template library)."""
    key = hashlib.sha256(json.dumps([source, list(flags), name, _templates_digest()]).encode()).hexdigest()[:24]
    if key in _compiled:
        return _compiled[key]
    folder = cache_dir() / key
    done = folder / ".done"
    if not done.exists():
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        (folder / f"{name}.circom").write_text(source)
        toolchain.circom(folder / f"{name}.circom", folder, flags=list(flags),
                         hint="circom rejected a test circuit")
        done.write_text("ok")
    c = Circuit(folder, name, list(flags), read_sym(folder / f"{name}.sym"))
    _compiled[key] = c
    return c


# --------------------------------------------------------------------------- checking
_ABORT = re.compile(r"aborting checking process at constraint (\d+)")

# The snarkjs CLI command `wtns check` is `wtns.check(r1cs, wtns, logger)` of the snarkjs
# library (snarkjs/cli.js, wtnsCheck) plus an exit code. Starting node and loading snarkjs
# costs ~0.35 s per call, so the bulk of the attacks go to one persistent node process that
# calls that same library function; `cli=True` runs the command line itself (used for every
# honest baseline and in a test that checks the two paths agree).
_CHECKER_JS = """
import readline from "node:readline";
const snarkjs = await import(process.argv[2]);
const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
    const [r1cs, wtns] = line.split("\\t");
    let msg = "";
    const logger = { info() {}, debug() {}, warn(m) { msg += m + "\\n"; }, error(m) { msg += m + "\\n"; } };
    let res;
    try {
        const ok = await snarkjs.wtns.check(r1cs, wtns, logger);
        res = { ok, msg };
    } catch (e) {
        res = { error: String(e && e.stack || e) };
    }
    process.stdout.write(JSON.stringify(res) + "\\n");
}
process.exit(0);
"""
_checker = None


def _checker_proc():
    global _checker
    if _checker is None or _checker.poll() is not None:
        script = cache_dir() / "wtns_check_server.mjs"
        script.write_text(_CHECKER_JS)
        main_js = (toolchain.node_modules() / "snarkjs" / "main.js").resolve().as_uri()
        _checker = subprocess.Popen([toolchain.node(), str(script), main_js], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, text=True, bufsize=1)
        atexit.register(_stop_checker, _checker)
    return _checker


def _stop_checker(proc) -> None:
    if proc.poll() is None:
        proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()


def snarkjs_check(r1cs: Path, values: list[int], cli: bool = False) -> int | None:
    """snarkjs `wtns check`: None when every constraint holds, else the first failing constraint.

    cli=True runs `snarkjs wtns check <r1cs> <wtns>` (exit code 0 = correct); otherwise the
    same snarkjs function in a persistent node process."""
    k = next(_counter)
    path = Path(r1cs).parent / f"check_{os.getpid()}_{k}.wtns"
    write_wtns(path, values, P)
    try:
        if cli:
            try:
                proc = toolchain.snarkjs("wtns", "check", r1cs, path)
            except ToolError as e:
                m = _ABORT.search(str(e))
                if m and "WITNESS IS NOT CORRECT" in str(e):
                    return int(m.group(1))
                raise
            out = proc.stdout + proc.stderr
            if "WITNESS IS CORRECT" not in out:
                raise AssertionError(f"unexpected snarkjs wtns check output:\n{out}")
            return None
        proc = _checker_proc()
        proc.stdin.write(f"{Path(r1cs).resolve()}\t{path.resolve()}\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        if not line:
            raise AssertionError("the snarkjs checker process died")
        res = json.loads(line)
        if "error" in res:
            raise AssertionError(f"snarkjs wtns check failed: {res['error']}")
        if res["ok"]:
            return None
        m = _ABORT.search(res["msg"])
        assert m, res["msg"]
        return int(m.group(1))
    finally:
        path.unlink(missing_ok=True)


def constraints_hold(r1cs: Path, values: list[int], cli: bool = False) -> bool:
    """True iff snarkjs `wtns check` accepts the witness (every R1CS constraint holds)."""
    return snarkjs_check(r1cs, values, cli=cli) is None


class R1CS(r1cs.R1CS):
    """The independent Python R1CS checker (zkml/r1cs.py) plus signal names from a Circuit."""

    def signals(self, i: int, circuit: Circuit) -> set[str]:
        """The (first) name of every signal constraint i mentions."""
        names = circuit.wire_names()
        return {names[w][0] for w in self.wires(i)}


_r1cs_cache: dict[Path, R1CS] = {}


def r1cs_of(circuit: Circuit) -> R1CS:
    if circuit.r1cs not in _r1cs_cache:
        _r1cs_cache[circuit.r1cs] = R1CS(circuit.r1cs)
    return _r1cs_cache[circuit.r1cs]


def caught_by(circuit: Circuit, values: list[int]) -> set[str]:
    """Signals of every violated constraint (Python evaluation of the same R1CS)."""
    r = r1cs_of(circuit)
    return set().union(set(), *[r.signals(i, circuit) for i in r.unsatisfied(values)])


# --------------------------------------------------------------------------- attack tally
# {(suite, kind): {"tried": n, "rejected": n}}: every forged witness submitted by assert_rejected,
# every exhaustive assignment enumeration, and every hostile input of tests/test_hostile.py.
# `python -m zkml.soundness_report` runs the suites and prints it.
TALLY: dict = collections.defaultdict(collections.Counter)


def tally_key(kind: str | None = None) -> tuple[str, str]:
    cur = os.environ.get("PYTEST_CURRENT_TEST", "?::?").split(" ")[0]
    path, _, test = cur.partition("::")
    return Path(path).name, kind or test.split("[")[0]


def tally(kind: str, tried: int = 1, rejected: int | None = None) -> None:
    """Record attacks done outside assert_rejected (rejected defaults to tried)."""
    key = tally_key(kind)
    TALLY[key]["tried"] += tried
    TALLY[key]["rejected"] += tried if rejected is None else rejected


def assert_rejected(circuit: Circuit, values: list[int], *, caught_in: str | tuple = (),
                    cli: bool = False, kind: str | None = None) -> set[str]:
    """snarkjs must reject the witness; the Python evaluator must agree on the first failing
    constraint; when `caught_in` is given, some violated constraint must involve a signal whose
    name contains one of those substrings. Returns the names in the violated constraints.
    Every call is counted in TALLY under `kind` (default: the calling test's name)."""
    key = tally_key(kind)
    TALLY[key]["tried"] += 1
    first = snarkjs_check(circuit.r1cs, values, cli=cli)
    assert first is not None, "snarkjs accepted a forged witness: SOUNDNESS BUG"
    r = r1cs_of(circuit)
    bad = r.unsatisfied(values)
    assert bad and bad[0] == first, f"Python R1CS evaluation ({bad[:5]}) disagrees with snarkjs ({first})"
    names = set().union(set(), *[r.signals(i, circuit) for i in bad])
    if caught_in:
        pats = (caught_in,) if isinstance(caught_in, str) else tuple(caught_in)
        assert any(p in n for n in names for p in pats), \
            f"expected a violated constraint on {pats}; violated constraints involve {sorted(names)}"
    TALLY[key]["rejected"] += 1
    return names


def assert_accepted(circuit: Circuit, values: list[int]) -> None:
    """The honest witness must pass snarkjs and the Python evaluator (so attacks mean something)."""
    assert constraints_hold(circuit.r1cs, values, cli=True), "`snarkjs wtns check` rejects the honest witness"
    assert constraints_hold(circuit.r1cs, values), "snarkjs (library) rejects the honest witness"
    assert r1cs_of(circuit).unsatisfied(values) == []


def no_assignment_satisfies(circuit: Circuit, values: list[int], free: list[str],
                            domain=(0, 1), limit: int = 1 << 16, honest: list[int] | None = None) -> bool:
    """Exhaustively try every assignment of `domain` values to the surviving signals `free`
    (the attacker's remaining choices, e.g. the bits of a decomposition) with the Python
    evaluator. True when none satisfies the R1CS. With `honest` (the honest witness), an
    assignment that reproduces it wire for wire does not count: it is no forgery (e.g. a forged
    quotient q + 2^(100-S) whose low QBITS bits, all an attacker can write into the decomposition,
    are the honest q's)."""
    idx = [circuit.index(n) for n in free if circuit.survives(n)]
    assert len(domain) ** len(idx) <= limit, f"{len(domain)}^{len(idx)} assignments is too many"
    r = r1cs_of(circuit)
    # only the constraints that touch a free wire can change; the others must already fail or hold
    touched = [i for i in range(r.n_constraints) if r.wires(i) & set(idx)]
    fixed_ok = not [i for i in r.unsatisfied(values) if i not in touched]
    if not fixed_ok:
        return True
    v = list(values)
    p = r.prime
    for choice in itertools.product(domain, repeat=len(idx)):
        for w, x in zip(idx, choice):
            v[w] = x % p
        if all((r._eval(a, v) * r._eval(b, v) - r._eval(c, v)) % p == 0
               for a, b, c in (r.constraints[i] for i in touched)):
            if honest is not None and all(x % p == y % p for x, y in zip(v, honest)):
                continue
            return False
    tally("exhaustive bit assignments (Python R1CS)", len(domain) ** len(idx))
    return True


def bits(x: int, n: int) -> list[int]:
    """The n low bits of x mod p (what an attacker would put in a Num2Bits(n))."""
    x %= P
    return [(x >> i) & 1 for i in range(n)]


# a main component wrapping N RequantClamp instances (format with args=..., n=...)
REQUANT_MAIN = """pragma circom 2.1.0;
include "requant.circom";

template Main(N) {{
    signal input in[N];
    signal output out[N];
    component rq[N];
    for (var i = 0; i < N; i++) {{
        rq[i] = RequantClamp({args});
        rq[i].in <== in[i];
        out[i] <== rq[i].out;
    }}
}}

component main = Main({n});
"""
