"""The library behind the CLI: one function per command, chained through default file
names in the build folder.

    compile(model)           -> build/model.ir.json, main.circom, main.r1cs, main_js/, build.json
    run(build, input)        -> integer + dequantized outputs, compared with onnxruntime
    setup(build)             -> main.zkey, verification_key.json, setup.json
    prove(build, input)      -> witness.wtns, proof.json, public.json (setup first when keys are missing)
    verify(build)            -> snarkjs and the independent Python verifier must both accept
    deploy(build, rpc)       -> Solidity verifier on a chain, verifyProof called on-chain
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import shutil
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import onnx

import zkml_runtime as rt

from . import __version__, groth16, toolchain
from .emit import emit
from .errors import BuildError, InputError, ModelError, ToolError, VerificationError, ZkmlError
from .inputs import load_input, load_samples
from .ir import Graph, verify as ir_verify
from .onnx_import import import_onnx
from .packing import from_public, public_layout, to_public
from .ops.convpool import fuse_conv_maxpool
from .strands import check_mode as check_strands, plans as strand_plans_of
from .visibility import Visibility, public_signals, segments, split_public, weight_tensors, weighted_layers
from .quantize import CalibrationWarning, QuantConfig, calibrate, fallback_samples, quantize, run_float
from .wtns import read_wtns

Log = Callable[[str], None]
_quiet: Log = lambda s: None  # noqa: E731

# files a compile invalidates (keys and proofs of an older circuit)
_STALE = ["main.zkey", "verification_key.json", "setup.json", "witness.wtns", "proof.json",
          "public.json", "prove.json", "deployment.json", "Verifier.sol", "input.json", "commitments.json",
          "slices.json"]   # (a sliced build's manifest: the folder is no longer sliced)


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _read_json(path: Path, what: str) -> dict | list:
    if not path.exists():
        raise BuildError(f"{path} not found ({what})")
    try:
        return json.loads(path.read_text())
    except (ValueError, RecursionError) as e:   # JSONDecodeError, bad UTF-8, >4300-digit ints, "[[[[..."
        raise BuildError(f"{path} is not valid JSON ({type(e).__name__}: {str(e)[:200]})") from None
    except OSError as e:                          # a directory, no permission
        raise BuildError(f"{path} cannot be read ({type(e).__name__}: {str(e)[:200]})") from None


@contextlib.contextmanager
def _onnxruntime_errors(model):
    """onnxruntime refusing or failing to run a model the ONNX checker let through (duplicate node
    names, mixed float/double types, a Reshape that does not fit, ...) is a ModelError."""
    try:
        yield
    except ZkmlError:
        raise
    except Exception as e:
        if not type(e).__module__.startswith("onnxruntime"):
            raise
        first = next((ln for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
        raise ModelError(f"{model}: onnxruntime cannot run the model: {first[:300]}") from None


# --------------------------------------------------------------------------- compile
def compile(model: str | Path, out_dir: str | Path = "build", calibration: str | Path | None = None,
            cfg: QuantConfig | None = None, log: Log = _quiet, pack_outputs: bool = True,
            visibility: Visibility | None = None, optimize: str = "auto", strands: str = "auto",
            fuse_pools: bool = True) -> dict:
    vis = (visibility or Visibility()).check()
    check_strands(strands)
    t0 = time.time()
    cfg = cfg or QuantConfig()
    if cfg.weight_grid == "auto":      # weights as signals: each weight bit is a range-check constraint
        cfg = dataclasses.replace(cfg, weight_grid="aligned" if vis.weights == "constant" else "affine")
    graph, onnx_model, cfg, calib = quantize_model(model, calibration, cfg, log)
    return compile_graph(graph, out_dir, model, onnx_model, cfg, calib, log=log, pack_outputs=pack_outputs,
                         visibility=vis, optimize=optimize, t0=t0, strands=strands, fuse_pools=fuse_pools)


def quantize_model(model: str | Path, calibration: str | Path | None = None, cfg: QuantConfig | None = None,
                   log: Log = _quiet) -> tuple[Graph, onnx.ModelProto, QuantConfig, dict]:
    """Import, calibrate and quantize: (integer IR, the ONNX model, the config used, calibration record)."""
    cfg = cfg or QuantConfig()
    fg, onnx_model = import_onnx(model)
    shape = fg.shapes[fg.inputs[0]]
    log(f"imported {model}: opset {fg.opset}, {len(fg.nodes)} canonical nodes, input {fg.inputs[0]}{shape}")
    if fg.act_grids:
        # A pre-quantized model (QDQ / QLinear*): its own scales and zero points are used. 24-bit
        # requantization multipliers reproduce onnxruntime's float requantization (0 LSB on the
        # LeNet example's test split, against up to 1 LSB at 16 bits).
        if cfg.precision == QuantConfig.precision:
            cfg = dataclasses.replace(cfg, precision=24)
        log(f"pre-quantized model: using its own grids for {len(fg.act_grids)} activations and "
            f"{len(fg.weight_grids)} weight/bias constants (requantization multipliers of {cfg.precision} bits)")
    if calibration:
        samples = load_samples(calibration, shape, "calibration")
        calib = dict(file=str(calibration), samples=int(samples.shape[0]))
    else:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("ignore" if fg.act_grids else "always", CalibrationWarning)
            size = int(np.prod(shape))   # fewer random samples for huge inputs (memory stays ~<= 32 MB)
            samples = fallback_samples(shape, n=min(64, max(2, (1 << 22) // max(size, 1))))
        for w in caught:
            log(f"WARNING: {w.message}")
        calib = dict(file=None, samples=int(samples.shape[0]), fallback="standard normal")
    with _onnxruntime_errors(model):
        ranges = calibrate(fg, onnx_model, samples)
    graph = quantize(fg, ranges, cfg, meta={"calibration": calib})
    cfg = QuantConfig(**graph.meta["quant"])          # as applied (auto settings resolved)
    log(f"quantized: {len(graph.nodes)} integer nodes, activations uint{cfg.act_bits}, "
        f"weights {_weights_grid(graph, cfg)}")
    return graph, onnx_model, cfg, calib


def _weights_grid(graph: Graph, cfg: QuantConfig) -> str:
    per = "channel" if cfg.per_channel else "tensor"
    if cfg.weight_grid == "affine":
        return f"uint{cfg.weight_bits} per {per}"
    wide = max((n.params.w_bits for n in graph.nodes if hasattr(n.params, "w_bits")), default=0)
    return (f"on each output's grid ({cfg.weight_bits}-bit resolution per {per}, up to {wide}-bit integers; "
            "requantization by shifts)" if wide else "none")


def compile_graph(graph: Graph, out_dir: str | Path, model: str | Path, onnx_model: onnx.ModelProto | None,
                  cfg: QuantConfig, calib: dict, log: Log = _quiet, pack_outputs: bool = True,
                  visibility: Visibility | None = None, optimize: str = "auto", t0: float | None = None,
                  strands: str = "auto", fuse_pools: bool = True) -> dict:
    """Write a build folder for an integer IR: emit main.circom, compile it, record build.json.
    (`zkml compile` for a model; zkml.slicing for each segment of a sliced one, onnx_model None.)
    With constant weights and `fuse_pools`, a Conv read only by a MaxPool is pooled before it is
    requantized where that costs fewer constraints (zkml/ops/convpool.py; same integers out)."""
    vis = (visibility or Visibility()).check()
    out = Path(out_dir)
    t0 = time.time() if t0 is None else t0
    out.mkdir(parents=True, exist_ok=True)
    for f in _STALE:
        (out / f).unlink(missing_ok=True)
    level = circom_level(graph, optimize)
    if vis.weights == "constant" and fuse_pools:
        graph = fuse_conv_maxpool(graph, log, level)
    graph.save(out / "model.ir.json")
    if onnx_model is not None:
        onnx.save(onnx_model, out / "model.onnx")
    (out / "main.circom").write_text(emit(graph, pack_outputs, vis, strands))
    strand_plans = [pl.as_dict() for pl in strand_plans_of(graph, weighted_layers(graph, vis), strands)]
    for pl in strand_plans:
        log(f"weights as signals: {pl['op']} '{pl['node']}' {pl['layout']}"
            + (f" ({pl['lanes']} lanes of {pl['lane_bits']} bits)" if pl["layout"] != "plain" else "")
            + f": {pl['products']} signal x signal products (plain: {pl['plain_products']})")
    log(f"compiling the circuit with circom --{level} ...")
    t1 = time.time()
    if (out / "main_js").exists():
        shutil.rmtree(out / "main_js")
    (out / "main.r1cs").unlink(missing_ok=True)
    try:
        toolchain.circom(out / "main.circom", out, flags=["--r1cs", "--wasm", "--sym", f"--{level}"],
                         hint="circom rejected the generated circuit: this is a zkml bug, please report it")
    except ToolError as e:
        if (out / "main.r1cs").exists() and not (out / "main_js" / "main.wasm").exists():
            n = groth16.r1cs_info(out / "main.r1cs")["constraints"]
            raise BuildError(f"circom wrote the R1CS ({n:,} constraints) but failed while building the witness "
                             "generator (main_js/main.wasm). circom2 runs in WebAssembly, with at most 4 GiB of "
                             "memory, and a circuit this size needs more: cut the model into segments with "
                             "`zkml compile --slices N` or `--max-constraints K` (docs/SLICING.md).\n"
                             f"  circom's output: {str(e).splitlines()[-1].strip()[:300]}") from None
        raise
    info = groth16.r1cs_info(out / "main.r1cs")
    meta = dict(
        zkml_version=__version__, source=str(model), source_sha256=_sha256(Path(model)),
        input=asdict(graph.tensors[graph.inputs[0]]),
        outputs=[asdict(graph.tensors[o]) for o in graph.outputs],
        postprocess=graph.meta.get("postprocess"), calibration=calib, quant=asdict(cfg),
        public_layout=public_layout([dict(name=o, bits=graph.tensors[o].bits, size=graph.tensors[o].size)
                                     for o in graph.outputs], pack_outputs) if vis.output == "public" else [],
        visibility=vis.as_dict(), public_segments=segments(graph, vis, pack_outputs),
        strands=dict(mode=strands, layers=strand_plans),
        circuit=dict(info, circom=f"--{level}"), seconds=dict(quantize=round(t1 - t0, 2), circom=round(time.time() - t1, 2)),
        files={f: _sha256(out / f) for f in _BUILD_FILES})
    (out / "build.json").write_text(json.dumps(meta, indent=2))
    if vis.weights == "hashed":       # fixed at compile time: the commitment the model owner publishes
        c = commitments(out)["weights"]
        log(f"weights commitment (Poseidon, publish it): {c}  ({out / 'commitments.json'})")
    n_values = sum(graph.tensors[o].size for o in graph.outputs)
    log(f"circuit: {info['constraints']} constraints, {info['wires']} wires, {info['public_outputs']} public "
        f"signals for {n_values} output values{' (packed)' if pack_outputs else ''}  ({out / 'main.r1cs'})")
    return meta


# circom's --O2 eliminates every linear constraint; --O1 keeps them (~8% more constraints: 3,025
# against 2,796 on the digits MLP, 62,887 against 58,350 on the LeNet example). --O2 used to be
# much slower on big layers (> 8 CPU minutes on LeNet before its Conv -> MaxPool blocks were
# fused), so "auto" took --O1 above 20,000 multiply-accumulates. Since the running maximum and
# RequantClamp take their linear inputs without wiring them into components, --O2 compiles about
# as fast as --O1 on every model measured, in the same memory (2026-12-06, wall time, O1 / O2:
# LeNet 12 / 12.4 s, private-weight LeNet packed 18.4 / 20.7 s, LeNet without pool fusion at O2
# 14.2 s, cnn_c16 43.8 / 45.8 s, the GAN example 214 / 219 s; the slicing benchmark's generator
# 523 s and 3.3 GiB / 506 s and 3.3 GiB, for 805,797 / 754,464 constraints). "auto" takes --O2
# up to O2_MAX_ESTIMATE estimated constraints (zkml.slicing.node_estimates: 557,568 for the GAN
# example, 805,888 for that generator, the largest circuit measured at --O2) and --O1 above, an
# unmeasured range where circom2's 4 GiB WebAssembly memory is the limit at either level.
O2_MAX_ESTIMATE = 1_000_000


def circom_level(graph: Graph, optimize: str = "auto") -> str:
    """circom's simplification flag for `--optimize` (see O2_MAX_ESTIMATE for "auto")."""
    if optimize in ("O1", "O2"):
        return optimize
    if optimize != "auto":
        raise ZkmlError(f"unknown circom optimization '{optimize}' (auto, O1 or O2)")
    from .slicing import node_estimates     # noqa: PLC0415 (slicing builds on this module)
    return "O2" if sum(node_estimates(graph)) <= O2_MAX_ESTIMATE else "O1"


# build files whose sha256 build.json records: a file changed or copied from another build is
# refused by name (instead of surfacing later as a witness/runtime mismatch or a prover crash)
_BUILD_FILES = ("model.ir.json", "main.r1cs", "main_js/main.wasm")


def check_build_files(build: str | Path, names=_BUILD_FILES) -> None:
    """BuildError unless each named file has the hash build.json recorded at compile time."""
    build = Path(build)
    try:
        recorded = json.loads((build / "build.json").read_text()).get("files") or {}
    except (OSError, ValueError, AttributeError):
        return          # no (readable) build.json: the commands that need it say so themselves
    for name in names:
        f = build / name
        if name in recorded and f.is_file() and _sha256(f) != recorded[name]:
            raise BuildError(f"{f} does not belong to this build: its sha256 differs from the one build.json "
                             "recorded at compile time (changed, or copied from another build); recompile "
                             "with `zkml compile`")


def _check_zkey(build: Path) -> None:
    """The proving key must be one of main.r1cs: same number of wires and public signals."""
    import struct
    zkey, r1cs = build / "main.zkey", build / "main.r1cs"
    if not r1cs.is_file():
        raise BuildError(f"{r1cs} not found: run `zkml compile` first")
    try:  # iden3 container; section 2 (Groth16 header): n8q, q, n8r, r, nVars u32, nPublic u32, ...
        with open(zkey, "rb") as f:
            magic, _version, nsec = struct.unpack("<4sII", f.read(12))
            for _ in range(nsec if magic == b"zkey" else 0):
                sid, size = struct.unpack("<IQ", f.read(12))
                if sid == 2:
                    n8q = struct.unpack("<I", f.read(4))[0]
                    f.seek(n8q, 1)
                    n8r = struct.unpack("<I", f.read(4))[0]
                    f.seek(n8r, 1)
                    n_vars, n_public = struct.unpack("<II", f.read(8))
                    break
                f.seek(size, 1)
            else:
                raise ValueError("no Groth16 header section")
    except (OSError, ValueError, struct.error):
        raise BuildError(f"{zkey} is not a Groth16 proving key (unreadable header); run `zkml setup`") from None
    info = groth16.r1cs_info(r1cs)
    if (n_vars, n_public) != (info["wires"], info["public_outputs"] + info["public_inputs"]):
        raise BuildError(f"{zkey} does not belong to {r1cs}: it is for {n_vars} wires and {n_public} public "
                         f"signals, the circuit has {info['wires']} and "
                         f"{info['public_outputs'] + info['public_inputs']}; run `zkml setup` again")


def load_graph(build: str | Path) -> Graph:
    check_build_files(build, ("model.ir.json",))
    g = Graph.load(Path(build) / "model.ir.json")
    ir_verify(g)
    return g


# --------------------------------------------------------------------------- run
def _integer_input(build: Path, input: str | Path, log: Log):
    """(graph, float input, quantized input) for a user's input file."""
    g = load_graph(build)
    x = load_input(input, g.tensors[g.inputs[0]].shape)
    q, clipped = rt.quantize_input(g, x)
    if clipped:
        log(f"WARNING: {clipped} input values lay outside the calibrated range and were clipped")
    return g, x, q


@dataclass
class RunResult:
    q_input: list
    clipped: int
    q_outputs: list
    outputs: list                 # dequantized (and post-processed) floats
    reference: list | None        # onnxruntime floats
    max_abs_diff: float | None
    max_diff_lsb: float | None    # in units of the output's quantization step
    extra: dict = field(default_factory=dict)


def run(build: str | Path, input: str | Path, log: Log = _quiet, reference: bool = True) -> RunResult:
    build = Path(build)
    g, x, q = _integer_input(build, input, log)
    clipped = rt.quantize_input(g, x)[1]   # reported by _integer_input's warning too
    qo = rt.run_outputs(g, q)[0]
    deq = rt.dequantize(g, g.outputs[0], qo)
    y = rt.postprocess(g, deq)
    ref = diff = lsb = None
    if reference:
        try:
            model = onnx.load(str(build / "model.onnx"))
        except Exception as e:  # missing or garbled: protobuf / OSError
            raise BuildError(f"{build / 'model.onnx'} cannot be read ({type(e).__name__}); recompile the model, "
                             "or skip the onnxruntime comparison") from None
        name = (g.meta.get("postprocess") or {}).get("onnx_output") or g.outputs[0]
        with _onnxruntime_errors(build / "model.onnx"):
            logits = run_float(model, x[None], [g.outputs[0]])[g.outputs[0]][0]
            ref = run_float(model, x[None], [name])[name][0]
        diff = float(np.abs(y - ref).max())
        lsb = float(np.abs(deq - logits).max() / g.tensors[g.outputs[0]].scale)
    return RunResult(q.reshape(-1).tolist(), clipped, qo.reshape(-1).tolist(), y.reshape(-1).tolist(),
                     None if ref is None else ref.reshape(-1).tolist(), diff, lsb)


# --------------------------------------------------------------------------- witness
def witness(build: str | Path, input: str | Path, log: Log = _quiet) -> tuple[Path, list[int]]:
    """Compute the circuit witness for a float input; its outputs must equal the runtime's."""
    build = Path(build)
    g, _, q = _integer_input(build, input, log)
    outputs = [[int(v) for v in o.reshape(-1)] for o in rt.run_outputs(g, q)]
    segs, wts = public_segments_of(build), weight_tensors(g, visibility_of(build))
    expected = public_signals(segs, outputs, [int(v) for v in np.asarray(q).reshape(-1)], [t["values"] for t in wts])
    wtns, _ = witness_from_integers(build, q, expected, {t["signal"]: t["values"] for t in wts})
    return wtns, [v for o in outputs for v in o]


def visibility_of(build: Path) -> Visibility:
    meta = _read_json(Path(build) / "build.json", "run `zkml compile`")
    return Visibility.from_meta(meta if isinstance(meta, dict) else {})


def public_segments_of(build: Path) -> list[dict]:
    """The public signals' layout (output, input, weights segments), from build.json."""
    meta = _read_json(Path(build) / "build.json", "run `zkml compile`")
    if isinstance(meta, dict) and "public_segments" in meta:
        return meta["public_segments"]
    layout = public_layout_of(build)           # a build from before visibility modes: outputs only
    return [dict(kind="output", mode="public", tensors=layout, words=sum(t["words"] for t in layout)),
            dict(kind="input", mode="private", tensors=[], words=0),
            dict(kind="weights", mode="constant", tensors=[], words=0)]


def commitments(build: str | Path, input: str | Path | None = None, log: Log = _quiet) -> dict:
    """Poseidon commitments (decimal strings) of the weights (when --weights hashed) and, given an
    input file, of the quantized input (when --input hashed), as the circuit computes them.
    The weights' commitment is also written to BUILD/commitments.json."""
    from .visibility import commitment
    build = Path(build)
    g = load_graph(build)
    segs = {s["kind"]: s for s in public_segments_of(build)}
    res = {}
    if segs["weights"]["mode"] == "hashed":
        res["weights"] = str(commitment(segs["weights"]["tensors"],
                                        [t["values"] for t in weight_tensors(g, visibility_of(build))]))
        (build / "commitments.json").write_text(json.dumps({"weights": res["weights"]}, indent=2))
    if input is not None:
        if segs["input"]["mode"] != "hashed":
            raise InputError(f"{build} was compiled with --input {segs['input']['mode']}: there is no input "
                             "commitment (compile with --input hashed)")
        _, _, q = _integer_input(build, input, log)
        res["input"] = str(commitment(segs["input"]["tensors"], [[int(v) for v in q.reshape(-1)]]))
    return res


def public_layout_of(build: Path) -> list[dict]:
    """How the public signals encode the outputs (packed or not), from build.json."""
    meta = _read_json(Path(build) / "build.json", "run `zkml compile`")
    if not isinstance(meta, dict) or "public_layout" not in meta:
        raise BuildError(f"{build}/build.json predates output packing; recompile the model")
    return meta["public_layout"]


def decode_public(build: Path, public: list) -> list[int]:
    """The integer outputs a public.json claims (unpacked, all outputs concatenated).

    The decoding must be exact (as many public signals as the layout has words, every value
    within its lanes' bits): a build.json from another build would otherwise print wrong outputs
    next to a valid proof."""
    segs = public_segments_of(build)
    try:
        ints = [int(x) for x in public]
        parts = split_public(segs, ints)
    except (TypeError, ValueError):
        raise BuildError(f"the public signals do not match the layout of {Path(build) / 'build.json'} "
                         "(the verification key or proof is of another build?)") from None
    out_seg = next(s for s in segs if s["kind"] == "output")
    if out_seg["mode"] != "public":
        return None                  # private or hashed outputs: nothing to decode (see verify)
    layout, ints = out_seg["tensors"], parts["output"]
    try:
        outs = from_public(layout, ints)
        exact = (sum(lay["words"] for lay in layout) == len(ints) and to_public(layout, outs) == ints
                 and all(0 <= v < (1 << lay["bits"]) for lay, o in zip(layout, outs) for v in o))
    except (KeyError, TypeError, ValueError):
        exact = False
    if not exact:
        raise BuildError(f"the public signals do not decode under the output layout of {Path(build) / 'build.json'} "
                         "(the verification key or proof is of another build?)")
    return [v for o in outs for v in o]


def witness_from_integers(build: Path, q: np.ndarray, expected: list[int],
                          extra: dict | None = None) -> tuple[Path, list[int]]:
    """Run circom's witness generator on integer input q; its public signals must equal `expected`."""
    js = build / "main_js"
    if not (js / "main.wasm").exists():
        raise BuildError(f"{js / 'main.wasm'} not found: run `zkml compile` first")
    check_build_files(build, ("main_js/main.wasm",))
    (build / "input.json").write_text(json.dumps({"in": [int(v) for v in np.asarray(q).reshape(-1)],
                                                  **(extra or {})}))   # extra: weights as signals
    wtns = build / "witness.wtns"
    toolchain.run([toolchain.node(), js / "generate_witness.js", js / "main.wasm", build / "input.json", wtns],
                  hint="the witness generator rejected the input")
    values, _ = read_wtns(wtns)
    got = values[1:1 + len(expected)]
    if got != expected:
        bad = next(i for i, (a, b) in enumerate(zip(got, expected)) if a != b)
        raise ZkmlError(f"the circuit's witness differs from the reference runtime at public signal {bad} "
                        f"(circuit {got[bad]}, runtime {expected[bad]}): this is a zkml bug, please report it")
    return wtns, got


# --------------------------------------------------------------------------- setup / prove
def setup(build: str | Path, ptau: str | Path | None = None, log: Log = _quiet, **kw) -> dict:
    """Development keys by default; a production ceremony from a public `ptau` (see zkml.groth16)."""
    build = Path(build)
    if not (build / "main.r1cs").exists():
        raise BuildError(f"{build / 'main.r1cs'} not found: run `zkml compile` first")
    check_build_files(build, ("main.r1cs",))
    for f in ("proof.json", "public.json", "prove.json", "deployment.json", "Verifier.sol"):
        (build / f).unlink(missing_ok=True)   # proofs and contracts of the old keys
    return groth16.setup(build, ptau, log, **kw)


def prove(build: str | Path, input: str | Path, ptau: str | Path | None = None, prover: str = "auto",
          log: Log = _quiet) -> dict:
    """Prove one input: build/proof.json, build/public.json, build/prove.json."""
    return prove_many(build, [input], ptau, prover, log)[0]


def prove_many(build: str | Path, inputs: list, ptau: str | Path | None = None, prover: str = "auto",
               log: Log = _quiet) -> list[dict]:
    """Prove several inputs with the proving key loaded once.

    One input writes proof.json/public.json in the build folder; several write
    proofs/NNN/{proof,public,prove}.json, NNN counting from 000 in the order given.
    """
    from .provers import get_prover
    build = Path(build)
    if not inputs:
        raise InputError("give at least one --input")
    setup_s = None
    if not (build / "main.zkey").exists():
        t = time.time()
        log("no keys yet: running setup")
        setup(build, ptau, log)
        setup_s = round(time.time() - t, 2)
    g = load_graph(build)
    check_build_files(build)
    _check_zkey(build)
    for inp in inputs:  # refuse a bad input before any work
        _integer_input(build, inp, _quiet)
    t = time.time()
    backend = get_prover(prover, build / "main.zkey")
    load_s = round(time.time() - t, 2)
    results = []
    for k, inp in enumerate(inputs):
        out = build if len(inputs) == 1 else build / "proofs" / f"{k:03d}"
        out.mkdir(parents=True, exist_ok=True)
        times = {"setup": setup_s} if setup_s is not None and k == 0 else {}
        t = time.time()
        wtns, outs = witness(build, inp, log)
        times["witness"] = round(time.time() - t, 2)
        t = time.time()
        backend.prove(wtns, out)
        times["prove"] = round(time.time() - t, 2)
        res = dict(input=str(inp), prover=backend.name, outputs=outs, seconds=times, key_load_seconds=load_s,
                   dequantized=rt.dequantize(g, g.outputs[0], np.array(outs)).tolist(), dir=str(out))
        (out / "prove.json").write_text(json.dumps(res, indent=2))
        results.append(res)
    return results


# --------------------------------------------------------------------------- verify
@dataclass
class VerifyResult:
    valid: bool
    snarkjs: bool | None
    python: bool | None
    reason: str = ""
    outputs: list | None = None
    commitments: dict | None = None       # hashed segments: {kind: decimal commitment}


def verify(build: str | Path, proof: str | Path | None = None, public: str | Path | None = None,
           vk: str | Path | None = None, log: Log = _quiet, claimed_outputs: list | None = None,
           input_commitment: str | int | None = None) -> VerifyResult:
    """Check the proof (Python verifier, then snarkjs). Hashed segments are checked too: the
    output commitment against `claimed_outputs` (default: the `outputs` of prove.json beside the
    proof), the weights commitment against BUILD/commitments.json, the input commitment against
    `input_commitment` when given."""
    from . import pyverify
    build = Path(build)
    vk_p = Path(vk) if vk else build / "verification_key.json"
    proof_p = Path(proof) if proof else build / "proof.json"
    public_p = Path(public) if public else build / "public.json"
    vk_d = _read_json(vk_p, "run `zkml setup`")
    proof_d = _read_json(proof_p, "run `zkml prove`")
    pub = _read_json(public_p, "run `zkml prove`")
    # the independent verifier first: it also rejects encodings snarkjs tolerates
    # (public inputs >= r, coordinates >= q, G2 points outside the subgroup), as the EVM does
    try:
        pyverify.check(vk_d, proof_d, pub)
        p, reason = True, ""
    except VerificationError as e:
        p, reason = False, str(e).removeprefix("invalid proof: ")
    structural = not p and "pairing" not in reason
    if structural:  # malformed: snarkjs may reduce such values silently; do not ask it
        return VerifyResult(False, None, False, reason)
    s = groth16.snarkjs_verify(vk_p, public_p, proof_p)
    if s != p:
        raise ZkmlError(f"verifiers disagree: snarkjs says {s}, the Python verifier says {p}; please report this")
    outputs = decode_public(build, pub) if p else None
    if not p:
        return VerifyResult(p, s, p, reason, outputs)
    return _check_commitments(build, proof_p, [int(x) for x in pub], claimed_outputs, input_commitment,
                              VerifyResult(p, s, p, reason, outputs))


def _check_commitments(build: Path, proof_p: Path, pub: list[int], claimed: list | None, input_c,
                       res: VerifyResult) -> VerifyResult:
    from .visibility import commitment
    segs = public_segments_of(build)
    parts = split_public(segs, pub)
    hashed = {s["kind"]: s for s in segs if s["mode"] == "hashed"}
    res.commitments = {k: str(parts[k][0]) for k in hashed}
    if "output" in hashed:
        seg = hashed["output"]
        if claimed is None:
            rec = proof_p.parent / "prove.json"
            data = _read_json(rec, "give the claimed outputs (--outputs FILE)") if rec.exists() else None
            if not isinstance(data, dict) or not isinstance(data.get("outputs"), list):
                raise InputError("the outputs are committed by hash: give the claimed integer output values "
                                 "(--outputs FILE, a JSON list)")
            claimed = data["outputs"]
        sizes = [t["size"] for t in seg["tensors"]]
        ints = isinstance(claimed, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in claimed)
        vals = [int(v) for v in claimed] if ints else []
        split, pos = [], 0
        for n in sizes:
            split.append(vals[pos:pos + n])
            pos += n
        if len(vals) != sum(sizes) or any(not 0 <= v < (1 << t["bits"]) for t, part in zip(seg["tensors"], split)
                                          for v in part):
            raise InputError(f"the claimed outputs must be {sum(sizes)} integers within the outputs' bits")
        if commitment(seg["tensors"], split) != parts["output"][0]:
            return dataclasses.replace(res, valid=False, outputs=None,
                                       reason="the claimed outputs do not match the proven output commitment")
        res.outputs = vals
    if "weights" in hashed and (build / "commitments.json").exists():
        rec = _read_json(build / "commitments.json", "run `zkml commit`")
        want = rec.get("weights") if isinstance(rec, dict) else None
        if want is not None and str(want) != str(parts["weights"][0]):
            return dataclasses.replace(res, valid=False, reason="the proof was made with weights other than the "
                                       f"committed ones (commitment {parts['weights'][0]}, published {want})")
    if input_c is not None and "input" in hashed and str(int(input_c)) != str(parts["input"][0]):
        return dataclasses.replace(res, valid=False, reason="the proof is about another input than the committed one")
    return res


# --------------------------------------------------------------------------- deploy
def deploy(build: str | Path, rpc: str | None = None, log: Log = _quiet, **kw):
    from . import evm
    return evm.deploy_build(Path(build), rpc=rpc, log=log, **kw)
