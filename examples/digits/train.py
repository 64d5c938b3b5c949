"""Train a small MLP on scikit-learn's bundled digits data set and export it to ONNX.

Run from anywhere:  python examples/digits/train.py

Writes next to this file:
  model.onnx        float model, input `input` [1, 64] -> output `output` [1, 10] (softmax probs)
  calibration.npy   float32 [256, 64] training samples for post-training quantization calibration
  input.json        one correctly classified test sample: {"input_data": [[64 floats]], "label": int}
  test_set.npz      test split: x float32 [M, 64], y int64 [M]
"""
import json
import os
import random
import time
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

HERE = Path(__file__).resolve().parent
SEED = 0
EPOCHS = 100
BATCH = 64
LR = 1e-2
N_CALIB = 256
OPSET = 13
ALLOWED_OPS = {"Gemm", "MatMul", "Add", "Relu", "Softmax", "Flatten", "Reshape", "Identity"}


def set_determinism(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)  # single-threaded CPU reductions -> bit-stable runs


class DigitsMLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(64, 32), nn.ReLU(),
            nn.Linear(32, 16), nn.ReLU(),
            nn.Linear(16, 10),
        )
        self.softmax = nn.Softmax(dim=-1)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.softmax(self.net(x))


def main() -> None:
    set_determinism(SEED)

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)  # [1797, 64] in [0, 1]
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.25, random_state=0, stratify=None
    )

    model = DigitsMLP()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    gen = torch.Generator().manual_seed(SEED)

    t0 = time.perf_counter()
    model.train()
    for _ in range(EPOCHS):
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), BATCH):
            idx = perm[i:i + BATCH]
            opt.zero_grad()
            loss = loss_fn(model.logits(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    train_time = time.perf_counter() - t0

    model.eval()
    with torch.no_grad():
        train_acc = (model(xt).argmax(1) == yt).float().mean().item()
        probs_test = model(torch.from_numpy(x_test)).numpy()
    test_pred = probs_test.argmax(1)
    test_acc = float((test_pred == y_test).mean())
    print(f"train time: {train_time:.2f} s ({EPOCHS} epochs, batch {BATCH})")
    print(f"train accuracy: {train_acc:.4f}")
    print(f"test accuracy:  {test_acc:.4f} ({int((test_pred == y_test).sum())}/{len(y_test)})")
    assert test_acc >= 0.95, f"test accuracy {test_acc:.4f} < 0.95"

    # ---- export (legacy TorchScript exporter: plain Gemm/Relu/Softmax, weights as initializers)
    # dynamo=False: the torch.export-based exporter needs onnxscript (not installed) and emits a
    # less predictable graph; the legacy exporter gives exactly Gemm/Relu/Gemm/Relu/Gemm/Softmax.
    warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
    onnx_path = HERE / "model.onnx"
    dummy = torch.from_numpy(x_test[:1])
    torch.onnx.export(
        model, (dummy,), str(onnx_path),
        input_names=["input"], output_names=["output"],
        opset_version=OPSET, do_constant_folding=True,
        dynamic_axes=None, dynamo=False,
    )
    m = onnx.load(str(onnx_path))
    onnx.checker.check_model(m, full_check=True)
    ops = [n.op_type for n in m.graph.node]
    opset = next(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
    print(f"opset: {opset}")
    print(f"ops: {ops}")
    print(f"initializers: {[(i.name, list(i.dims)) for i in m.graph.initializer]}")
    bad = set(ops) - ALLOWED_OPS
    assert not bad, f"unexpected ops in exported graph: {bad}"
    assert ops[-1] == "Softmax", "Softmax must be the last node"
    for vi in list(m.graph.input) + list(m.graph.output):
        dims = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in vi.type.tensor_type.shape.dim]
        print(f"  {vi.name}: {dims}")
    assert [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim] == [1, 64]

    # ---- verify onnxruntime vs torch on the whole test set, one sample at a time
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    max_diff = 0.0
    for i in range(len(x_test)):
        (out,) = sess.run(["output"], {"input": x_test[i:i + 1]})
        max_diff = max(max_diff, float(np.abs(out - probs_test[i:i + 1]).max()))
    print(f"max |onnxruntime - torch| over test set: {max_diff:.2e}")
    assert max_diff <= 1e-5, max_diff

    # ---- artifacts
    calib_idx = np.random.RandomState(SEED).choice(len(x_train), N_CALIB, replace=False)
    calib = np.ascontiguousarray(x_train[np.sort(calib_idx)], dtype=np.float32)
    np.save(HERE / "calibration.npy", calib)

    np.savez_compressed(HERE / "test_set.npz", x=x_test.astype(np.float32), y=y_test.astype(np.int64))

    k = int(np.flatnonzero(test_pred == y_test)[0])  # first correctly classified test sample
    sample = {"input_data": [[float(v) for v in x_test[k]]], "label": int(y_test[k])}
    (HERE / "input.json").write_text(json.dumps(sample, indent=2) + "\n")
    print(f"input.json: test sample #{k}, label {int(y_test[k])}, p={probs_test[k].max():.4f}")

    for name in ("model.onnx", "calibration.npy", "input.json", "test_set.npz"):
        print(f"  {name}: {os.path.getsize(HERE / name)} bytes")


if __name__ == "__main__":
    main()
