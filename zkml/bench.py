"""`zkml bench`: zkml and EZKL side by side on the same ONNX models, plus a scaling curve.

For every model it runs zkml's pipeline (compile, setup, witness, prove, verify, on-chain
verification on the embedded EVM) and, when the optional `ezkl` package is installed, EZKL's
(gen_settings + calibrate_settings for each target, compile_circuit, gen_srs, setup, gen_witness,
prove, verify, create_evm_verifier + the same embedded EVM). Each step runs in a fresh Python
process; its wall time is measured inside that process (imports excluded) and its peak memory
covers the whole process tree: the larger of the kernel's max RSS over the process and its
waited-for children (os.wait4, i.e. getrusage(RUSAGE_CHILDREN) of node/circom/snarkjs too) and
the summed RSS of the live tree polled every 50 ms with psutil (when installed).

Both tools get the same model file, the same calibration samples and the same accuracy samples.
A trailing Softmax is removed from the model given to both: zkml leaves a final Softmax to the
caller (it proves the logits), so EZKL proves the logits too.

    zkml bench                              # digits, LeNet (float and QDQ), every shared model
    zkml bench digits 1l_mlp --no-ezkl      # a subset, zkml rows only
    zkml bench --scaling                    # MLP and CNN families at growing width, fitted growth

Results go to OUT/bench.json, OUT/bench.md and OUT/bench.png (OUT/scaling.* with --scaling).
"""
from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import InputError, ZkmlError

ROOT = Path(__file__).resolve().parent.parent
Log = Callable[[str], None]

# the table's columns: (key, header)
COLUMNS = [
    ("model", "model"), ("tool", "tool"), ("size", "circuit size"),
    ("compile_s", "compile s"), ("setup_s", "setup s"), ("witness_s", "witness s"), ("prove_s", "prove s"),
    ("verify_s", "verify s"), ("compile_mib", "compile MiB"), ("setup_mib", "setup MiB"),
    ("witness_mib", "witness MiB"), ("prove_mib", "prove MiB"), ("proof_bytes", "proof B"),
    ("pk_mib", "pk MiB"), ("gas", "verify gas"), ("max_err", "max abs err"), ("argmax", "argmax agree"),
    ("note", "note"),
]
# ratios EZKL / zkml printed per model and EZKL target
RATIO_KEYS = [("setup_s", "setup"), ("prove_s", "prove"), ("prove_mib", "prove memory"),
              ("proof_bytes", "proof size"), ("pk_mib", "proving key"), ("gas", "verify gas")]


# --------------------------------------------------------------------------- models
@dataclass
class BenchModel:
    name: str
    onnx: Path
    calibration: np.ndarray         # float samples, shape (n, *input shape without batch)
    samples: np.ndarray             # accuracy samples (the first one is proven)
    params: int | None = None       # scaling family: parameters and multiply-accumulates
    macs: int | None = None
    family: str | None = None


def shared_models_dir() -> Path:
    return Path(os.environ.get("ZKML_SHARED_MODELS", ROOT.parent / "shared" / "models"))


def _json_input(path: Path) -> np.ndarray:
    try:
        d = json.loads(Path(path).read_text())
        return np.asarray(d["input_data"][0] if isinstance(d, dict) else d, dtype=np.float64).reshape(-1)
    except (OSError, ValueError, KeyError, IndexError, TypeError) as e:
        raise InputError(f"{path}: not a readable input ({type(e).__name__})") from None


def _around(x: np.ndarray, n: int, seed: int) -> np.ndarray:
    """x and n-1 random inputs around it (the shared models ship one input and no data set)."""
    rng = np.random.default_rng(seed)
    return np.concatenate([x[None], x[None] + rng.normal(0, 0.5, (n - 1, x.size))])


def default_models(names: list[str] | None = None, n_cal: int = 64, n_samples: int = 8) -> list[BenchModel]:
    """The digits MLP, the LeNet CNN (float and QDQ) and every shared model; `names` selects
    some of them, or gives paths to .onnx files (with input.json beside them)."""
    models: list[BenchModel] = []
    for ex, files in (("digits", ["model.onnx"]), ("lenet", ["model.onnx", "model_qdq.onnx"])):
        d = ROOT / "examples" / ex
        if not d.exists():
            continue
        cal, test = np.load(d / "calibration.npy"), np.load(d / "test_set.npz")["x"]
        for f in files:
            name = ex if f == "model.onnx" else f"{ex}_qdq"
            models.append(BenchModel(name, d / f, cal[:n_cal], test[:n_samples]))
    shared = shared_models_dir()
    for d in sorted(shared.iterdir()) if shared.is_dir() else []:
        if (d / "network.onnx").exists() and (d / "input.json").exists():
            xs = _around(_json_input(d / "input.json"), max(n_cal, n_samples), 0)
            models.append(BenchModel(d.name, d / "network.onnx", xs[:n_cal], xs[:n_samples]))
    if not names:
        return models
    by_name, picked = {m.name: m for m in models}, []
    for n in names:
        p = Path(n)
        if n in by_name:
            picked.append(by_name[n])
        elif p.suffix == ".onnx" and p.exists():
            inp = p.parent / "input.json"
            if not inp.exists():
                raise InputError(f"{p}: give an input.json beside the model ({{\"input_data\": [[...]]}})")
            xs = _around(_json_input(inp), max(n_cal, n_samples), 0)
            picked.append(BenchModel(p.stem, p, xs[:n_cal], xs[:n_samples]))
        else:
            raise InputError(f"unknown benchmark model '{n}' (known: {', '.join(by_name)}; or a path to .onnx)")
    return picked


def scaling_models(work: Path, mlp_widths=(16, 32, 64, 128, 256), cnn_channels=(2, 4, 8, 16)) -> list[BenchModel]:
    """64->w->w->10 MLPs and 1x16x16 CNNs (conv c, pool, conv 2c, pool, dense 10), random weights."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)

    def init(name, shape, fan_in):
        return numpy_helper.from_array(rng.normal(0, 1 / math.sqrt(fan_in), shape).astype(np.float32), name)

    def save(name, nodes, inits, in_shape):
        g = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, *in_shape])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
        m.ir_version = 8
        onnx.checker.check_model(m)
        onnx.save(m, work / f"{name}.onnx")
        return work / f"{name}.onnx", sum(int(np.prod(i.dims)) for i in inits)

    out = []
    xs = rng.normal(0, 1, (72, 64))
    for w in mlp_widths:
        dims, nodes, inits, cur = [64, w, w, 10], [], [], "x"
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            inits += [init(f"w{i}", (b, a), a), init(f"b{i}", (b,), a)]
            o = "y" if i == 2 else f"h{i}"
            nodes.append(helper.make_node("Gemm", [cur, f"w{i}", f"b{i}"], [o], transB=1, name=f"fc{i}"))
            if i < 2:
                nodes.append(helper.make_node("Relu", [o], [f"r{i}"], name=f"relu{i}"))
                o = f"r{i}"
            cur = o
        path, params = save(f"mlp_w{w}", nodes, inits, [64])
        macs = sum(a * b for a, b in zip(dims[:-1], dims[1:]))
        out.append(BenchModel(f"mlp_w{w}", path, xs[:64], xs[64:], params, macs, "mlp"))
    xs = rng.uniform(0, 1, (72, 1, 16, 16))
    for c in cnn_channels:
        inits = [init("k0", (c, 1, 3, 3), 9), init("c0", (c,), 9), init("k1", (2 * c, c, 3, 3), 9 * c),
                 init("c1", (2 * c,), 9 * c), init("wf", (10, 2 * c * 16), 2 * c * 16), init("bf", (10,), 2 * c * 16),
                 numpy_helper.from_array(np.array([1, 2 * c * 16], dtype=np.int64), "shape")]
        nodes = [helper.make_node("Conv", ["x", "k0", "c0"], ["a0"], pads=[1, 1, 1, 1], name="conv0"),
                 helper.make_node("Relu", ["a0"], ["r0"], name="relu0"),
                 helper.make_node("MaxPool", ["r0"], ["p0"], kernel_shape=[2, 2], strides=[2, 2], name="pool0"),
                 helper.make_node("Conv", ["p0", "k1", "c1"], ["a1"], pads=[1, 1, 1, 1], name="conv1"),
                 helper.make_node("Relu", ["a1"], ["r1"], name="relu1"),
                 helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2], name="pool1"),
                 helper.make_node("Reshape", ["p1", "shape"], ["f"], name="flatten"),
                 helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], transB=1, name="fc")]
        path, params = save(f"cnn_c{c}", nodes, inits, [1, 16, 16])
        params -= 2                                  # the reshape target is not a parameter
        macs = 16 * 16 * c * 9 + 8 * 8 * 2 * c * 9 * c + 2 * c * 16 * 10
        out.append(BenchModel(f"cnn_c{c}", path, xs[:64], xs[64:], params, macs, "cnn"))
    return out


def strip_softmax(src: Path, dst: Path) -> bool:
    """Copy the model without a trailing Softmax (its input becomes the graph output)."""
    import onnx
    m = onnx.load(str(src))
    g = m.graph
    last = [n for n in g.node if n.op_type == "Softmax" and n.output[0] in [o.name for o in g.output]]
    if len(last) == 1 and len(g.output) == 1 and not any(last[0].output[0] in n.input for n in g.node):
        sm = last[0]
        g.node.remove(sm)
        g.output[0].name = sm.input[0]
        onnx.save(m, str(dst))
        return True
    shutil.copyfile(src, dst)
    return False


# --------------------------------------------------------------------------- measuring a step
@dataclass
class Measured:
    seconds: float | None       # measured inside the step's process (imports excluded)
    peak_mib: float             # peak memory of the step's process tree
    result: dict
    error: str = ""


def _tree_rss(pid: int) -> int:
    try:
        import psutil
    except ImportError:
        return 0
    try:
        p = psutil.Process(pid)
        procs = [p, *p.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for q in procs:
        try:
            total += q.memory_info().rss
        except psutil.Error:
            pass
    return total


def measure(step: str, args: dict, timeout: float = 900, max_mib: float = 12 * 1024) -> Measured:
    """Run STEPS[step](**args) in a fresh Python process, bounded in time and memory."""
    with tempfile.TemporaryDirectory(prefix="zkml-bench-") as tmp:
        res_p = Path(tmp) / "result.json"
        log_p = Path(tmp) / "log.txt"
        with open(log_p, "w") as log:
            proc = subprocess.Popen([sys.executable, "-m", "zkml.bench", step, json.dumps(args), str(res_p)],
                                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=ROOT, start_new_session=True)
            t0, peak, killed = time.monotonic(), 0, ""
            while True:
                pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                peak = max(peak, _tree_rss(proc.pid))
                if not killed and time.monotonic() - t0 > timeout:
                    killed = f"stopped after {timeout:.0f} s (time bound)"
                elif not killed and peak > max_mib * 2**20:
                    killed = f"stopped above {max_mib / 1024:.0f} GiB (memory bound)"
                if killed:
                    os.killpg(proc.pid, signal.SIGKILL)   # its own session: the step and its children
                time.sleep(0.05)
            proc.returncode = os.waitstatus_to_exitcode(status)
        peak_mib = max(peak, ru.ru_maxrss * 1024) / 2**20
        try:
            out = json.loads(res_p.read_text())
        except (OSError, ValueError):
            tail = " ".join(log_p.read_text(errors="replace").strip().splitlines()[-3:])[-300:]
            out = {"error": killed or f"exit {proc.returncode}: {tail}"}
    return Measured(out.get("seconds"), round(peak_mib, 1), out.get("result") or {}, out.get("error", ""))


def _child(step: str, args_json: str, result_path: str) -> None:
    """Entry point of a step's process: time STEPS[step], write {seconds, result} or {error}."""
    args = json.loads(args_json)
    try:
        t = time.perf_counter()
        result = STEPS[step](**args)
        out = {"seconds": round(time.perf_counter() - t, 3), "result": result}
    except ZkmlError as e:
        out = {"error": str(e).splitlines()[0][:300]}
    except BaseException as e:     # EZKL's Rust panics surface as pyo3 PanicException (BaseException)
        out = {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"}
    Path(result_path).write_text(json.dumps(out))


# --------------------------------------------------------------------------- zkml steps
def _z_compile(model, build, calibration):
    from . import api
    meta = api.compile(model, build, calibration)
    return dict(constraints=meta["circuit"]["constraints"], wires=meta["circuit"]["wires"],
                level=meta["circuit"]["circom"])


def _z_setup(build):
    from . import api
    return dict(kind=api.setup(build).get("kind"))


def _z_witness(build, input):
    from . import api
    return dict(outputs=api.witness(build, input)[1])


def _z_prove(build):
    from .provers import get_prover
    backend = get_prover("auto", Path(build) / "main.zkey")
    backend.prove(Path(build) / "witness.wtns", Path(build))
    return dict(prover=backend.name)


def _z_verify(build):
    from . import api
    r = api.verify(build)
    return dict(valid=bool(r.valid and r.snarkjs and r.python))


def _z_evm(build):
    from . import api
    r = api.deploy(build)
    return dict(valid=r.valid, gas=r.verify_gas, code_size=r.code_size, mode=r.mode)


def _z_accuracy(build, samples):
    """Integer runtime vs onnxruntime on each sample: max |err| (floats), LSB, argmax agreement."""
    from . import api
    errs, lsbs, agree = [], [], 0
    with tempfile.TemporaryDirectory() as tmp:
        for k, x in enumerate(samples):
            p = Path(tmp) / f"{k}.npy"
            np.save(p, np.asarray(x, dtype=np.float64))
            r = api.run(build, p)
            errs.append(r.max_abs_diff)
            lsbs.append(r.max_diff_lsb)
            agree += int(np.argmax(r.outputs) == np.argmax(r.reference))
    return dict(max_err=max(errs), max_lsb=max(lsbs), agree=agree, n=len(samples), out_size=len(r.outputs))


# --------------------------------------------------------------------------- EZKL steps
def _ezkl_data(x: np.ndarray, path: Path) -> Path:
    """EZKL's input file: {"input_data": [flat floats]}; several samples are concatenated."""
    path.write_text(json.dumps({"input_data": [np.asarray(x, dtype=np.float64).reshape(-1).tolist()]}))
    return path


def _e_settings(model, calibration, settings, target, max_logrows):
    import ezkl
    ra = ezkl.PyRunArgs()
    ra.input_visibility, ra.output_visibility, ra.param_visibility = "private", "public", "fixed"
    if not ezkl.gen_settings(model, settings, py_run_args=ra):
        raise ZkmlError("ezkl gen_settings failed")
    if not ezkl.calibrate_settings(calibration, model, settings, target, max_logrows=max_logrows):
        raise ZkmlError(f"ezkl calibrate_settings ({target}) failed")
    s = json.loads(Path(settings).read_text())
    ra = s["run_args"]
    return dict(logrows=ra["logrows"], num_rows=s.get("num_rows"), input_scale=ra["input_scale"],
                param_scale=ra["param_scale"], lookup_range=ra.get("lookup_range"),
                check_mode=ra.get("check_mode"), num_inner_cols=ra.get("num_inner_cols"),
                assignments=s.get("total_assignments"))


def _e_compile(model, compiled, settings):
    import ezkl
    if not ezkl.compile_circuit(model, compiled, settings):
        raise ZkmlError("ezkl compile_circuit failed")
    return {}


def _e_srs(srs, logrows):
    import ezkl
    ezkl.gen_srs(srs, logrows)
    return {}


def _e_setup(compiled, vk, pk, srs):
    import ezkl
    if not ezkl.setup(compiled, vk, pk, srs):
        raise ZkmlError("ezkl setup failed")
    return dict(pk_mib=round(Path(pk).stat().st_size / 2**20, 3))


def _e_witness(data, compiled, witness):
    import ezkl
    ezkl.gen_witness(data, compiled, witness)
    return {}


def _e_prove(witness, compiled, pk, proof, srs):
    import ezkl
    ezkl.prove(witness, compiled, pk, proof, srs)
    p = json.loads(Path(proof).read_text())
    return dict(proof_bytes=len(p["hex_proof"].removeprefix("0x")) // 2,
                instances=sum(len(i) for i in p["instances"]))


def _e_verify(proof, settings, vk, srs):
    import ezkl
    return dict(valid=bool(ezkl.verify(proof, settings, vk, srs)))


def _e_evm(vk, settings, srs, proof, work):
    """EZKL's Solidity verifier, compiled with the same solcjs and run on the same embedded EVM."""
    import asyncio
    import ezkl
    from . import evm
    work = Path(work)
    sol, abi = work / "Verifier.sol", work / "abi.json"

    async def render():
        return await ezkl.create_evm_verifier(vk, settings, str(sol), str(abi), srs, False)
    try:
        asyncio.run(render())
    except RuntimeError as e:
        # it writes the source, then fetches a solc binary to compile it: offline that fails;
        # zkml's solcjs compiles the source instead
        if not sol.exists():
            raise ZkmlError(f"ezkl create_evm_verifier failed: {str(e)[:200]}") from None
    compiled = evm.compile_solidity(sol.read_text(), "Halo2Verifier")
    if compiled.code_size > evm.EIP170_LIMIT:
        return dict(valid=None, code_size=compiled.code_size,
                    note=f"verifier {compiled.code_size} B > EIP-170")
    w3 = evm.connect(None)
    addr = evm.deploy(w3, compiled).address
    data = bytes(ezkl.encode_evm_calldata(proof, str(work / "calldata.bin"), None))
    frm, gas = w3.eth.accounts[0], 15_000_000
    ok = int.from_bytes(w3.eth.call({"to": addr, "data": data, "from": frm, "gas": gas}), "big") == 1
    rc = w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction({"to": addr, "data": data, "from": frm,
                                                                      "gas": gas}))
    bad = bytearray(data)
    bad[4 + 32 * 4 + 40] ^= 1          # one bit of the proof's first commitment
    try:
        forged = int.from_bytes(w3.eth.call({"to": addr, "data": bytes(bad), "from": frm, "gas": gas}), "big") == 1
    except Exception:  # the verifier reverts on a point off the curve: rejected
        forged = False
    return dict(valid=ok and rc["status"] == 1 and not forged, gas=rc["gasUsed"], code_size=compiled.code_size)


def _e_accuracy(compiled, settings, samples, work):
    import ezkl
    scale = json.loads(Path(settings).read_text())["model_output_scales"][0]
    outs = []
    for k, x in enumerate(samples):
        w = ezkl.gen_witness(str(_ezkl_data(np.asarray(x), Path(work) / f"acc{k}.json")), compiled,
                             str(Path(work) / f"accw{k}.json"))
        outs.append([ezkl.felt_to_float(f, scale) for f in w["outputs"][0]])
    return dict(outputs=outs)


STEPS: dict[str, Callable[..., dict]] = {
    "zkml.compile": _z_compile, "zkml.setup": _z_setup, "zkml.witness": _z_witness, "zkml.prove": _z_prove,
    "zkml.verify": _z_verify, "zkml.evm": _z_evm, "zkml.accuracy": _z_accuracy,
    "ezkl.settings": _e_settings, "ezkl.compile": _e_compile, "ezkl.srs": _e_srs, "ezkl.setup": _e_setup,
    "ezkl.witness": _e_witness, "ezkl.prove": _e_prove, "ezkl.verify": _e_verify, "ezkl.evm": _e_evm,
    "ezkl.accuracy": _e_accuracy,
}


# --------------------------------------------------------------------------- pipelines
@dataclass
class Limits:
    timeout: float = 900            # seconds per step
    max_mib: float = 12 * 1024      # memory per step (process tree)
    max_logrows: int = 20           # EZKL: models calibrated above this are skipped


def _ort_outputs(model: Path, samples: np.ndarray) -> list[np.ndarray]:
    import onnx
    from .quantize import run_float
    m = onnx.load(str(model))
    name = m.graph.output[0].name
    shape = [d.dim_value or 1 for d in m.graph.input[0].type.tensor_type.shape.dim]   # batch_size -> 1
    return [run_float(m, np.asarray(x, dtype=np.float32).reshape(1, *shape), [name])[name].reshape(-1)
            for x in samples]


def _accuracy_cells(outs: list, refs: list) -> dict:
    err = max(float(np.abs(np.asarray(o) - r).max()) for o, r in zip(outs, refs))
    agree = sum(int(np.argmax(o) == np.argmax(r)) for o, r in zip(outs, refs))
    return dict(max_err=err, agree=agree, n=len(refs), out_size=len(refs[0]))


def run_zkml(m: BenchModel, model: Path, work: Path, lim: Limits, log: Log) -> dict:
    build = work / "zkml"
    cal = work / "calibration.npy"
    np.save(cal, m.calibration)
    inp = work / "input.npy"
    np.save(inp, m.samples[0])
    row: dict = dict(model=m.name, tool="zkml", params=m.params, macs=m.macs, family=m.family)
    plan = [("compile", "zkml.compile", dict(model=str(model), build=str(build), calibration=str(cal))),
            ("setup", "zkml.setup", dict(build=str(build))),
            ("witness", "zkml.witness", dict(build=str(build), input=str(inp))),
            ("prove", "zkml.prove", dict(build=str(build))),
            ("verify", "zkml.verify", dict(build=str(build))),
            ("evm", "zkml.evm", dict(build=str(build))),
            ("accuracy", "zkml.accuracy", dict(build=str(build), samples=np.asarray(m.samples).tolist()))]
    for label, step, args in plan:
        r = measure(step, args, lim.timeout, lim.max_mib)
        log(f"  zkml {label:8s} {_fmt_s(r.seconds)} s  {r.peak_mib:8.0f} MiB  {r.error or ''}")
        if r.error:
            row["note"] = f"{label}: {r.error}"
            break
        row[f"{label}_s"], row[f"{label}_mib"] = r.seconds, r.peak_mib
        res = r.result
        if label == "compile":
            row.update(constraints=res["constraints"], size=f"{res['constraints']:,} constraints",
                       circom=res["level"])
            row["pk_mib"] = None
        elif label == "setup":
            row["pk_mib"] = round((build / "main.zkey").stat().st_size / 2**20, 3)
        elif label == "prove":
            row["proof_bytes"] = 256     # Groth16 on BN254: A, C in G1 and B in G2, uncompressed (EVM calldata)
            row["prover"] = res["prover"]
        elif label == "verify" and not res["valid"]:
            row["note"] = "proof rejected"
            break
        elif label == "evm":
            row["gas"] = res["gas"] if res["valid"] else None
            if not res["valid"]:
                row["note"] = "on-chain verification returned false"
        elif label == "accuracy":
            row.update(res)
    return row


def run_ezkl(m: BenchModel, model: Path, work: Path, target: str, lim: Limits, srs_dir: Path,
             log: Log, refs: list) -> dict:
    w = work / f"ezkl_{target}"
    w.mkdir(parents=True, exist_ok=True)
    row: dict = dict(model=m.name, tool=f"ezkl ({target})", params=m.params, macs=m.macs, family=m.family)
    cal = _ezkl_data(m.calibration, w / "calibration.json")
    data = _ezkl_data(m.samples[0], w / "input.json")
    f = {k: str(w / v) for k, v in dict(settings="settings.json", compiled="network.ezkl", vk="vk.key",
                                        pk="pk.key", witness="witness.json", proof="proof.json").items()}
    r = measure("ezkl.settings", dict(model=str(model), calibration=str(cal), settings=f["settings"], target=target,
                                      max_logrows=lim.max_logrows), lim.timeout, lim.max_mib)
    log(f"  {row['tool']:18s} calibrate {_fmt_s(r.seconds)} s {r.peak_mib:6.0f} MiB  {r.error}")
    if r.error:
        row["note"] = f"calibrate: {r.error}"
        return row
    s = r.result
    row.update(settings_s=r.seconds, settings_mib=r.peak_mib, logrows=s["logrows"], rows=s["num_rows"], ezkl_settings=s,
               size=f"2^{s['logrows']} rows ({s['num_rows']:,} used)")
    if s["logrows"] > lim.max_logrows:
        row["note"] = f"logrows {s['logrows']} > {lim.max_logrows}: skipped (memory/time bound)"
        return row
    srs = srs_dir / f"kzg{s['logrows']}.srs"
    if not srs.exists():
        r = measure("ezkl.srs", dict(srs=str(srs), logrows=s["logrows"]), lim.timeout, lim.max_mib)
        log(f"  {row['tool']:18s} gen_srs 2^{s['logrows']} {_fmt_s(r.seconds)} s  {r.error}")
        if r.error:
            row["note"] = f"gen_srs: {r.error}"
            return row
        row["srs_s"] = r.seconds
    plan = [("compile", "ezkl.compile", dict(model=str(model), compiled=f["compiled"], settings=f["settings"])),
            ("setup", "ezkl.setup", dict(compiled=f["compiled"], vk=f["vk"], pk=f["pk"], srs=str(srs))),
            ("witness", "ezkl.witness", dict(data=str(data), compiled=f["compiled"], witness=f["witness"])),
            ("prove", "ezkl.prove", dict(witness=f["witness"], compiled=f["compiled"], pk=f["pk"],
                                         proof=f["proof"], srs=str(srs))),
            ("verify", "ezkl.verify", dict(proof=f["proof"], settings=f["settings"], vk=f["vk"], srs=str(srs))),
            ("evm", "ezkl.evm", dict(vk=f["vk"], settings=f["settings"], srs=str(srs), proof=f["proof"],
                                     work=str(w))),
            ("accuracy", "ezkl.accuracy", dict(compiled=f["compiled"], settings=f["settings"],
                                               samples=np.asarray(m.samples).tolist(), work=str(w)))]
    for label, step, args in plan:
        r = measure(step, args, lim.timeout, lim.max_mib)
        log(f"  {row['tool']:18s} {label:8s} {_fmt_s(r.seconds)} s  {r.peak_mib:8.0f} MiB  {r.error or ''}")
        if r.error:
            row["note"] = f"{label}: {r.error}"
            break
        row[f"{label}_s"], row[f"{label}_mib"] = r.seconds, r.peak_mib
        res = r.result
        if label == "compile":      # zkml's compile calibrates too: compare with calibrate + compile_circuit
            row["compile_circuit_s"] = r.seconds
            row["compile_s"] = round(row["settings_s"] + r.seconds, 3)
            row["compile_mib"] = max(row["settings_mib"], r.peak_mib)
        elif label == "setup":
            row["pk_mib"] = res["pk_mib"]
        elif label == "prove":
            row["proof_bytes"] = res["proof_bytes"]
        elif label == "verify" and not res["valid"]:
            row["note"] = "proof rejected by ezkl verify"
            break
        elif label == "evm":
            row["gas"] = res.get("gas") if res.get("valid") else None
            if res.get("note"):
                row["note"] = res["note"]
            elif not res.get("valid"):
                row["note"] = "on-chain verification failed"
        elif label == "accuracy" and refs is not None:
            row.update(_accuracy_cells(res["outputs"], refs))
    (w / "pk.key").unlink(missing_ok=True)     # GBs at large logrows: keep the disk free
    return row


def ezkl_available() -> bool:
    try:
        import ezkl  # noqa: F401
        return True
    except ImportError:
        return False


def bench(models: list[BenchModel], out: Path, *, ezkl: bool | None = None,
          targets: tuple[str, ...] = ("resources", "accuracy"), lim: Limits | None = None,
          log: Log = lambda s: None) -> list[dict]:
    """Run both pipelines on each model; rows (dicts) in the order zkml, then each EZKL target."""
    lim = lim or Limits()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    use_ezkl = ezkl_available() if ezkl is None else ezkl
    if use_ezkl and not ezkl_available():
        raise ZkmlError("EZKL is not installed: pip install 'zkml[bench]' (or run with --no-ezkl)")
    srs_dir = out / "srs"
    srs_dir.mkdir(exist_ok=True)
    rows = []
    for m in models:
        work = out / "work" / m.name
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        model = work / "model.onnx"
        stripped = strip_softmax(m.onnx, model)
        log(f"{m.name}: {m.onnx}" + ("  (trailing Softmax removed: both tools prove the logits)" if stripped else ""))
        row = run_zkml(m, model, work, lim, log)
        rows.append(row)
        if use_ezkl:
            try:
                refs = _ort_outputs(model, m.samples)
            except Exception as e:
                refs = None
                log(f"  onnxruntime cannot run {m.name}: {e}")
            for t in targets:
                rows.append(run_ezkl(m, model, work, t, lim, srs_dir, log, refs))
        shutil.rmtree(work / "zkml" / "main_js", ignore_errors=True)   # keys and witness code: the bulk of
        (work / "zkml" / "main.zkey").unlink(missing_ok=True)           # the disk; figures are in bench.json
        (out / "bench.json").write_text(json.dumps(rows, indent=1, default=str))
    return rows


# --------------------------------------------------------------------------- report
def _fmt_s(v) -> str:
    return "    -" if v is None else (f"{v:5.2f}" if v < 10 else f"{v:5.1f}" if v < 100 else f"{v:5.0f}")


def _cell(row: dict, key: str) -> str:
    v = row.get(key)
    if key == "argmax":
        if row.get("n") is None:
            return ""
        return "n/a (1 output)" if row.get("out_size") == 1 else f"{row['agree']}/{row['n']}"
    if key == "max_err":
        if v is None:
            return ""
        return f"{v:.3g}" + (f" ({row['max_lsb']:.1f} LSB)" if row.get("max_lsb") is not None else "")
    if v is None:
        return ""
    if key.endswith("_s"):
        return _fmt_s(v).strip()
    if key.endswith("_mib"):
        return f"{v:,.1f}" if v < 10 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v).replace("|", "/")


def markdown_table(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(h for _, h in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cell(r, k) for k, _ in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def ratios(rows: list[dict]) -> list[dict]:
    """EZKL / zkml for each model and target where both have the figure."""
    zk = {r["model"]: r for r in rows if r["tool"] == "zkml"}
    out = []
    for r in rows:
        z = zk.get(r["model"])
        if r["tool"] == "zkml" or z is None:
            continue
        rr = dict(model=r["model"], tool=r["tool"])
        for k, _ in RATIO_KEYS:
            if r.get(k) and z.get(k):
                rr[k] = r[k] / z[k]
        out.append(rr)
    return out


def _geomean(v: list[float]) -> float | None:
    return math.exp(sum(math.log(x) for x in v) / len(v)) if v else None


def ratio_table(rows: list[dict]) -> str:
    rs = ratios(rows)
    head = "| model | EZKL target | " + " | ".join(h for _, h in RATIO_KEYS) + " |"
    lines = [head, "|" + "---|" * (2 + len(RATIO_KEYS))]
    for r in rs:
        lines.append(f"| {r['model']} | {r['tool']} | " +
                     " | ".join(f"{r[k]:.1f}×" if k in r else "" for k, _ in RATIO_KEYS) + " |")
    for tool in sorted({r["tool"] for r in rs}):
        g = [_geomean([r[k] for r in rs if r["tool"] == tool and k in r]) for k, _ in RATIO_KEYS]
        lines.append(f"| **geometric mean** | {tool} | " +
                     " | ".join("" if x is None else f"**{x:.1f}×**" for x in g) + " |")
    return "\n".join(lines)


def chart(rows: list[dict], path: Path) -> Path | None:
    """Setup, prove time, prove memory and proof size per model, one bar per tool (log scale)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    models = list(dict.fromkeys(r["model"] for r in rows))
    tools = list(dict.fromkeys(r["tool"] for r in rows))
    by = {(r["model"], r["tool"]): r for r in rows}
    panels = [("setup_s", "setup (s)"), ("prove_s", "prove (s)"), ("prove_mib", "prove peak memory (MiB)"),
              ("gas", "on-chain verify gas")]
    fig, axes = plt.subplots(len(panels), 1, figsize=(min(24, max(8, 0.3 * len(models) * len(tools))),
                                                      3.2 * len(panels)))
    width = 0.8 / len(tools)
    for ax, (key, title) in zip(axes, panels):
        for i, t in enumerate(tools):
            vals = [by.get((m, t), {}).get(key) or 0 for m in models]
            ax.bar([j + i * width for j in range(len(models))], vals, width, label=t)
        ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xticks([j + (len(tools) - 1) * width / 2 for j in range(len(models))])
        ax.set_xticklabels(models, rotation=45, ha="right", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def fit_growth(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares exponent b of y = a·x^b (a line in log-log)."""
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if x and y and x > 0 and y > 0]
    if len(pts) < 2:
        return None
    mx, my = sum(p[0] for p in pts) / len(pts), sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx if sxx else None


SCALING_KEYS = [("constraints", "constraints"), ("rows", "EZKL rows used"), ("setup_s", "setup s"),
                ("prove_s", "prove s"), ("prove_mib", "prove MiB"), ("pk_mib", "pk MiB")]


def scaling_report(rows: list[dict]) -> str:
    lines = ["| model | tool | params | MACs | " + " | ".join(h for _, h in SCALING_KEYS) + " |",
             "|" + "---|" * (4 + len(SCALING_KEYS))]
    for r in rows:
        lines.append(f"| {r['model']} | {r['tool']} | {r['params']:,} | {r['macs']:,} | " +
                     " | ".join(_cell(r, k) for k, _ in SCALING_KEYS) + (f" {r['note']}" if r.get("note") else "") + " |")
    lines += ["", "Fitted growth y ∝ x^b (least squares in log-log):", "",
              "| family | tool | quantity | b vs params | b vs MACs |", "|---|---|---|---|---|"]
    for fam in dict.fromkeys(r["family"] for r in rows):
        for tool in dict.fromkeys(r["tool"] for r in rows):
            rs = [r for r in rows if r["family"] == fam and r["tool"] == tool]
            for k, h in SCALING_KEYS:
                ys = [r.get(k) for r in rs]
                bp = fit_growth([r["params"] for r in rs], ys)
                bm = fit_growth([r["macs"] for r in rs], ys)
                if bp is not None:
                    lines.append(f"| {fam} | {tool} | {h} | {bp:.2f} | {bm:.2f} |")
    return "\n".join(lines)


def scaling_chart(rows: list[dict], path: Path) -> Path | None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    keys = [("constraints", "constraints / EZKL rows"), ("setup_s", "setup (s)"), ("prove_s", "prove (s)")]
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 4))
    for ax, (k, title) in zip(axes, keys):
        for fam in dict.fromkeys(r["family"] for r in rows):
            for tool in dict.fromkeys(r["tool"] for r in rows):
                rs = [r for r in rows if r["family"] == fam and r["tool"] == tool]
                kk = "rows" if k == "constraints" and tool != "zkml" else k
                pts = [(r["macs"], r.get(kk)) for r in rs if r.get(kk)]
                if pts:
                    b = fit_growth(*zip(*pts))
                    ax.plot(*zip(*pts), "o-", label=f"{fam} {tool}" + (f" (∝ MACs^{b:.2f})" if b else ""))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("multiply-accumulates")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def write_report(rows: list[dict], out: Path, command: str) -> Path:
    md = [f"Command: `{command}`", "", markdown_table(rows), ""]
    if any(r["tool"] != "zkml" for r in rows):
        md += ["Ratios EZKL / zkml (above 1: zkml is smaller or faster):", "", ratio_table(rows), ""]
    (out / "bench.md").write_text("\n".join(md))
    chart(rows, out / "bench.png")
    return out / "bench.md"


if __name__ == "__main__":          # a measured step: python -m zkml.bench STEP ARGS_JSON RESULT_PATH
    _child(*sys.argv[1:4])
