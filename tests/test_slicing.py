"""Sliced models (issue 9, zkml/slicing.py, zkml/slicing_evm.py, docs/SLICING.md).

A small MLP is cut into 3 segment circuits, compiled with `zkml compile --slices 3`, proven on
input A as Ray tasks on a local Ray cluster (2 CPUs) and on input B in-process. Checked:
  * cutting: boundaries are the tensors crossing the cut (one, or a bundle of up to 4), layers
    split into output-channel groups compute the same integers, segments composed == the whole
    model (exact),
  * the proven outputs == the reference runtime of the whole model (exact) and the dequantized
    outputs close to onnxruntime (tolerance stated below); each boundary commitment == the Poseidon
    commitment (zkml/poseidon.py) of the runtime's boundary tensor,
  * off-chain (`zkml verify`) and on-chain (embedded py-evm and anvil, the chain contract):
    the honest chain is accepted; a swapped, dropped or re-ordered segment proof and a segment
    proof of another input (its boundary commitments from input B) are rejected.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import zkml_runtime as rt
from conftest import mlp_model, residual_model, save
from zkml import api, slicing
from zkml.cli import main
from zkml.ir import Graph
from zkml.poseidon import commit_values

pytest.importorskip("ray", reason="pip install 'zkml[ray]' (scripts/setup.sh installs it)")

SIZES = (6, 8, 8, 8, 4)
INPUT_A = [[0.1, 0.5, -0.3, 1.0, 0.2, -0.8]]
INPUT_B = [[0.9, -0.5, 0.3, 0.0, 0.7, 0.8]]
# the integer pipeline against onnxruntime floats: at most this many output LSBs apart (8-bit
# activations, three requantized layers: each rounding contributes <= 0.5 LSB of its layer)
TOL_LSB = 3.0


# --------------------------------------------------------------------------- cutting (no circom)
def _graph(model, tmp_path) -> Graph:
    g, *_ = api.quantize_model(save(model, tmp_path / "m.onnx"))
    return g


def _crossing(g: Graph, i: int) -> set[str]:
    """Independent recount: tensors made at or before node i (or the input) and read after it."""
    made = {g.inputs[0], *(n.output for n in g.nodes[:i + 1])}
    read = {t for n in g.nodes[i + 1:] for t in n.inputs} | set(g.outputs)
    return made & read


def test_cut_candidates_are_the_crossing_tensors(tmp_path):
    g = _graph(residual_model(), tmp_path)
    cands = slicing.cut_candidates(g)
    for i in range(len(g.nodes) - 1):
        cross = _crossing(g, i)
        if i in cands:
            assert set(cands[i]) == cross and 1 <= len(cross) <= slicing.MAX_BUNDLE
        else:   # refused only for a reason: too many tensors, mixed widths or a model output crossing
            assert len(cross) > slicing.MAX_BUNDLE or len({g.tensors[t].bits for t in cross}) > 1 \
                or cross & set(g.outputs)
    both_branches = [k for k, n in enumerate(g.nodes) if len(n.inputs) == 2][0]   # the Add of the two Gemms
    assert any(i < both_branches and len(cands[i]) == 2 for i in cands), "a cut between the branches is a bundle"
    with pytest.raises(slicing.SliceError, match="too many"):
        slicing.choose_cuts(g, slices=len(cands) + 2)


def _compose(g: Graph, g2: Graph, cuts: list[int], rng, n_inputs: int = 5) -> None:
    """Segments run one after another == the whole model; every boundary == the runtime's tensors."""
    parts = slicing.split(g2, cuts)
    bparts = slicing.boundary_parts(g2, cuts)
    assert len(parts) == len(cuts) + 1
    for _ in range(n_inputs):
        q, _ = rt.quantize_input(g, rng.normal(size=g.tensors[g.inputs[0]].shape))
        env = rt.run(g2, q)
        x = q
        for k, p in enumerate(parts):
            if k > 0:
                want = np.concatenate([env[t].reshape(-1) for t in bparts[k - 1]])
                assert np.array_equal(np.asarray(x).reshape(-1), want)
            x = rt.run_outputs(p, np.asarray(x).reshape(p.tensors[p.inputs[0]].shape))[0]
        assert np.array_equal(x, rt.run_outputs(g, q)[0])


def test_segments_compose_to_the_whole_model(tmp_path):
    rng = np.random.default_rng(3)
    g = _graph(mlp_model(SIZES), tmp_path)
    for n in (2, 3, 5, 8):
        g2, cuts = slicing.plan(g, slices=n)
        _compose(g, g2, cuts, rng)
    g = _graph(residual_model(), tmp_path)
    for n in (2, 3, 5):
        g2, cuts = slicing.plan(g, slices=n)
        _compose(g, g2, cuts, rng)


def test_split_layers_computes_the_same_integers(tmp_path):
    g = _graph(mlp_model((6, 48, 48, 4)), tmp_path)
    est = slicing.node_estimates(g)
    g2 = slicing.split_layers(g, max(est) // 5)
    split = [n for n in g2.nodes if "#ch" in n.name]
    assert {n.op for n in split} == {"Dense"} and len(split) >= 10
    assert sum(slicing.node_estimates(g2)) <= sum(est)      # joins are free; a group's bounds are at most the layer's
    rng = np.random.default_rng(5)
    for _ in range(20):
        q, _ = rt.quantize_input(g, rng.normal(size=(1, 6)) * 2)
        e1, e2 = rt.run(g, q), rt.run(g2, q)
        assert all(np.array_equal(e1[t], e2[t]) for t in e1)        # every tensor of the model, bit for bit


def test_balanced_cuts_minimise_the_largest_segment(tmp_path):
    """The dynamic programme against brute force over every choice of cuts."""
    import itertools
    g = _graph(mlp_model((6, 16, 16, 8, 4)), tmp_path)
    g = slicing.split_layers(g, max(slicing.node_estimates(g)) // 3)
    est, cands = slicing.node_estimates(g), slicing.cut_candidates(g)
    for n in (2, 3, 4):
        got = slicing.balanced_cuts(g, n, est, cands)
        best = min(max(slicing.segment_costs(g, list(c), est, cands))
                   for c in itertools.combinations(sorted(cands), n - 1)
                   if all(sum(est[a + 1:b + 1]) > 0 for a, b in zip((-1, *c), (*c, len(est) - 1))))
        assert max(slicing.segment_costs(g, got, est, cands)) == best, n


def test_max_constraints_cuts_and_splits_a_layer_too_big(tmp_path):
    g = _graph(mlp_model((6, 48, 48, 48, 48, 4)), tmp_path)
    est = slicing.node_estimates(g)
    cands = slicing.cut_candidates(g)
    alone = max(e + sum(slicing.boundary_estimate(g, cands[j]) for j in (i - 1, i) if j in cands)
                for i, e in enumerate(est))       # the dearest layer in a segment of its own
    k = max(int(0.6 * sum(est)), alone)
    assert k < sum(est)                           # the whole model does not fit: cuts are needed
    cuts = slicing.choose_cuts(g, max_constraints=k)
    assert len(cuts) >= 1
    edges = [-1, *cuts, len(est) - 1]
    for a, b in zip(edges[:-1], edges[1:]):       # every segment within K, its boundaries included
        cost = sum(est[a + 1:b + 1]) + sum(slicing.boundary_estimate(g, cands[i])
                                           for i in (a, b) if 0 <= i < len(est) - 1)
        assert cost <= k
    with pytest.raises(slicing.SliceError, match="alone needs"):     # the unsplit graph cannot ...
        slicing.choose_cuts(g, max_constraints=max(est) // 2)
    k = max(est) // 2 + 3000
    g2, cuts = slicing.plan(g, max_constraints=k)                  # ... the planner splits the big layers
    est2, cands2 = slicing.node_estimates(g2), slicing.cut_candidates(g2)
    edges = [-1, *cuts, len(est2) - 1]
    for a, b in zip(edges[:-1], edges[1:]):
        assert sum(est2[a + 1:b + 1]) + sum(slicing.boundary_estimate(g2, cands2[i])
                                            for i in (a, b) if 0 <= i < len(est2) - 1) <= k
    _compose(g, g2, cuts, np.random.default_rng(7), 3)


# --------------------------------------------------------------------------- one sliced build, two proofs
@pytest.fixture(scope="module")
def sliced(tmp_path_factory):
    d = tmp_path_factory.mktemp("sliced")
    model = save(mlp_model(SIZES), d / "mlp.onnx")
    (d / "a.json").write_text(json.dumps(INPUT_A))
    (d / "b.json").write_text(json.dumps(INPUT_B))
    r = CliRunner().invoke(main, ["compile", str(model), "-o", str(d / "A"), "--slices", "3"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["prove", str(d / "A"), "-i", str(d / "a.json"), "--ray", "--workers", "2"])
    assert r.exit_code == 0, r.output
    assert "started a local Ray instance with 2 worker CPU(s)" in r.output and "[3/3]" in r.output
    shutil.copytree(d / "A", d / "B")               # same circuits and keys, another input, in-process
    slicing.prove(d / "B", d / "b.json")
    return d


def _proofs(build: Path, order=(0, 1, 2)) -> list[tuple[Path, Path]]:
    m = slicing.manifest_of(build)
    return [(build / m["segments"][k]["dir"] / "proof.json", build / m["segments"][k]["dir"] / "public.json")
            for k in order]


def test_ray_tasks_ran_in_separate_workers(sliced):
    recs = [json.loads(p.read_text()) for p in sorted((sliced / "A" / "segments").glob("*/prove.json"))]
    assert len(recs) == 3 and len({r["pid"] for r in recs}) == 3       # max_calls=1: a fresh worker per task
    assert all(r["peak_rss_mib"] > 0 for r in recs)


@pytest.mark.parametrize("which, inp", [("A", INPUT_A), ("B", INPUT_B)])
def test_outputs_equal_runtime_and_close_to_onnxruntime(sliced, which, inp):
    b = sliced / which
    g = api.load_graph(b)                                # the whole model's IR
    r = api.run(b, sliced / f"{which.lower()}.json")     # whole-model runtime vs onnxruntime
    assert r.max_diff_lsb <= TOL_LSB
    v = slicing.verify(b)
    assert v.valid, v.reason
    assert v.outputs == r.q_outputs                      # proven == runtime, exactly
    q, _ = rt.quantize_input(g, np.array(inp))
    env = rt.run(g, q)
    m = slicing.manifest_of(b)
    assert any(len(p) > 1 for p in m["boundary_parts"])  # the 3 slices split a layer: bundled boundaries
    for k, ts in enumerate(m["boundary_parts"]):         # each commitment == Poseidon of the runtime tensors
        want = str(commit_values([int(v) for t in ts for v in env[t].reshape(-1)], g.tensors[ts[0]].bits))
        assert v.segments[k]["out_commitment"] == want == v.segments[k + 1]["in_commitment"]


def test_estimates_within_2x_of_compiled_counts(sliced):
    m = slicing.manifest_of(sliced / "A")
    g = api.load_graph(sliced / "A")
    for k, s in enumerate(m["segments"]):
        est = s["estimate"] + sum(slicing.boundary_estimate(g, m["boundary_parts"][i]) for i in (k - 1, k)
                                  if 0 <= i < len(m["boundaries"]))
        assert s["constraints"] / 2 <= est <= 2 * s["constraints"], (k, est, s["constraints"])


def _tampered(sliced) -> dict[str, list]:
    a, b = _proofs(sliced / "A"), _proofs(sliced / "B")
    return {"swapped": [a[1], a[0], a[2]],               # segment 0's proof given as segment 1's and back
            "dropped": [a[0], a[2]],                     # a segment missing
            "reordered": [a[0], a[2], a[1]],
            "other input": [a[0], b[1], a[2]]}           # a valid proof of segment 1 for input B


def test_off_chain_rejects_tampered_chains(sliced):
    assert slicing.verify(sliced / "A", _proofs(sliced / "A")).valid
    reasons = {}
    for what, proofs in _tampered(sliced).items():
        r = slicing.verify(sliced / "A", proofs)
        assert not r.valid, what
        reasons[what] = r.reason
    assert "chain is broken between segments 00 and 01" in reasons["other input"]
    assert "2 segment proofs given" in reasons["dropped"]
    # and through the CLI: a proof of another input in place, exit 1 with a one-line reason
    c = sliced / "C"
    shutil.copytree(sliced / "A", c)
    for f in ("proof.json", "public.json"):
        shutil.copy(sliced / "B" / "segments" / "01" / f, c / "segments" / "01" / f)
    r = CliRunner().invoke(main, ["verify", str(c)])
    assert r.exit_code == 1 and "chain is broken" in r.output
    (c / "segments" / "02" / "proof.json").unlink()
    r = CliRunner().invoke(main, ["verify", str(c)])
    assert r.exit_code == 1 and "INVALID" in r.output


def _on_chain(sliced, w3):
    from zkml import slicing_evm
    dep = slicing_evm.deploy_chain(sliced / "A", w3)
    good = slicing_evm.verify_chain(sliced / "A", w3)
    assert good.valid, good.reason
    out = {}
    for what, proofs in _tampered(sliced).items():
        subs = [slicing_evm.submit(w3, dep, k, json.loads(p.read_text()), json.loads(q.read_text()))
                for k, (p, q) in enumerate(proofs)]
        pubs = [json.loads(q.read_text()) for _, q in proofs]
        fin = slicing_evm.finalize(w3, dep, pubs)
        assert not fin[0] and not slicing_evm.chain_verified(w3, dep, pubs), what
        out[what] = ([s[1] for s in subs], fin[1])
    return out


def test_on_chain_embedded_evm(sliced):
    from zkml import evm
    out = _on_chain(sliced, evm.connect())
    rejected = lambda r: r.startswith(("SegmentRejected(", "WrongPublicCount("))  # noqa: E731 (wrong key or layout)
    assert all(map(rejected, out["swapped"][0][:2])) and out["swapped"][0][2] == ""
    assert all(map(rejected, out["reordered"][0][1:]))
    assert out["dropped"][1].startswith("WrongPublicCount")
    assert out["other input"][0] == ["", "", ""]                 # each proof valid on its own ...
    assert out["other input"][1] == "ChainBroken(0)"              # ... the chain is not


def test_on_chain_anvil(sliced, anvil):
    from zkml import evm
    out = _on_chain(sliced, evm.connect(anvil))
    assert out["other input"][1] == "ChainBroken(0)"
    assert out["swapped"][0][0].startswith(("SegmentRejected(0)", "WrongPublicCount(0,"))


# --------------------------------------------------------------------------- errors
def test_bad_requests_are_one_line_errors(tmp_path, sliced):
    model = save(mlp_model(SIZES), tmp_path / "m.onnx")
    r = CliRunner().invoke(main, ["compile", str(model), "-o", str(tmp_path / "x"), "--slices", "40"])
    assert r.exit_code == 2 and "too many" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["compile", str(model), "-o", str(tmp_path / "x"), "--slices", "2",
                                  "--weights", "hashed"])
    assert r.exit_code == 2 and "not supported with slicing" in r.output
    r = CliRunner().invoke(main, ["compile", str(model), "-o", str(tmp_path / "x"), "--max-constraints", "10"])
    assert r.exit_code == 2 and "alone needs" in r.output
    r = CliRunner().invoke(main, ["prove", str(sliced / "A" / "segments" / "00"), "-i", str(sliced / "a.json"),
                                  "--ray"])
    assert r.exit_code == 2 and "not one" in r.output
    d = tmp_path / "D"                              # a manifest pointing outside its segment folders
    shutil.copytree(sliced / "A", d)
    m = json.loads((d / "slices.json").read_text())
    m["segments"][1]["dir"] = "../../elsewhere"
    (d / "slices.json").write_text(json.dumps(m))
    r = CliRunner().invoke(main, ["verify", str(d)])
    assert r.exit_code == 2 and "malformed" in r.output
    m["segments"][1]["dir"] = "segments/01"         # a segment whose build.json does not chain
    (d / "slices.json").write_text(json.dumps(m))
    bj = json.loads((d / "segments" / "01" / "build.json").read_text())
    next(x for x in bj["public_segments"] if x["kind"] == "input")["mode"] = "private"
    (d / "segments" / "01" / "build.json").write_text(json.dumps(bj))
    r = CliRunner().invoke(main, ["verify", str(d)])
    assert r.exit_code == 2 and "does not publish its boundary commitments" in r.output
