"""Slicing benchmark: a ~540k-parameter generator (examples/slicing/generator.py, ~1.3M = 2^20.3
constraints estimated) monolithic vs 2, 4 and 8 slices. Prints a table and writes OUT/results.json.
The generator has five layer boundaries: for 8 slices zkml splits its big layers into output-channel
groups (docs/SLICING.md). `--mlp` runs the fully connected 559k-parameter variant instead.

    .venv/bin/python benchmarks/slicing_bench.py [--out DIR] [--slices 4 1 2 8] [--scale 1]
                                                 [--limit-gib 8] [--timeout 5400]
    .venv/bin/python benchmarks/slicing_bench.py --out DIR --report    # the table of a run so far

For every configuration (1 = monolithic, `zkml compile`; N = `zkml compile --slices N`):
  * total constraints (the commitments' overhead against the monolithic count),
  * the compile's wall time and peak memory (its process tree, sampled every 0.2 s),
  * setup + prove: monolithic as `zkml setup` and `zkml prove` processes; sliced as
    `zkml prove --ray --workers 1` (keys made inside each Ray task), then prove-only runs with
    1 and 2 local Ray workers. A task's peak memory is the peak RSS of its own Ray worker process
    and its children (prove.json of the segment: each task runs in a fresh worker, max_calls=1),
  * `zkml verify` of the result.
Every measured process runs under a watchdog that kills its process tree when the tree's RSS
exceeds --limit-gib: "over limit" in the table means the step does not fit in that memory.

Extrapolation to W machines (printed): the segments are independent tasks, so with W workers
the proving wall time is the makespan of the measured per-task times scheduled longest-first
on W workers, plus the fixed part of the measured 1-worker run (its wall time minus the sum of
its task times: process and Ray start, the reference runtime's boundary pass), bounded below by
the longest task. This ignores contention between tasks on one machine (2 workers on this
2-core machine share caches and memory bandwidth) and file transfer to other machines.
"""
from __future__ import annotations

import argparse
import heapq
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
PY = str(ROOT / ".venv" / "bin" / "python")
ZKML = str(ROOT / ".venv" / "bin" / "zkml")


def run_measured(cmd: list[str], limit_mib: float, timeout: float) -> dict:
    """Run cmd; sample the RSS of its process tree; kill it above limit_mib or after timeout."""
    t0 = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.extend(proc.stdout), daemon=True)
    reader.start()
    peak, status = 0.0, None
    p = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            rss = sum(c.memory_info().rss for c in [p, *p.children(recursive=True)]) / 2**20
        except psutil.Error:
            rss = 0.0
        peak = max(peak, rss)
        if rss > limit_mib or time.time() - t0 > timeout:
            status = "over limit" if rss > limit_mib else "timeout"
            for c in [*p.children(recursive=True), p]:
                try:
                    c.kill()
                except psutil.Error:
                    pass
            break
        time.sleep(0.2)
    proc.wait()
    reader.join(timeout=5)
    status = status or ("ok" if proc.returncode == 0 else f"exit {proc.returncode}")
    return dict(cmd=" ".join(cmd), status=status, seconds=round(time.time() - t0, 1), peak_mib=round(peak),
                tail="".join(out)[-1500:])


def makespan(times: list[float], workers: int) -> float:
    """Longest-processing-time-first schedule of independent tasks on `workers` machines."""
    loads = [0.0] * workers
    heapq.heapify(loads)
    for t in sorted(times, reverse=True):
        heapq.heappush(loads, heapq.heappop(loads) + t)
    return max(loads)


def bench(cfg: int, out: Path, model: Path, calib: Path, inp: Path, limit: float, timeout: float, log) -> dict:
    b = out / f"build_{cfg}"
    r: dict = dict(slices=cfg)
    compile_cmd = [ZKML, "compile", str(model), "-c", str(calib), "-o", str(b)] + (["--slices", str(cfg)] if cfg > 1 else [])
    r["compile"] = run_measured(compile_cmd, limit, timeout)
    log(f"[{cfg}] compile: {r['compile']['status']} {r['compile']['seconds']} s, {r['compile']['peak_mib']} MiB")
    if r["compile"]["status"] != "ok":
        return r
    if cfg == 1:
        r["constraints"] = [json.loads((b / "build.json").read_text())["circuit"]["constraints"]]
        r["setup"] = run_measured([ZKML, "setup", str(b)], limit, timeout)
        log(f"[1] setup: {r['setup']['status']} {r['setup']['seconds']} s, {r['setup']['peak_mib']} MiB")
        if r["setup"]["status"] == "ok":
            for w in (1, 2):    # arkworks threads: the monolith as one task on 1 or 2 cores
                r[f"prove_w{w}"] = run_measured(["env", f"RAYON_NUM_THREADS={w}", ZKML, "prove", str(b), "-i",
                                                 str(inp), "--prover", "arkworks"], limit, timeout)
                log(f"[1] prove ({w} thread): {r[f'prove_w{w}']['status']} {r[f'prove_w{w}']['seconds']} s, "
                    f"{r[f'prove_w{w}']['peak_mib']} MiB")
            r["verify"] = run_measured([ZKML, "verify", str(b)], limit, timeout)["status"]
        return r
    man = json.loads((b / "slices.json").read_text())
    r["constraints"] = [s["constraints"] for s in man["segments"]]
    for name, w in (("setup_prove_w1", 1), ("prove_w1", 1), ("prove_w2", 2)):
        if name != "setup_prove_w1":
            for s in man["segments"]:       # keep the keys, drop the proofs
                for f in ("proof.json", "public.json", "prove.json"):
                    (b / s["dir"] / f).unlink(missing_ok=True)
        run = run_measured([ZKML, "prove", str(b), "-i", str(inp), "--ray", "--workers", str(w),
                            "--prover", "arkworks"], limit, timeout)
        if run["status"] == "ok":
            recs = [json.loads((b / s["dir"] / "prove.json").read_text()) for s in man["segments"]]
            run["tasks"] = [dict(seconds=x["seconds"], peak_mib=x["peak_rss_mib"]) for x in recs]
        r[name] = run
        log(f"[{cfg}] {name}: {run['status']} {run['seconds']} s, driver+workers {run['peak_mib']} MiB, "
            f"task peaks {[t['peak_mib'] for t in run.get('tasks', [])]}")
    r["verify"] = run_measured([ZKML, "verify", str(b)], limit, timeout)["status"]
    return r


def table(results: list[dict]) -> str:
    mono = next((x for x in results if x["slices"] == 1 and "constraints" in x), None)
    rows = ["| slices | constraints (per segment) | overhead | compile s / MiB | setup+prove peak MiB per task | "
            "prove peak MiB per task | prove wall 1 worker s | prove wall 2 workers s | W=4 / W=8 est. s | verify |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for x in results:
        if "constraints" not in x:
            rows.append(f"| {x['slices']} | compile {x['compile']['status']} after {x['compile']['seconds']} s "
                        f"at {x['compile']['peak_mib']} MiB | | | | | | | | |")
            continue
        tot = sum(x["constraints"])
        over = f"+{tot - sum(mono['constraints']):,}" if mono and x is not mono else "-"
        c = x["compile"]
        if x["slices"] == 1:
            sp = f"{x['setup']['peak_mib']} ({x['setup']['status']})"
            pp = " / ".join(f"{x[k]['peak_mib']}" for k in ("prove_w1", "prove_w2") if k in x)
            w1 = x.get("prove_w1", {}).get("seconds", "-")
            w2 = x.get("prove_w2", {}).get("seconds", "-")
            est = f"{w1} (one task)"
        else:
            def peak(k):
                t = x.get(k, {}).get("tasks")
                return f"{max(tt['peak_mib'] for tt in t):.0f}" if t else x.get(k, {}).get("status", "-")
            sp, pp = peak("setup_prove_w1"), peak("prove_w2")
            w1 = x.get("prove_w1", {}).get("seconds", "-")
            w2 = x.get("prove_w2", {}).get("seconds", "-")
            t1 = [t["seconds"]["total"] for t in x.get("prove_w1", {}).get("tasks", [])]
            fixed = max(0.0, float(w1) - sum(t1)) if t1 else 0.0      # Ray start + runtime pass + process start
            est = " / ".join(f"{makespan(t1, w) + fixed:.1f}" for w in (4, 8)) if t1 else "-"
        rows.append(f"| {x['slices']} | {tot:,} ({', '.join(f'{v:,}' for v in x['constraints'])}) | {over} | "
                    f"{c['seconds']} / {c['peak_mib']} | {sp} | {pp} | {w1} | {w2} | {est} | {x.get('verify', '-')} |")
    return "\n".join(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/zkml_slicing_bench"))
    ap.add_argument("--slices", type=int, nargs="+", default=[4, 1, 2, 8])
    ap.add_argument("--scale", type=int, default=1, help="divide the generator's channels (quick runs)")
    ap.add_argument("--width", type=float, default=1.0, help="multiply the generator's channels (bigger models)")
    ap.add_argument("--mlp", action="store_true", help="the fully connected generator (559k parameters, ~2^17 "
                                                       "constraints; at most 4 segments)")
    ap.add_argument("--limit-gib", type=float, default=8.0)
    ap.add_argument("--timeout", type=float, default=5400, help="per measured step, seconds")
    ap.add_argument("--report", action="store_true", help="only print the table of OUT/results.json (a run so far)")
    a = ap.parse_args()
    if a.report:
        print(table(json.loads((a.out / "results.json").read_text())["results"]))
        return
    a.out.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT / "examples" / "slicing"))
    import generator
    model = generator.export(a.out, a.scale, mlp=a.mlp, width=a.width)
    n_params = generator.parameters(generator.mlp_generator(a.scale) if a.mlp else generator.generator(a.scale, a.width))
    log = lambda s: print(time.strftime("%H:%M:%S"), s, flush=True)  # noqa: E731
    log(f"generator: {n_params:,} parameters ({model}); load average {os.getloadavg()[0]:.1f}")
    res_path = a.out / "results.json"
    results = []
    for cfg in a.slices:
        results.append(bench(cfg, a.out, model, a.out / "calibration.npy", a.out / "input.json",
                             a.limit_gib * 1024, a.timeout, log))
        res_path.write_text(json.dumps(dict(parameters=n_params, results=results), indent=2))
    print()
    print(table(results))
    print(f"\nW=4 / W=8: longest-first makespan of the 1-worker task times on W machines (see the docstring); "
          f"load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
