"""Generate an image with the integer-only GAN, prove it, mint it on-chain and read it back.

    python examples/gan/mint_image.py [--out build/gan] [--rpc URL] [--private-key HEX] [--reuse]

Steps (each printed with its time and peak memory):
  1. zkml compile  model.onnx, calibrated on calibration.npy (circom --O2, the default)
  2. zkml setup    development Groth16 keys (INSECURE: no ceremony; see docs/SETUP.md)
  3. zkml prove    the chosen latent vector latent.json (the witness is checked against the
                   reference runtime by zkml itself)
  4. zkml verify   snarkjs + the independent Python verifier
  5. on the embedded py-evm chain (or --rpc URL, e.g. anvil): plan, deploy the verifier (split
     across contracts/transactions if the plan needs it), verify, deploy the ERC-721 consumer,
     mint, then read the token's packed output words back with `outputWords(tokenId)`, unpack them
  6. write OUT/onchain.png (the image read back from the chain), OUT/float.png (the float model on
     the same latent vector, onnxruntime) and OUT/comparison.png (both side by side, x8), and
     OUT/figures.json

It fails (exit 1) unless the codes read back from the chain equal the reference runtime's output
bit for bit and the PNG written from them decodes to exactly the runtime's pixels.

Pixels: the circuit's public output is the Sigmoid's uint8 code q on its calibrated grid
(real = scale * (q - zero_point)); a pixel is clip(round(255 * real), 0, 255), one fixed 256-entry
table applied to the runtime's codes and to the chain's alike.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from png import read_png, write_png  # noqa: E402


class Failed(Exception):
    """The image read back from the chain is not the runtime's, or the proof was rejected (exit 1)."""


class StepFailed(Failed):
    """A zkml command failed (bad input, tool failure); its last line is the reason (exit 2)."""


def _zkml() -> list[str]:
    exe = Path(sys.executable).with_name("zkml")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "zkml.cli"]


# A small launcher between this process and the zkml command: a forked child inherits its
# parent's resident set in its peak-RSS figure (Linux records the pre-exec image's high-water mark),
# so the command is forked from this tiny interpreter, which reports wait4's rusage of its child:
# the peak RSS of the largest process of the command's tree (zkml, circom, node, snarkjs).
_LAUNCH = ("import json, os, subprocess, sys\n"
           "p = subprocess.Popen(sys.argv[2:])\n"
           "_, status, ru = os.wait4(p.pid, 0)\n"
           "open(sys.argv[1], 'w').write(json.dumps(ru.ru_maxrss))\n"
           "sys.exit(os.waitstatus_to_exitcode(status))\n")


def run_step(name: str, args: list[str], log) -> dict:
    """Run a zkml CLI command as a child process: its wall time and peak RSS."""
    import tempfile
    log(f"$ zkml {' '.join(args)}")
    with tempfile.TemporaryDirectory() as tmp:
        rss_file = Path(tmp) / "maxrss"
        t = time.perf_counter()
        out = []
        with subprocess.Popen([sys.executable, "-c", _LAUNCH, str(rss_file), *_zkml(), *args],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1) as p:
            for line in p.stdout:
                line = line.rstrip("\n")
                out.append(line)
                log("    " + (line if len(line) <= 160 else line[:157] + "..."))   # the proven outputs are long
        seconds = time.perf_counter() - t
        maxrss_kb = int(rss_file.read_text()) if rss_file.exists() else 0
    if p.returncode != 0:
        tail = next((ln for ln in reversed(out) if ln.strip()), "")
        raise StepFailed(f"zkml {name} failed (exit {p.returncode}): {tail}")
    return dict(seconds=round(seconds, 2), peak_rss_mb=round(maxrss_kb / 1024, 1))


def pixel_table(scale: float, zero_point: int, bits: int) -> np.ndarray:
    """code -> 8-bit pixel for every code of the output grid."""
    codes = np.arange(1 << bits)
    return np.clip(np.rint(255.0 * scale * (codes - zero_point)), 0, 255).astype(np.uint8)


def to_image(values: np.ndarray, shape: list[int]) -> np.ndarray:
    """[1, C, H, W] values -> [H, W, C] (C = 3) or [H, W] (C = 1)."""
    a = np.asarray(values).reshape(shape)[0].transpose(1, 2, 0)
    return a[:, :, 0] if a.shape[2] == 1 else a


def upscale(img: np.ndarray, k: int) -> np.ndarray:
    return np.repeat(np.repeat(img, k, axis=0), k, axis=1)


def side_by_side(images: list[np.ndarray], k: int = 8, gap: int = 8) -> np.ndarray:
    big = [upscale(i if i.ndim == 3 else np.stack([i] * 3, -1), k) for i in images]
    h = big[0].shape[0]
    sep = np.full((h, gap, 3), 255, np.uint8)
    row = [big[0]]
    for b in big[1:]:
        row += [sep, b]
    return np.concatenate(row, axis=1)


def build_is_current(build: Path, model: Path) -> bool:
    import hashlib
    try:
        meta = json.loads((build / "build.json").read_text())
    except (OSError, ValueError):
        return False
    return (meta.get("source_sha256") == hashlib.sha256(model.read_bytes()).hexdigest()
            and (build / "main.zkey").exists() and (build / "verification_key.json").exists())


def generate_and_mint(model: Path, calibration: Path, latent: Path, out: Path, *, rpc: str | None = None,
                      private_key: str | None = None, gas_budget: int | None = None, reuse: bool = False,
                      log=print) -> dict:
    """The whole example; returns the figures and the images (see the module docstring)."""
    import onnxruntime as ort

    import zkml_runtime as rt
    from zkml import api, evm, evm_split, packing
    from zkml.inputs import load_input

    out.mkdir(parents=True, exist_ok=True)
    build = out / "build"
    fig: dict = dict(model=str(model), latent=str(latent), steps={})
    if reuse and build_is_current(build, model):
        log(f"reusing {build} (compiled from the same model, keys present)")
    else:
        fig["steps"]["compile"] = run_step("compile", ["compile", str(model), "--calibration", str(calibration),
                                                       "-o", str(build)], log)
        fig["steps"]["setup"] = run_step("setup", ["setup", str(build)], log)
    fig["steps"]["prove"] = run_step("prove", ["prove", str(build), "--input", str(latent)], log)
    fig["steps"]["verify"] = run_step("verify", ["verify", str(build)], log)

    meta = json.loads((build / "build.json").read_text())
    setup = json.loads((build / "setup.json").read_text())
    proved = json.loads((build / "prove.json").read_text())
    fig["circuit"] = dict(constraints=meta["circuit"]["constraints"], wires=meta["circuit"]["wires"],
                          public_signals=meta["circuit"]["public_outputs"], circom=meta["circuit"].get("circom"),
                          setup=setup.get("method"), insecure=setup.get("insecure", True))
    fig["prove"] = dict(prover=proved["prover"], **proved["seconds"])

    # the reference runtime (the spec) and the float model on the same latent vector
    g = api.load_graph(build)
    t_out = g.tensors[g.outputs[0]]
    x = load_input(latent, g.tensors[g.inputs[0]].shape)     # as zkml prove reads it
    q_in, clipped = rt.quantize_input(g, x)
    if clipped:
        log(f"WARNING: {clipped} latent values lie outside the calibrated range and were clipped")
    codes = rt.run_outputs(g, q_in)[0].reshape(-1).astype(np.int64)
    if [int(v) for v in codes] != proved["outputs"]:
        raise Failed("the proven outputs differ from the reference runtime's")
    table = pixel_table(t_out.scale, t_out.zero_point, t_out.bits)
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    fimg = sess.run(None, {sess.get_inputs()[0].name: x.astype(np.float32)})[0]
    float_px = to_image(np.clip(np.rint(fimg * 255), 0, 255).astype(np.uint8), t_out.shape)
    runtime_px = to_image(table[codes], t_out.shape)

    # on-chain: verifier (split if needed), consumer, mint
    vk, proof, public = (json.loads((build / f).read_text())
                         for f in ("verification_key.json", "proof.json", "public.json"))
    layout = meta["public_layout"]
    w3 = evm.connect(rpc, private_key=private_key)
    chain = evm.chain_description(w3)
    log(f"on-chain ({chain}):")
    kw = {} if gas_budget is None else dict(gas_budget=gas_budget)
    t = time.perf_counter()
    res = evm_split.deploy_and_verify(vk, proof, public, name="gan", setup_note=evm.DEV_SETUP_NOTE, w3=w3,
                                      log=lambda s: log("    " + s), outputs=layout, consumer=True, **kw)
    onchain_s = time.perf_counter() - t
    if not res.valid or not res.consumer:
        raise Failed(f"the proof did not verify on-chain: {res.reason}")
    nft = res.consumer
    # read the image back ourselves: the token's packed words, unpacked lane by lane
    words = [int(w) for w in w3.eth.contract(address=nft["address"], abi=nft["abi"])
             .functions.outputWords(nft["token_id"]).call()]
    back = np.array(packing.unpack(words, t_out.bits, t_out.size), dtype=np.int64)
    log(f"    read back token {nft['token_id']}: {len(words)} packed words -> {len(back)} uint{t_out.bits} values")
    fig["onchain"] = dict(
        chain=chain, mode=res.mode, contracts=len(res.contracts),
        contract_sizes=[c["code_size"] for c in res.contracts], deploy_gas=res.deploy_gas,
        verify_gas=res.verify_gas, verify_transactions=len(res.plan["transactions"]) if res.plan else 1,
        nft_deploy_gas=nft["deploy_gas"], mint_gas=nft["mint_gas"], packed_words=len(words),
        seconds=round(onchain_s, 2))

    # the checks: chain == runtime, bit for bit; PNG == runtime pixels
    if not np.array_equal(back, codes):
        bad = int(np.flatnonzero(back != codes)[0])
        raise Failed(f"the image read back from the chain differs from the reference runtime at value {bad} "
                     f"(chain {back[bad]}, runtime {codes[bad]})")
    chain_px = to_image(table[back], t_out.shape)
    onchain_png = write_png(out / "onchain.png", chain_px)
    write_png(out / "float.png", float_px)
    write_png(out / "comparison.png", side_by_side([float_px, chain_px]))
    if not np.array_equal(read_png(onchain_png), runtime_px):
        raise Failed(f"{onchain_png} does not decode to the reference runtime's pixels")
    diff = np.abs(float_px.astype(int) - runtime_px.astype(int))
    fig["image"] = dict(shape=t_out.shape, chain_equals_runtime=True, png_equals_runtime=True,
                        float_vs_chain_max_levels=int(diff.max()), float_vs_chain_mean_levels=round(float(diff.mean()), 2),
                        output_scale=t_out.scale, output_zero_point=t_out.zero_point)
    # this script's own peak: the runtime, onnxruntime and the on-chain phase (py-evm in-process)
    fig["peak_rss_mb"] = dict(this_process=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))
    (out / "figures.json").write_text(json.dumps(fig, indent=2))
    fig["arrays"] = dict(codes=codes, chain=back, runtime_px=runtime_px, chain_px=chain_px, float_px=float_px)
    return fig


def report(fig: dict, out: Path) -> list[str]:
    c, o, s, im = fig["circuit"], fig["onchain"], fig["steps"], fig["image"]
    lines = [f"circuit: {c['constraints']:,} constraints, {c['wires']:,} wires, {c['public_signals']} public signals "
             f"(circom {c['circom']})"]
    for k, v in s.items():
        lines.append(f"{k:8s} {v['seconds']:8.1f} s   peak RSS {v['peak_rss_mb']:8.1f} MB")
    lines.append(f"prove ({fig['prove']['prover']}): witness {fig['prove'].get('witness')} s, "
                 f"proof {fig['prove'].get('prove')} s")
    lines.append(f"on-chain ({o['chain']}): {o['mode']} verifier, {o['contracts']} contracts "
                 f"(code sizes {o['contract_sizes']}), deploy gas {o['deploy_gas']:,}, verify gas {o['verify_gas']:,} "
                 f"in {o['verify_transactions']} transaction(s); ERC-721 deploy gas {o['nft_deploy_gas']:,}, "
                 f"mint gas {o['mint_gas']:,} ({o['packed_words']} packed words stored)")
    lines.append(f"this process (runtime, onnxruntime, on-chain phase): peak RSS {fig['peak_rss_mb']['this_process']} MB")
    lines.append(f"image {im['shape']}: read back from the chain == reference runtime, bit for bit; "
                 f"float vs chain: max {im['float_vs_chain_max_levels']}, mean {im['float_vs_chain_mean_levels']} "
                 "levels of 255")
    lines.append(f"wrote {out / 'onchain.png'}, {out / 'float.png'}, {out / 'comparison.png'}, {out / 'figures.json'}")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("build/gan"), help="output folder (build in OUT/build)")
    ap.add_argument("--model", type=Path, default=HERE / "model.onnx")
    ap.add_argument("--calibration", type=Path, default=HERE / "calibration.npy")
    ap.add_argument("--latent", type=Path, default=HERE / "latent.json", help='{"input_data": [[16 floats]]}')
    ap.add_argument("--rpc", help="JSON-RPC URL of a node, e.g. anvil (default: embedded py-evm chain)")
    ap.add_argument("--private-key", default=os.environ.get("ZKML_PRIVATE_KEY"),
                    help="sign transactions with this key (default: the node's first unlocked account)")
    ap.add_argument("--gas-budget", type=int, help="most gas per transaction (default zkml's 16,000,000)")
    ap.add_argument("--reuse", action="store_true", help="skip compile and setup when OUT/build is of this model")
    a = ap.parse_args(argv)
    from zkml.errors import ZkmlError
    for f in (a.model, a.calibration, a.latent):
        if not f.is_file():
            print(f"error: {f} not found", file=sys.stderr)
            return 2
    try:
        fig = generate_and_mint(a.model, a.calibration, a.latent, a.out, rpc=a.rpc, private_key=a.private_key,
                                gas_budget=a.gas_budget, reuse=a.reuse, log=lambda s: print(s, flush=True))
    except Failed as e:
        print(f"error: {e}", file=sys.stderr)
        return 2 if isinstance(e, StepFailed) else 1
    except ZkmlError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print()
    print("\n".join(report(fig, a.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
