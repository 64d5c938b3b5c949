"""Train a LeNet-5-style CNN on scikit-learn's bundled digits (upsampled to 16x16), export it to
ONNX, and quantize a copy with onnxruntime's static quantizer (QDQ format).

Run from anywhere:  python examples/lenet/train.py      (about a minute on 2 CPU cores)

Writes next to this file:
  model.onnx        float model: input `input` [1, 1, 16, 16] -> output `output` [1, 10] (logits)
  model_qdq.onnx    the same model quantized by onnxruntime.quantization.quantize_static
                    (QDQ format, uint8 activations, int8 per-channel weights)
  calibration.npy   float32 [128, 1, 16, 16] training samples (calibration, ours and onnxruntime's)
  input.json        one correctly classified test sample: {"input_data": [[[[...]]]], "label": int}
  test_set.npz      test split: x float32 [M, 1, 16, 16], y int64 [M]

The 8x8 digits are upsampled to 16x16 (bilinear, align_corners=False) as preprocessing, outside
the model: the network is the classic LeNet-5 shape scaled to that input,
  Conv(1->6, 5x5, pad 2) Relu MaxPool(2) -> Conv(6->16, 5x5) Relu MaxPool(2)
  -> Flatten -> Gemm(64->120) Relu -> Gemm(120->84) Relu -> Gemm(84->10).
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
EPOCHS = 40
BATCH = 64
LR = 3e-3
N_CALIB = 128
OPSET = 13
SIZE = 16


def set_determinism(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)


class LeNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * 2 * 2, 120), nn.ReLU(),
            nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def load_data():
    digits = load_digits()
    x = torch.from_numpy((digits.data / 16.0).astype(np.float32)).reshape(-1, 1, 8, 8)
    x = torch.nn.functional.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    x = x.numpy().astype(np.float32)
    y = digits.target.astype(np.int64)
    return train_test_split(x, y, test_size=0.25, random_state=0)


class _Reader:
    """onnxruntime.quantization's CalibrationDataReader over our calibration samples."""

    def __init__(self, samples):
        self.it = iter([{"input": s[None]} for s in samples])

    def get_next(self):
        return next(self.it, None)


def quantize_qdq(src: Path, dst: Path, calib: np.ndarray) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(_Reader, CalibrationDataReader):
        pass

    quantize_static(str(src), str(dst), Reader(calib), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    per_channel=True)


def main() -> None:
    set_determinism(SEED)
    x_train, x_test, y_train, y_test = load_data()

    model = LeNet()
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
            loss_fn(model(xt[idx]), yt[idx]).backward()
            opt.step()
    print(f"train time: {time.perf_counter() - t0:.1f} s ({EPOCHS} epochs, batch {BATCH})")

    model.eval()
    with torch.no_grad():
        logits_test = model(torch.from_numpy(x_test)).numpy()
        train_acc = (model(xt).argmax(1) == yt).float().mean().item()
    test_pred = logits_test.argmax(1)
    test_acc = float((test_pred == y_test).mean())
    print(f"train accuracy: {train_acc:.4f}")
    print(f"test accuracy:  {test_acc:.4f} ({int((test_pred == y_test).sum())}/{len(y_test)})")
    assert test_acc >= 0.95, f"test accuracy {test_acc:.4f} < 0.95"

    warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
    onnx_path = HERE / "model.onnx"
    torch.onnx.export(model, (torch.from_numpy(x_test[:1]),), str(onnx_path),
                      input_names=["input"], output_names=["output"], opset_version=OPSET,
                      do_constant_folding=True, dynamic_axes=None, dynamo=False)
    m = onnx.load(str(onnx_path))
    onnx.checker.check_model(m, full_check=True)
    print(f"ops: {[n.op_type for n in m.graph.node]}")
    n_params = sum(int(np.prod(i.dims)) for i in m.graph.initializer)
    print(f"parameters: {n_params}")

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    diff = max(float(np.abs(sess.run(None, {"input": x_test[i:i + 1]})[0] - logits_test[i]).max())
               for i in range(len(x_test)))
    print(f"max |onnxruntime - torch| over the test set: {diff:.2e}")
    assert diff <= 1e-4, diff

    calib_idx = np.sort(np.random.RandomState(SEED).choice(len(x_train), N_CALIB, replace=False))
    calib = np.ascontiguousarray(x_train[calib_idx], dtype=np.float32)
    np.save(HERE / "calibration.npy", calib)
    np.savez_compressed(HERE / "test_set.npz", x=x_test.astype(np.float32), y=y_test.astype(np.int64))
    k = int(np.flatnonzero(test_pred == y_test)[0])
    sample = {"input_data": x_test[k:k + 1].round(6).tolist(), "label": int(y_test[k])}
    (HERE / "input.json").write_text(json.dumps(sample) + "\n")
    print(f"input.json: test sample #{k}, label {int(y_test[k])}")

    quantize_qdq(onnx_path, HERE / "model_qdq.onnx", calib)
    q = onnx.load(str(HERE / "model_qdq.onnx"))
    print(f"QDQ ops: {sorted({n.op_type for n in q.graph.node})}")
    qs = ort.InferenceSession(str(HERE / "model_qdq.onnx"), providers=["CPUExecutionProvider"])
    q_pred = np.array([qs.run(None, {"input": x_test[i:i + 1]})[0].argmax() for i in range(len(x_test))])
    print(f"onnxruntime QDQ test accuracy: {float((q_pred == y_test).mean()):.4f}")

    for name in ("model.onnx", "model_qdq.onnx", "calibration.npy", "input.json", "test_set.npz"):
        print(f"  {name}: {os.path.getsize(HERE / name)} bytes")


if __name__ == "__main__":
    main()
