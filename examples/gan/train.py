"""Train the DCGAN-style generator of examples/gan on coloured digits and export it to ONNX.

Run from anywhere:  python examples/gan/train.py [--steps N]

Data (nothing downloaded): scikit-learn's bundled 8x8 digits, upscaled to 32x32 (bilinear) and
painted: the strokes in a colour whose hue encodes the digit (0 red ... 9 magenta, +-0.02 jitter),
on a dark blue background. Standard DCGAN training (BCE loss, Adam 2e-4 / betas (0.5, 0.999)),
single-threaded and seeded, so a rerun writes the same files.

Writes next to this file:
  model.onnx        generator, input `z` float32 [1, 16] -> output `image` float32 [1, 3, 32, 32] in [0, 1]
  calibration.npy   float32 [256, 16] latent vectors (standard normal, seeded) for zkml's calibration
  latent.json       the chosen latent vector {"input_data": [[16 floats]], "index": k}
  samples.png       8x8 grid of generated samples (float model, onnxruntime), the first 64 calibration latents
  data.png          8x8 grid of training images, for comparison
"""
from __future__ import annotations

import argparse
import colorsys
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from model import LATENT, Discriminator, Generator, export_onnx  # noqa: E402
from png import write_png  # noqa: E402

SEED = 0
STEPS = 2000
BATCH = 64
N_CALIB = 256
CHOSEN = 5          # index of the chosen latent vector among the calibration latents
ALLOWED_OPS = {"Gemm", "BatchNormalization", "Relu", "Reshape", "ConvTranspose", "Resize", "Conv", "Sigmoid",
               "Constant", "Identity"}
BACKGROUND = (0.04, 0.05, 0.16)


def set_determinism(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)  # single-threaded CPU reductions -> bit-stable runs


def coloured_digits(seed: int = SEED) -> torch.Tensor:
    """[1797, 3, 32, 32] float32 in [0, 1]: each digit painted in its class's hue."""
    d = load_digits()
    x = torch.from_numpy((d.data / 16.0).astype(np.float32)).reshape(-1, 1, 8, 8)
    alpha = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False).clamp(0, 1)
    rng = np.random.RandomState(seed)
    hues = (d.target / 10.0 + rng.uniform(-0.02, 0.02, len(d.target))) % 1.0
    fg = torch.tensor([colorsys.hsv_to_rgb(h, 0.85, 1.0) for h in hues], dtype=torch.float32)[:, :, None, None]
    bg = torch.tensor(BACKGROUND, dtype=torch.float32)[None, :, None, None]
    return bg * (1 - alpha) + fg * alpha


def grid(images: np.ndarray, cols: int = 8, pad: int = 2) -> np.ndarray:
    """[N, 3, H, W] floats in [0, 1] -> one uint8 [rows*(H+pad), cols*(W+pad), 3] image."""
    n, c, h, w = images.shape
    rows = (n + cols - 1) // cols
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), 255, dtype=np.uint8)
    px = np.clip(np.rint(images * 255), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
    for i in range(n):
        r, k = divmod(i, cols)
        out[pad + r * (h + pad):pad + r * (h + pad) + h, pad + k * (w + pad):pad + k * (w + pad) + w] = px[i]
    return out


def train(steps: int, log=print) -> Generator:
    set_determinism(SEED)
    data = coloured_digits()
    G, D = Generator(), Discriminator(width=16)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    gen = torch.Generator().manual_seed(SEED)
    ones, zeros = torch.ones(BATCH), torch.zeros(BATCH)
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        real = data[torch.randint(len(data), (BATCH,), generator=gen)]
        z = torch.randn(BATCH, LATENT, generator=gen)
        fake = G(z)
        opt_d.zero_grad()
        loss_d = bce(D(real), ones * 0.9) + bce(D(fake.detach()), zeros)   # one-sided label smoothing
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad()
        loss_g = bce(D(fake), ones)
        loss_g.backward()
        opt_g.step()
        if step % 250 == 0 or step == steps:
            log(f"step {step}/{steps}: loss D {loss_d.item():.3f}, loss G {loss_g.item():.3f} "
                f"({time.perf_counter() - t0:.0f} s)")
    return G.eval()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=STEPS, help="generator/discriminator update pairs")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    G = train(a.steps)
    print(f"train time: {time.perf_counter() - t0:.1f} s ({a.steps} steps of batch {BATCH})")

    onnx_path = export_onnx(G, HERE / "model.onnx")
    m = onnx.load(str(onnx_path))
    onnx.checker.check_model(m, full_check=True)
    ops = [n.op_type for n in m.graph.node]
    print(f"opset {next(o.version for o in m.opset_import if o.domain in ('', 'ai.onnx'))}, ops: {ops}")
    assert not set(ops) - ALLOWED_OPS, f"unexpected ops: {set(ops) - ALLOWED_OPS}"
    print(f"parameters: {sum(p.numel() for p in G.parameters()):,}")

    calib = np.random.RandomState(SEED).randn(N_CALIB, LATENT).astype(np.float32)
    np.save(HERE / "calibration.npy", calib)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    imgs = np.concatenate([sess.run(None, {"z": calib[i:i + 1]})[0] for i in range(64)])
    with torch.no_grad():
        ref = G(torch.from_numpy(calib[:64])).numpy()
    diff = float(np.abs(imgs - ref).max())
    print(f"max |onnxruntime - torch| over 64 samples: {diff:.2e}")
    assert diff <= 1e-5, diff
    write_png(HERE / "samples.png", grid(imgs))
    write_png(HERE / "data.png", grid(coloured_digits()[:64].numpy()))

    k = CHOSEN   # picked by eye from samples.png (sample 5: a clear red 0; 0's hue is red)
    (HERE / "latent.json").write_text(json.dumps({"input_data": [[float(v) for v in calib[k]]], "index": k},
                                                 indent=2) + "\n")
    for name in ("model.onnx", "calibration.npy", "latent.json", "samples.png", "data.png"):
        print(f"  {name}: {os.path.getsize(HERE / name):,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
