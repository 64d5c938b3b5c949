"""Benchmark: development Groth16 setup (zkml.devsetup) vs snarkjs, on synthetic circuits.

For every size 2^p it generates a chain of multiplications whose domain is exactly 2^p
(constraints + public + 1 <= 2^p), compiles it with circom (zkml.toolchain.circom) in a temporary
folder, then measures, each step in its own process (peak memory is that process' max RSS):

  dev setup      zkml.devsetup.dev_setup -> .zkey (fresh toxic waste, no powers of tau)
  export vk      snarkjs zkey export verificationkey
  witness        node generate_witness.js
  prove          snarkjs groth16 prove with the dev key (reference backend)
  prove (ark)    zkml's arkworks backend (groth16py): key import + prove, same zkey and witness
  verify         snarkjs groth16 verify and zkml.pyverify must both accept each backend's proof

With --snarkjs it also times snarkjs' own `groth16 setup` + `zkey contribute` from a cached,
already prepared development ptau (~/.cache/zkml/ptau/dev_pot*_final.ptau, or $ZKML_CACHE/ptau)
when one of sufficient size exists; preparing that ptau (`powersoftau prepare phase2`) is not
redone here: it takes ~65 s at 2^12, ~9 min at 2^14, ~21 min at 2^16 on a 2-core machine.

    .venv/bin/python benchmarks/setup_bench.py                 # 2^12 2^14 2^16 2^18
    .venv/bin/python benchmarks/setup_bench.py 12 14 --snarkjs
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from zkml import devsetup, pyverify, toolchain  # noqa: E402

CIRCUIT = """pragma circom 2.0.0;
// synthetic benchmark circuit: N+1 multiplications, 1 public input, 1 public output
template Chain(N) {
    signal input in;
    signal input k;
    signal output out;
    signal x[N + 1];
    x[0] <== in * k;
    for (var i = 0; i < N; i++) {
        x[i + 1] <== (x[i] + i) * (x[i] + k);
    }
    out <== x[N];
}
component main {public [k]} = Chain(%d);
"""


def timed(cmd: list, cwd=None) -> tuple[float, float, str]:
    """Run cmd; (seconds, peak RSS in MiB of that process, stdout). Raises on failure."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t = time.perf_counter()
        proc = subprocess.Popen([str(c) for c in cmd], cwd=cwd, stdout=out, stderr=err, text=True)
        _, status, ru = os.wait4(proc.pid, 0)
        secs = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        so, se = out.read(), err.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{se[-2000:]}{so[-2000:]}")
    return secs, ru.ru_maxrss / 1024, so


def snarkjs_cmd(*args) -> list:
    return [toolchain.node(), "--max-old-space-size=16384",
            toolchain.node_modules() / "snarkjs" / "build" / "cli.cjs", *args]


def cached_ptau(power: int) -> Path | None:
    d = Path(os.environ.get("ZKML_CACHE", Path.home() / ".cache" / "zkml")) / "ptau"
    for p in range(power, 29):
        f = d / f"dev_pot{p}_final.ptau"
        if f.exists() and f.stat().st_size > 0:
            return f
    return None


def _verified(work: Path, proof: str, public: str) -> bool:
    _, _, out = timed(snarkjs_cmd("groth16", "verify", work / "vk.json", work / public, work / proof))
    return "OK" in out and pyverify.verify_files(work / "vk.json", work / proof, work / public)


def bench(power: int, work: Path, with_snarkjs: bool) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    # constraints = N + 1, public = 2 (out, k): N + 1 + 2 + 1 <= 2^power
    n = (1 << power) - 4
    src = work / "chain.circom"
    src.write_text(CIRCUIT % n)
    t = time.perf_counter()
    toolchain.circom(src, work, flags=["--r1cs", "--wasm", "--O2"])
    row: dict = {"power": power, "circom_s": time.perf_counter() - t}
    row["constraints"] = devsetup.R1cs(work / "chain.r1cs").n_constraints

    # dev setup in its own process (peak RSS of the setup alone)
    code = ("import json,sys; sys.path.insert(0, %r); from zkml.devsetup import dev_setup; "
            "print(json.dumps(dev_setup(sys.argv[1], sys.argv[2])))" % str(ROOT))
    secs, mem, out = timed([sys.executable, "-c", code, work / "chain.r1cs", work / "dev.zkey"])
    res = json.loads(out.strip().splitlines()[-1])
    if res["power"] != power:
        raise RuntimeError(f"domain 2^{res['power']} instead of 2^{power}")
    row.update(setup_s=res["seconds"], setup_proc_s=secs, setup_mib=mem, timings=res["timings"],
               zkey_mib=(work / "dev.zkey").stat().st_size / 2**20)

    row["export_s"], _, _ = timed(snarkjs_cmd("zkey", "export", "verificationkey", work / "dev.zkey", work / "vk.json"))
    (work / "input.json").write_text(json.dumps({"in": "3", "k": "5"}))
    row["witness_s"], row["witness_mib"], _ = timed(
        [toolchain.node(), work / "chain_js" / "generate_witness.js", work / "chain_js" / "chain.wasm",
         work / "input.json", work / "w.wtns"])
    row["prove_s"], row["prove_mib"], _ = timed(
        snarkjs_cmd("groth16", "prove", work / "dev.zkey", work / "w.wtns", work / "proof.json", work / "public.json"))
    ok = _verified(work, "proof.json", "public.json")
    # the arkworks backend in its own process: key import and prove timed separately
    code = ("import json,sys,time; sys.path.insert(0, %r); from pathlib import Path; "
            "from zkml.provers import ArkworksProver; t=time.perf_counter(); p=ArkworksProver(Path(sys.argv[1])); "
            "t1=time.perf_counter(); d=Path(sys.argv[3]); d.mkdir(exist_ok=True); p.prove(Path(sys.argv[2]), d); "
            "print(json.dumps([t1-t, time.perf_counter()-t1]))" % str(ROOT))
    _, row["ark_mib"], out = timed([sys.executable, "-c", code, work / "dev.zkey", work / "w.wtns", work / "ark"])
    row["ark_load_s"], row["ark_prove_s"] = json.loads(out.strip().splitlines()[-1])
    row["verified"] = bool(ok and _verified(work, "ark/proof.json", "ark/public.json"))

    if with_snarkjs:
        ptau = cached_ptau(power)
        if ptau is None:
            row["snarkjs_setup_s"] = None
        else:
            s1, m1, _ = timed(snarkjs_cmd("groth16", "setup", work / "chain.r1cs", ptau, work / "s0.zkey"))
            s2, m2, _ = timed(snarkjs_cmd("zkey", "contribute", work / "s0.zkey", work / "s1.zkey",
                                          "-name=bench", "-e=bench entropy"))
            row.update(snarkjs_setup_s=s1 + s2, snarkjs_setup_mib=max(m1, m2), snarkjs_ptau=ptau.name)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("powers", nargs="*", type=int, default=[12, 14, 16, 18])
    ap.add_argument("--snarkjs", action="store_true",
                    help="also time snarkjs groth16 setup + zkey contribute from a cached prepared ptau")
    ap.add_argument("--keep", type=Path, help="keep the work folders here instead of a temporary folder")
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} CPUs; python {sys.version.split()[0]}; command: "
          f"{' '.join([Path(sys.executable).name, *sys.argv])}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="zkml_bench_") as tmp:
        base = args.keep or Path(tmp)
        for p in args.powers:
            row = bench(p, base / f"p{p}", args.snarkjs)
            row["load"] = os.getloadavg()[0]
            rows.append(row)
            print(json.dumps({k: (round(v, 2) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)

    hdr = ["size", "constraints", "dev setup s", "setup MiB", "zkey MiB", "witness s", "snarkjs prove s",
           "snarkjs prove MiB", "arkworks load+prove s", "arkworks MiB", "verified", "load avg"]
    if args.snarkjs:
        hdr += ["snarkjs setup+contribute s (prepared ptau)"]
    print()
    print("| " + " | ".join(hdr) + " |")
    print("|" + "|".join("---" for _ in hdr) + "|")
    for r in rows:
        cells = [f"2^{r['power']}", str(r["constraints"]), f"{r['setup_s']:.1f}", f"{r['setup_mib']:.0f}",
                 f"{r['zkey_mib']:.0f}", f"{r['witness_s']:.1f}", f"{r['prove_s']:.1f}", f"{r['prove_mib']:.0f}",
                 f"{r['ark_load_s']:.1f}+{r['ark_prove_s']:.1f}", f"{r['ark_mib']:.0f}",
                 "yes" if r["verified"] else "NO", f"{r['load']:.1f}"]
        if args.snarkjs:
            s = r.get("snarkjs_setup_s")
            cells.append("no cached ptau" if s is None else f"{s:.1f} ({r['snarkjs_ptau']})")
        print("| " + " | ".join(cells) + " |")
    print("\nreference (issue 3, same machine): snarkjs `powersoftau prepare phase2` alone takes ~65 s at 2^12,"
          "\n~9 min at 2^14 and ~21 min at 2^16, before `groth16 setup`. 'load avg' is the 1-minute load"
          "\naverage after the row (2 CPUs: above 2 means other processes competed for the cores).")
    print("\ndev setup phases (s):")
    for r in rows:
        print(f"  2^{r['power']}: " + ", ".join(f"{k} {v:.2f}" for k, v in r["timings"].items()))


if __name__ == "__main__":
    main()
