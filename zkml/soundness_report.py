"""`python -m zkml.soundness_report`: run the adversarial suites and print what they attacked.

The suites (from a source checkout's tests/ folder, run in this process by pytest.main):

    tests/test_forgery.py      forged witnesses against RequantClamp, ReluZp, UintRange, a compiled model
    tests/test_op_attacks.py   the attacks of every operator in the registry (tests/op_zoo.py SPECS)
    tests/test_r1cs.py         the independent R1CS checker against snarkjs
    tests/test_properties.py   hypothesis: integer kernel == circuit witness, >= 1,000 cases per operator
    tests/test_hostile.py      bad files, the mutation fuzzer, bad inputs, swapped/tampered build files

Every forged witness goes through `circuit_harness.assert_rejected`, which counts it in
`circuit_harness.TALLY` ({(suite, kind): {tried, rejected}}); test_hostile.py counts its cases
there too. This command reads that tally after the run and prints, per template, the attacks
tried and rejected (they must be equal), the exhaustive bit-assignment enumerations, the
property cases per operator (from the suites' own output), the fuzz mutants and the hostile
inputs. It exits 0 only if every test passed and every attack was rejected.

    python -m zkml.soundness_report                 # all five suites (~3-4 minutes on 2 cores)
    python -m zkml.soundness_report --suite hostile --suite forgery
    python -m zkml.soundness_report -- -k requant    # extra pytest arguments after --
"""
from __future__ import annotations

import argparse
import collections
import io
import re
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path

SUITES = {
    "forgery": "test_forgery.py",
    "op_attacks": "test_op_attacks.py",
    "r1cs": "test_r1cs.py",
    "properties": "test_properties.py",
    "hostile": "test_hostile.py",
}

# the circom template(s) each tally kind attacks
_OP_TEMPLATES = {"Dense": "Dense + RequantClamp", "Add": "AddRequant + RequantClamp", "Relu": "ReluZp",
                 "UintRange": "UintRange", "Conv": "Conv2D + RequantClamp", "MaxPool": "MaxPool2D / MaxWindow",
                 "ConvMaxPool": "ConvMaxPool2D (running maximum + RequantClamp)",
                 "AvgPool": "AvgPool2D + RequantClamp", "Clip": "ClampQ", "IndexMap": "IndexMap (Transpose, Pad)",
                 "Concat": "Concat / ConcatSegment + RequantClamp"}
_FORGERY_TESTS = [("test_requant_", "RequantClamp"), ("test_relu_", "ReluZp"), ("test_uint_range_", "UintRange"),
                  ("test_model_", "compiled model (Dense + RequantClamp)")]
_PROPERTY_LINE = re.compile(r"^(?P<what>[\w ./+-]+): (?P<cases>\d+) generated cases over (?P<circuits>\d+) circuits",
                            re.M)
_EXHAUSTIVE = "exhaustive bit assignments (Python R1CS)"


def tests_dir() -> Path:
    from .toolchain import PROJECT_ROOT
    return PROJECT_ROOT / "tests"


class _Collector:
    """pytest plugin: outcome and captured output of every test."""

    def __init__(self):
        self.outcomes: dict[str, str] = {}
        self.seconds: dict[str, float] = collections.defaultdict(float)
        self.output: list[str] = []

    def pytest_runtest_logreport(self, report):
        self.seconds[report.nodeid] += report.duration
        if report.when == "call" or report.outcome != "passed":
            if report.nodeid not in self.outcomes or report.outcome != "passed":
                self.outcomes[report.nodeid] = report.outcome
        if report.capstdout:
            self.output.append(report.capstdout)


def template_of(suite: str, kind: str) -> str:
    """Which template a tally entry attacked (or the hostile-input group it belongs to)."""
    if suite == "test_op_attacks.py":
        op = kind.split(":", 1)[0]
        if op in _OP_TEMPLATES:
            return _OP_TEMPLATES[op]
        try:
            from .ops import REGISTRY
            return f"{op} ({REGISTRY[op].template_file})"
        except Exception:  # noqa: BLE001 - an op no longer registered: show its name
            return op
    if suite == "test_forgery.py":
        return next((t for prefix, t in _FORGERY_TESTS if kind.startswith(prefix)), kind)
    if kind.startswith("packed output"):
        return "packed public output (main.circom.j2)"
    return kind


def summarize(tally: dict, output: str) -> dict:
    """Group the harness tally: per template / hostile kind, exhaustive enumerations, property cases."""
    attacks: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    hostile: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    exhaustive = 0
    for (suite, kind), c in tally.items():
        if kind == _EXHAUSTIVE:
            exhaustive += c["tried"]
        elif kind.startswith("hostile: "):
            hostile[kind.removeprefix("hostile: ")].update(c)
        else:
            attacks[template_of(suite, kind)].update(c)
    props: dict[str, tuple[int, int]] = {}
    for m in _PROPERTY_LINE.finditer(output):
        props[m["what"]] = (int(m["cases"]), int(m["circuits"]))
    lines = output.splitlines()
    k = next((i for i, ln in enumerate(lines) if ln.startswith("mutation fuzzer (seed")), None)
    fuzzer = [] if k is None else lines[k:k + 3]      # test_hostile's printed fuzzer counts
    return dict(attacks=attacks, hostile=hostile, exhaustive=exhaustive, properties=props, fuzzer=fuzzer)


def _harness_tally() -> dict:
    mod = sys.modules.get("circuit_harness")
    return dict(getattr(mod, "TALLY", {}) or {})


def run(suites: list[str], extra: list[str], out=sys.stdout) -> int:
    import pytest

    tdir = tests_dir()
    files = [tdir / SUITES[s] for s in suites]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        print(f"error: the test suites are not here ({', '.join(missing)}); run this from a source checkout "
              "of zkml", file=sys.stderr)
        return 2
    col = _Collector()
    t0 = time.time()
    buf = io.StringIO()
    with redirect_stdout(buf):      # pytest's own progress; the report below is the output
        code = pytest.main(["-q", "-p", "no:cacheprovider", "--rootdir", str(tdir.parent), *map(str, files),
                            *extra], plugins=[col])
    seconds = time.time() - t0
    s = summarize(_harness_tally(), "\n".join(col.output))
    w = out.write

    by_file: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for nodeid, outcome in col.outcomes.items():
        by_file[nodeid.split("::")[0].rsplit("/", 1)[-1]][outcome] += 1
    w(f"zkml soundness report ({seconds:.0f} s)\n\nsuites:\n")
    for f in files:
        c = by_file.get(f.name, collections.Counter())
        secs = sum(v for k, v in col.seconds.items() if k.split("::")[0].endswith(f.name))
        w(f"  {f.name:24s} {c['passed']:4d} passed  {c['failed']:3d} failed  {c['skipped']:3d} skipped  "
          f"({secs:.0f} s)\n")
    failed = sorted(k for k, v in col.outcomes.items() if v == "failed")
    for k in failed[:40]:
        w(f"    FAILED {k}\n")
    if len(failed) > 40:
        w(f"    ... and {len(failed) - 40} more\n")

    tried = sum(c["tried"] for c in s["attacks"].values())
    rejected = sum(c["rejected"] for c in s["attacks"].values())
    w("\nforged witnesses (snarkjs wtns check + zkml.r1cs must reject each):\n")
    for t in sorted(s["attacks"]):
        c = s["attacks"][t]
        flag = "" if c["tried"] == c["rejected"] else "   <-- NOT ALL REJECTED"
        w(f"  {t:58s} tried {c['tried']:5d}  rejected {c['rejected']:5d}{flag}\n")
    w(f"  {'total':58s} tried {tried:5d}  rejected {rejected:5d}\n")
    w(f"  + {s['exhaustive']} exhaustive assignments of the attacker's free bits, none satisfying the R1CS\n")

    w("\nproperty cases (integer kernel == circuit witness, bit for bit):\n")
    for what, (cases, circuits) in sorted(s["properties"].items()):
        w(f"  {what:58s} {cases:6d} cases over {circuits} circuits\n")
    if not s["properties"]:
        w("  (none run)\n")

    w("\nhostile inputs (each: a named error, a rejection or a correct result; never a crash or false accept):\n")
    h_tried = sum(c["tried"] for c in s["hostile"].values())
    h_ok = sum(c["rejected"] for c in s["hostile"].values())
    fuzz = {k: c for k, c in s["hostile"].items() if k.startswith("mutation fuzzer")}
    for k in sorted(s["hostile"]):
        if k in fuzz:
            continue
        c = s["hostile"][k]
        w(f"  {k:58s} {c['tried']:5d} cases, {c['rejected']:5d} handled\n")
    if fuzz:
        n, ok = sum(c["tried"] for c in fuzz.values()), sum(c["rejected"] for c in fuzz.values())
        w(f"  {'mutation fuzzer (ONNX mutants)':58s} {n:5d} mutants, {ok:5d} handled\n")
        for line in s["fuzzer"][1:3]:          # compiled / emitted, refused by error kind
            w(f"    {line.strip()}\n")
        w("    per mutation: " + ", ".join(f"{k.removeprefix('mutation fuzzer ')} {fuzz[k]['tried']}"
                                          for k in sorted(fuzz)) + "\n")
    w(f"  {'total':58s} {h_tried:5d} cases, {h_ok:5d} handled\n")

    ok = code == 0 and tried == rejected and h_tried == h_ok
    w(f"\n{'OK' if ok else 'FAILED'}: {tried} attacks tried, {rejected} rejected; {h_tried} hostile inputs, "
      f"{h_ok} handled; pytest exit {int(code)}\n")
    if code != 0:
        w("(pytest's own output: rerun the failing suite with `.venv/bin/pytest tests/<suite>`)\n")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if "--" in argv:
        k = argv.index("--")
        argv, extra = argv[:k], argv[k + 1:]
    ap = argparse.ArgumentParser(prog="python -m zkml.soundness_report",
                                 description="Run the adversarial suites and print attacks tried/rejected.")
    ap.add_argument("--suite", action="append", choices=sorted(SUITES),
                    help="run only these suites (repeatable; default: all)")
    a = ap.parse_args(argv)
    return run(a.suite or list(SUITES), extra)


if __name__ == "__main__":
    sys.exit(main())
