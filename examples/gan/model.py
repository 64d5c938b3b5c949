"""The generator's architecture (DCGAN-style, integer-friendly), shared by train.py and the tests.

    z [1, LATENT] -> Gemm -> BatchNorm -> Relu -> Reshape [c0, 4, 4]
      -> ConvTranspose(4x4, stride 2, pad 1) -> BatchNorm -> Relu        [c1, 8, 8]
      -> Resize nearest x2 -> Conv 3x3 -> BatchNorm -> Relu              [c2, 16, 16]
      -> Resize nearest x2 -> Conv 3x3 -> Sigmoid                        [channels, 32, 32]

`export_onnx` folds the BatchNorms into the layer before them (torch's exporter folds Conv+BN,
zkml folds Gemm+BN; ConvTranspose+BN is fused here with torch's fuse_conv_bn_eval), so the ONNX
graph holds only Gemm, BatchNormalization (after the Gemm), Relu, Reshape, ConvTranspose, Resize,
Conv and Sigmoid. The Sigmoid gives pixel values in [0, 1]; zkml proves it as an exact 8-bit
lookup table, so the circuit's public output is the image as uint8 codes on the Sigmoid's
calibrated grid.
"""
from __future__ import annotations

import copy
import warnings
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

LATENT = 16
OPSET = 13


class Generator(nn.Module):
    """`size` 32 is the example; a smaller power of two (16, 8) drops Resize+Conv blocks (the
    reduced configuration of tests/test_example_gan.py)."""

    def __init__(self, latent: int = LATENT, c0: int = 32, c1: int = 32, c2: int = 16, channels: int = 3,
                 size: int = 32):
        super().__init__()
        if size < 8 or size & (size - 1):
            raise ValueError("size must be a power of two >= 8")
        self.c0 = c0
        self.fc = nn.Sequential(nn.Linear(latent, c0 * 16), nn.BatchNorm1d(c0 * 16), nn.ReLU())
        layers = [nn.ConvTranspose2d(c0, c1, 4, stride=2, padding=1), nn.BatchNorm2d(c1), nn.ReLU()]   # 8x8
        c, s = c1, 8
        while s < size:
            s *= 2
            last = s == size
            layers += [nn.Upsample(scale_factor=2, mode="nearest"),
                       nn.Conv2d(c, channels if last else c2, 3, padding=1)]
            layers += [nn.Sigmoid()] if last else [nn.BatchNorm2d(c2), nn.ReLU()]
            c = c2
        if size == 8:
            layers += [nn.Conv2d(c1, channels, 3, padding=1), nn.Sigmoid()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.fc(z).reshape(-1, self.c0, 4, 4))


class Discriminator(nn.Module):
    """Training only (not exported): 32x32 image -> one logit."""

    def __init__(self, channels: int = 3, width: int = 32):
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(channels, w, 4, 2, 1), nn.LeakyReLU(0.2),                               # 16x16
            nn.Conv2d(w, 2 * w, 4, 2, 1), nn.BatchNorm2d(2 * w), nn.LeakyReLU(0.2),           # 8x8
            nn.Conv2d(2 * w, 4 * w, 4, 2, 1), nn.BatchNorm2d(4 * w), nn.LeakyReLU(0.2),       # 4x4
            nn.Flatten(), nn.Linear(4 * w * 16, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).reshape(-1)


def export_onnx(gen: Generator, path: str | Path) -> Path:
    """Export the generator (eval mode, ConvTranspose+BatchNorm fused) to ONNX opset 13, input
    `z` [1, latent], output `image` [1, channels, 32, 32]."""
    g = copy.deepcopy(gen).eval()
    g.net[0] = fuse_conv_bn_eval(g.net[0], g.net[1], transpose=True)
    g.net[1] = nn.Identity()
    latent = g.fc[0].in_features
    warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
    # dynamo=False: the legacy exporter (as examples/digits/train.py) gives a plain graph with the
    # weights as initializers; the torch.export-based one needs onnxscript, which is not installed.
    torch.onnx.export(g, (torch.zeros(1, latent),), str(path), input_names=["z"], output_names=["image"],
                      opset_version=OPSET, do_constant_folding=True, dynamic_axes=None, dynamo=False)
    return Path(path)
