"""Cross-check 1: onnxruntime (float) vs the integer runtime, dequantized.

Tolerance, stated in LSBs of the output tensor's quantization step (before any final
Softmax): 1 + (number of requantizing nodes). Each requantization rounds once (<= 0.5 LSB
of its own output) and the input's rounding adds <= 0.5 LSB of the input; with weights
rounded too, one LSB per layer plus one is the budget we hold ourselves to. Inputs come
from the calibration distribution (in-range), as in use.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

import zkml_runtime as rt
from conftest import FOUNDATION_MODELS, SHARED_MODELS, mlp_model, residual_model, save, shared_model
from zkml.inputs import load_input
from zkml.ir import Graph
from zkml.onnx_import import import_onnx
from zkml.quantize import QuantConfig, calibrate, quantize, run_float


def _quantized(path, samples, cfg=None):
    fg, model = import_onnx(path)
    g = quantize(fg, calibrate(fg, model, samples), cfg or QuantConfig())
    return fg, model, g


def _check(path, samples, tests, cfg=None):
    fg, model, g = _quantized(path, samples, cfg)
    layers = sum(1 for n in g.nodes if n.op in ("Dense", "Add"))
    tol = 1 + layers
    out = g.outputs[0]
    ref = run_float(model, tests, [out])[out]
    worst = 0.0
    for x, r in zip(tests, ref):
        q, _ = rt.quantize_input(g, x)
        y = rt.dequantize(g, out, rt.run_outputs(g, q)[0])
        worst = max(worst, float(np.abs(y - r).max() / g.tensors[out].scale))
    assert worst <= tol, f"{path}: worst error {worst:.2f} LSB > {tol} LSB"
    return g, worst


@pytest.mark.parametrize("name", FOUNDATION_MODELS)
def test_shared_models_within_tolerance(name):
    path = shared_model(name)
    fg, _ = import_onnx(path)
    shape = fg.shapes[fg.inputs[0]]
    x = load_input(SHARED_MODELS / name / "input.json", shape)
    rng = np.random.default_rng(0)
    samples = np.concatenate([x[None], rng.normal(0, 1, (64, *shape))])
    _check(path, samples, samples[:16])


@pytest.mark.parametrize("matmul", [False, True])
@pytest.mark.parametrize("per_channel", [True, False])
def test_built_mlps_within_tolerance(tmp_path, matmul, per_channel):
    path = save(mlp_model((8, 12, 6, 4), seed=3, matmul=matmul), tmp_path / "m.onnx")
    samples = np.random.default_rng(1).uniform(-1, 1, (200, 1, 8))
    g, _ = _check(path, samples, samples[:50], QuantConfig(per_channel=per_channel))
    assert [n.op for n in g.nodes] == ["Dense", "Dense", "Dense", "Reshape"]


def test_residual_add_and_final_softmax(tmp_path):
    path = save(residual_model(), tmp_path / "r.onnx")
    samples = np.random.default_rng(2).normal(0, 1, (200, 1, 5))
    g, _ = _check(path, samples, samples[:50])
    assert [n.op for n in g.nodes] == ["Dense", "Dense", "Add", "Reshape"]
    assert g.meta["postprocess"]["op"] == "softmax"
    # the softmax of the dequantized logits tracks onnxruntime's probabilities
    fg, model = import_onnx(path)
    probs = run_float(model, samples[:20], ["y"])["y"]
    for x, p in zip(samples[:20], probs):
        q, _ = rt.quantize_input(g, x)
        y = rt.postprocess(g, rt.dequantize(g, g.outputs[0], rt.run_outputs(g, q)[0]))
        assert np.abs(y - p).max() < 0.05


def test_error_shrinks_with_more_bits(tmp_path):
    """More bits, smaller absolute error: the quantizer uses the bits it is given."""
    path = save(mlp_model((6, 10, 3), seed=5), tmp_path / "m.onnx")
    samples = np.random.default_rng(3).uniform(-1, 1, (100, 1, 6))
    errs = []
    for bits in (4, 8, 12):
        g, worst = _check(path, samples, samples[:30], QuantConfig(act_bits=bits, weight_bits=bits))
        errs.append(worst * g.tensors[g.outputs[0]].scale)
    assert errs[0] > errs[1] > errs[2], errs


def test_ir_roundtrip_is_exact(tmp_path):
    path = save(residual_model(), tmp_path / "r.onnx")
    samples = np.random.default_rng(2).normal(0, 1, (50, 1, 5))
    _, _, g = _quantized(path, samples)
    g.save(tmp_path / "ir.json")
    g2 = Graph.load(tmp_path / "ir.json")
    assert json.dumps(g.to_json()) == json.dumps(g2.to_json())
    for x in samples[:5]:
        q, _ = rt.quantize_input(g, x)
        assert np.array_equal(rt.run_outputs(g, q)[0], rt.run_outputs(g2, q)[0])


def test_no_float_after_quantization(tmp_path):
    """Every IR parameter is an integer (scales live only in tensor metadata)."""
    path = save(residual_model(), tmp_path / "r.onnx")
    _, _, g = _quantized(path, np.random.default_rng(2).normal(0, 1, (50, 1, 5)))

    def ints(v):
        if isinstance(v, list):
            return all(ints(x) for x in v)
        return v is None or (isinstance(v, int) and not isinstance(v, bool))
    for n in g.to_json()["nodes"]:
        assert all(ints(v) for v in n["params"].values()), n["name"]


@pytest.mark.parametrize("levels,max_error",
                         [(255, 0.125), (255, 0.0625), (255, 0.25), (15, 0.125), (65535, 0.25)])
def test_short_multipliers_stay_within_their_error_budget(levels, max_error):
    """zkml.qparams.multipliers with an error budget (Conv, ConvTranspose, Dense): for random
    per-channel ratios spread over up to 2^5 (LeNet's layers: 2^1.5 .. 2^4), every accumulator
    whose output is not clamped (|acc * r| <= levels) requantizes to within 0.5 + max_error LSB of acc * r (the rounding
    plus the multiplier's budget), the shift is the smallest the worst-case bound allows, and
    never above the `precision` rule's shift. 16-bit outputs need more than 16-bit multipliers
    for that budget: they keep the `precision` rule."""
    from zkml.qparams import multipliers
    rng = np.random.default_rng(levels + int(max_error * 1000))
    saved = []
    for _ in range(200):
        n = int(rng.integers(1, 65))
        top = 2.0 ** rng.uniform(-24, 2)
        reals = top * 2.0 ** -rng.uniform(0, rng.uniform(0, 5), n)
        mult, shift = multipliers(reals, 16, levels, max_error)
        _, cap = multipliers(reals, 16)
        assert 1 <= shift <= cap
        saved.append(cap - shift)
        if shift < cap:     # the budget decided: it holds, and one bit less would not guarantee it
            assert levels / (2 * reals.min() * 2 ** shift) <= max_error
            assert shift == 1 or levels / (2 * reals.min() * 2 ** (shift - 1)) > max_error
            for r, m in zip(reals, mult):
                acc = np.unique(np.round(np.linspace(-levels / r, levels / r, 401))).astype(object)
                q = [(int(a) * m + (1 << (shift - 1))) >> shift for a in acc]
                exact = np.array([float(a) * r for a in acc])
                assert np.abs(np.array(q, dtype=float) - exact).max() <= 0.5 + max_error + 1e-9, (r, m, shift)
    if levels >= 1 << 14:
        assert max(saved) == 0
    else:
        assert sum(s > 0 for s in saved) >= 100      # the budget decided in most draws: the checks ran
    print(f"\nlevels {levels}, budget {max_error} LSB: shift {np.mean(saved):.1f} bits below the "
          f"16-bit rule on average (range {min(saved)}..{max(saved)})")


@pytest.mark.parametrize("bits,per_channel", [(8, True), (4, True), (8, False)])
def test_aligned_weights_keep_each_rows_resolution_and_make_requantization_a_shift(bits, per_channel):
    """zkml.qparams.aligned_weights (constant Conv, ConvTranspose, Dense weights, the default):
    for random rows whose ranges spread over up to 2^10, one step d for all rows with
    x_scale * d / out_scale = 2^-shift exactly (so the multiplier is 1); d no coarser than any
    non-zero row's affine `bits` step (per row or per tensor) unless that row is more than 2^8
    below the widest (then the shift is capped there), and the shift the smallest that holds;
    (wq - zp) * d within d/2 of every weight; all-zero rows do not count. Against the affine rule
    with its 1/8-LSB multipliers the shift is shorter in every draw."""
    from zkml.qparams import affine_params, aligned_weights, multipliers
    rng = np.random.default_rng(bits + per_channel)
    saved = []
    for _ in range(200):
        n, k = int(rng.integers(1, 33)), int(rng.integers(1, 200))
        spread = 2.0 ** -rng.uniform(0, rng.uniform(0, 10), n)
        W = rng.normal(0, 1, (n, k)) * spread[:, None] * 2.0 ** rng.uniform(-8, 2)
        W[rng.random(n) < 0.1] = 0.0                        # dead rows
        x_scale, out_scale = 2.0 ** rng.uniform(-8, 0), 2.0 ** rng.uniform(-6, 2)
        wq, w_scale, zp, wbits, shift = aligned_weights(W, bits, per_channel, x_scale / out_scale)
        d = float(w_scale[0])
        assert np.all(w_scale == d) and shift >= 1
        assert x_scale * d / out_scale == pytest.approx(2.0 ** -shift, rel=1e-12)
        assert wq.min() >= 0 and int(wq.max()).bit_length() <= wbits and np.all(zp >= 0)
        assert np.abs((wq - zp[:, None]) * d - W).max() <= d / 2 * (1 + 1e-9)
        rows = W if per_channel else W.reshape(1, -1)
        steps = np.array([affine_params(r.min(), r.max(), bits)[0] for r in rows if np.ptp(np.append(r, 0)) > 1e-12])
        if steps.size == 0:
            assert shift == 1
            continue
        capped = steps.min() < steps.max() / 2 ** 8
        if not capped:
            assert d <= steps.min() * (1 + 1e-9)
            assert shift == 1 or 2 * d > steps.min() * (1 - 1e-9)       # one bit less would be coarser
        else:
            assert d <= steps.max() / 2 ** 8 * (1 + 1e-9) and 2 * d > steps.max() / 2 ** 8 * (1 - 1e-9)
        reals = x_scale * (steps if per_channel else np.full(n, steps[0])) / out_scale
        _, affine_shift = multipliers(reals, 16, 255, 0.125)
        saved.append(affine_shift - shift)
    assert min(saved) > 0
    print(f"\nuint{bits} per {'channel' if per_channel else 'tensor'}: aligned shifts {np.mean(saved):.1f} bits "
          f"shorter than the affine rule's (range {min(saved)}..{max(saved)})")
