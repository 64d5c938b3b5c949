"""Reading user data: model inputs and calibration sets from .npy, .npz or .json.

JSON may hold a nested list or the `{"input_data": [[...]]}` layout (one flattened list
per sample). Every sample is reshaped to the model input's shape; a size that does not
fit, NaN or infinity is an InputError with a clear message.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .errors import InputError


def _load_array(path: Path, what: str) -> np.ndarray:
    if not path.exists():
        raise InputError(f"{what} file {path} not found")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                keys = list(z.keys())
                if not keys:
                    raise InputError(f"{what} file {path} holds no arrays")
                key = next((k for k in ("input", "x", "input_data", "calibration") if k in keys), keys[0])
                arr = z[key]
        elif suffix == ".json":
            d = json.loads(path.read_text())
            if isinstance(d, dict):
                if "input_data" in d:
                    d = d["input_data"]
                elif "input" in d:
                    d = d["input"]
                else:
                    raise InputError(f"{what} file {path}: expected a list or a dict with 'input_data'")
            arr = np.array(d, dtype=np.float64)
        else:
            raise InputError(f"{what} file {path}: unknown format '{suffix}' (use .npy, .npz or .json)")
    except InputError:
        raise
    except Exception as e:
        raise InputError(f"{what} file {path} cannot be read: {type(e).__name__}: {str(e)[:200]}") from None
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number) or arr.dtype.kind == "c":
        # (complex: casting to float would silently drop the imaginary parts)
        raise InputError(f"{what} file {path} does not hold a real numeric array (dtype {arr.dtype})")
    return arr.astype(np.float64)


def load_samples(path: str | Path, shape: list[int], what: str = "input") -> np.ndarray:
    """Return float64 samples of shape [N, *shape] (shape includes the batch dim of 1)."""
    arr = _load_array(Path(path), what)
    size = int(np.prod(shape))
    if arr.size == 0 or arr.size % size:
        raise InputError(f"{what} file {path}: {arr.size} values do not make whole samples of shape "
                         f"{shape} ({size} values each); array shape is {list(arr.shape)}")
    arr = arr.reshape(-1, *shape)
    bad = ~np.isfinite(arr)
    if bad.any():
        raise InputError(f"{what} file {path}: {int(bad.sum())} values are NaN or infinite")
    return arr


def load_input(path: str | Path, shape: list[int]) -> np.ndarray:
    arr = load_samples(path, shape, "input")
    if arr.shape[0] != 1:
        raise InputError(f"input file {path} holds {arr.shape[0]} samples; give exactly one")
    return arr[0]
