"""A DCGAN-style image generator of about 540k parameters (EZKL's mnist_gan example has ~532k),
built with torch and exported to ONNX, for the slicing example and benchmark (docs/SLICING.md).

    latent z[100] -> Dense 3072 (= 192x4x4) -> ReLU
                  -> ConvTranspose 192->64 (k4 s2 p1) 8x8   -> ReLU
                  -> ConvTranspose 64->32            16x16  -> ReLU
                  -> ConvTranspose 32->1             32x32  -> Tanh      image 1x32x32

The weights are compile-time constants of the circuit (a product by a constant costs no
constraint), so the circuit's size follows the activations (~16.4k values, one requantization
each, ~74 constraints per value at 8 bits), not the parameter count. The weights are seeded random (Kaiming-uniform as torch
initializes them): training does not change the circuit's size or cost.

    .venv/bin/python examples/slicing/generator.py OUT_DIR [--scale S] [--mlp]

writes OUT_DIR/generator.onnx, OUT_DIR/calibration.npy (standard-normal latents, as a GAN
samples them) and OUT_DIR/input.json (one latent). --scale divides the channel counts (the
tests and quick runs use a small copy with the same structure).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

LATENT = 100


class _Reshape(nn.Module):
    """x.reshape(-1, *shape): a Reshape with a constant shape in ONNX (nn.Unflatten exports Shape ops)."""

    def __init__(self, *shape: int):
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.reshape(-1, *self.shape)


def generator(scale: int = 1, width: float = 1.0) -> nn.Module:
    """scale divides the channel counts (small copies for tests); width multiplies them (bigger models)."""
    c = [int(192 * width) // scale, int(64 * width) // scale, int(32 * width) // scale]
    up = lambda a, b: nn.ConvTranspose2d(a, b, 4, stride=2, padding=1)  # noqa: E731
    return nn.Sequential(
        nn.Linear(LATENT, c[0] * 16), nn.ReLU(), _Reshape(c[0], 4, 4),
        up(c[0], c[1]), nn.ReLU(),
        up(c[1], c[2]), nn.ReLU(),
        up(c[2], 1), nn.Tanh())


def mlp_generator(scale: int = 1) -> nn.Module:
    """The fully connected variant (559k parameters at scale 1): 100 -> 256 -> 512 -> 784 (28x28), Tanh.
    Each weight is used once, so circom's linear terms equal the parameter count (cheap to compile),
    and the circuit follows its 1,552 activations."""
    return nn.Sequential(nn.Linear(LATENT, 256 // scale), nn.ReLU(), nn.Linear(256 // scale, 512 // scale), nn.ReLU(),
                         nn.Linear(512 // scale, 784), nn.Tanh())


def parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def export(out: Path, scale: int = 1, seed: int = 0, n_calibration: int = 32, mlp: bool = False,
           width: float = 1.0) -> Path:
    import warnings
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    torch.manual_seed(seed)
    model = (mlp_generator(scale) if mlp else generator(scale, width)).eval()
    out.mkdir(parents=True, exist_ok=True)
    path = out / "generator.onnx"
    torch.onnx.export(model, torch.zeros(1, LATENT), str(path), input_names=["z"], output_names=["image"],
                      opset_version=17, dynamo=False)
    rng = np.random.default_rng(seed)
    np.save(out / "calibration.npy", rng.standard_normal((n_calibration, 1, LATENT)).astype(np.float32))
    (out / "input.json").write_text(json.dumps(rng.standard_normal((1, LATENT)).round(4).tolist()))
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--scale", type=int, default=1, help="divide the channel counts by this")
    ap.add_argument("--width", type=float, default=1.0, help="multiply the channel counts by this")
    ap.add_argument("--mlp", action="store_true", help="the fully connected variant (mlp_generator)")
    a = ap.parse_args()
    p = export(a.out, a.scale, mlp=a.mlp, width=a.width)
    print(f"{p}: {parameters(mlp_generator(a.scale) if a.mlp else generator(a.scale, a.width)):,} parameters")


if __name__ == "__main__":
    main()
