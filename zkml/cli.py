"""zkml command line: thin wrappers over zkml.api, one command per library function."""
from __future__ import annotations

import os
import sys
import time
import traceback
from functools import wraps

import click

from . import __version__
from .errors import ZkmlError


def _log(msg: str) -> None:
    click.echo(msg, err=msg.startswith("WARNING"))


def _guard(fn):
    """One-line errors and a non-zero exit instead of tracebacks."""
    @wraps(fn)
    def wrapper(*a, **kw):
        try:
            return fn(*a, **kw)
        except ZkmlError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except click.exceptions.Exit:
            raise
        except Exception as e:  # a bug: say so, keep the trace for ZKML_DEBUG=1
            if os.environ.get("ZKML_DEBUG"):
                traceback.print_exc()
            click.echo(f"internal error: {type(e).__name__}: {e} (set ZKML_DEBUG=1 for the trace; "
                       "please report it)", err=True)
            sys.exit(3)
    return wrapper


BUILD = click.argument("build", type=click.Path(file_okay=False), default="build", required=False)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="zkml")
def main():
    """Compile ONNX models to zero-knowledge circuits, prove and verify them (off-chain and on an EVM)."""


@main.command("compile")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--calibration", "-c", type=click.Path(dir_okay=False),
              help="Representative inputs (.npy/.npz/.json) for calibration. Without it: random inputs, warned.")
@click.option("-o", "--out", "out", default="build", show_default=True, type=click.Path(file_okay=False),
              help="Build folder.")
@click.option("--bits", default=8, show_default=True, help="Activation bits (unsigned).")
@click.option("--weight-bits", default=8, show_default=True, help="Weight bits (unsigned).")
@click.option("--per-tensor", is_flag=True, help="One weight scale per tensor instead of per output channel.")
@click.option("--mult-error", type=click.FloatRange(0, 0.5), default=0.125, show_default=True,
              help="Conv/ConvTranspose/Dense with --weight-grid affine: the shortest requantization multipliers "
                   "whose rounding adds at most this many output LSB (fewer constraints); 0 = 16-bit multipliers "
                   "as the other operators use.")
@click.option("--weight-grid", type=click.Choice(["auto", "aligned", "affine"]), default="auto", show_default=True,
              help="Conv/ConvTranspose/Dense weights: aligned = on the output's grid at no less than --weight-bits "
                   "resolution per channel, so requantization is a shift (fewer constraints; wider integer "
                   "constants); affine = uint weights and integer multipliers (--mult-error). auto: aligned for "
                   "--weights constant, affine for weights as signals (each weight bit costs a constraint there).")
@click.option("--no-pack-outputs", is_flag=True,
              help="One public input per output value instead of ~253/bits values per field element.")
@click.option("--optimize", type=click.Choice(["auto", "O1", "O2"]), default="auto", show_default=True,
              help="circom simplification: O2 (every linear constraint eliminated: fewest constraints) or O1 "
                   "(keeps them: 7-9% more constraints measured, a smaller proving key); auto takes O2 up to "
                   "1,000,000 estimated constraints, O1 above.")
@click.option("--input", "vis_input", type=click.Choice(["private", "public", "hashed"]), default="private",
              show_default=True, help="Input visibility: private witness, public (packed) or a public Poseidon "
                                      "commitment (docs/PRIVACY.md).")
@click.option("--weights", "vis_weights", type=click.Choice(["constant", "public", "private", "hashed"]),
              default="constant", show_default=True,
              help="constant: baked into the circuit (the verifying key binds them); public / private / hashed: "
                   "private witness signals, published packed, not at all, or as a Poseidon commitment.")
@click.option("--output", "vis_output", type=click.Choice(["public", "private", "hashed"]), default="public",
              show_default=True, help="Output visibility: public (packed), private, or a public Poseidon commitment.")
@click.option("--strands", type=click.Choice(["auto", "off"]), default="auto", show_default=True,
              help="With --weights public/private/hashed: pack signal x signal products into field-element "
                   "lanes where the constraint count says it pays (auto), or keep one constraint per product "
                   "(off). docs/PRIVACY.md.")
@click.option("--no-fuse-pools", is_flag=True, help="With constant weights: keep every Conv -> MaxPool pair as two "
              "layers (by default a Conv read only by a MaxPool is pooled before it is requantized where that "
              "costs fewer constraints; the integers are the same).")
@click.option("--slices", type=click.IntRange(min=1), help="Cut the model into N segment circuits "
              "chained by Poseidon commitments, at layer boundaries, splitting big Dense/Conv/ConvTranspose layers "
              "into output-channel groups when needed (docs/SLICING.md).")
@click.option("--max-constraints", type=click.IntRange(min=1), help="Slice automatically: as few segments as keep "
              "each one's estimated constraints within K.")
@_guard
def compile_cmd(model, calibration, out, bits, weight_bits, per_tensor, mult_error, weight_grid, no_pack_outputs,
                optimize, vis_input, vis_weights, vis_output, strands, no_fuse_pools, slices, max_constraints):
    """Quantize MODEL.onnx, emit the circuit and compile it with circom."""
    from . import api
    from .quantize import QuantConfig
    from .visibility import Visibility
    t = time.time()
    cfg = QuantConfig(bits, weight_bits, not per_tensor, mult_error=mult_error, weight_grid=weight_grid)
    if slices is not None or max_constraints is not None:
        from . import slicing
        slicing.compile(model, out, slices=slices, max_constraints=max_constraints, calibration=calibration,
                        cfg=cfg, log=_log,
                        pack_outputs=not no_pack_outputs, optimize=optimize,
                        visibility=Visibility(vis_input, vis_weights, vis_output), fuse_pools=not no_fuse_pools)
        click.echo(f"compiled into {out}/ ({out}/segments/NN) in {time.time() - t:.1f} s")
        return
    api.compile(model, out, calibration, cfg, log=_log,
                pack_outputs=not no_pack_outputs, optimize=optimize,
                visibility=Visibility(vis_input, vis_weights, vis_output), strands=strands,
                fuse_pools=not no_fuse_pools)
    click.echo(f"compiled into {out}/ in {time.time() - t:.1f} s")


@main.command("run")
@BUILD
@click.option("--input", "-i", "input_", required=True, type=click.Path(dir_okay=False),
              help="Float input (.npy, or .json: nested list or {\"input_data\": [[...]]}).")
@_guard
def run_cmd(build, input_):
    """Run the integer reference runtime and compare with onnxruntime."""
    from . import api
    r = api.run(build, input_, log=_log)
    click.echo(f"integer output:     {r.q_outputs}")
    click.echo(f"dequantized output: {_fmt(r.outputs)}")
    if r.reference is not None:
        click.echo(f"onnxruntime float:  {_fmt(r.reference)}")
        click.echo(f"max |difference|:   {r.max_abs_diff:.6g}  ({r.max_diff_lsb:.2f} LSB of the output before "
                   "post-processing)")
        click.echo(f"argmax:             {max(range(len(r.outputs)), key=r.outputs.__getitem__)} "
                   f"(onnxruntime: {max(range(len(r.reference)), key=r.reference.__getitem__)})")


def _fmt(v):
    return "[" + ", ".join(f"{x:.5g}" for x in v) + "]"


@main.command("inspect")
@BUILD
@click.option("--samples", type=click.Path(dir_okay=False),
              help="Float inputs (.npy/.npz/.json) for the error column; default: the calibration file.")
@click.option("--max-samples", default=64, show_default=True, help="Use at most this many samples.")
@click.option("--png", type=click.Path(dir_okay=False), help="Bar chart path (default BUILD/inspect.png).")
@click.option("--no-reference", is_flag=True, help="Skip the onnxruntime comparison.")
@_guard
def inspect_cmd(build, samples, max_samples, png, no_reference):
    """Per-node table: op, shapes, bits, constraints, max error vs onnxruntime; PNG chart."""
    import json as _json
    from pathlib import Path
    from . import inspect_build as ib
    rows, summary = ib.inspect(build, samples, max_samples, reference=not no_reference)
    click.echo(ib.table(rows, summary))
    if summary.get("samples"):
        click.echo(f"\nmax error: dequantized integer output vs onnxruntime float, over {summary['samples']}")
    (Path(build) / "inspect.json").write_text(_json.dumps(ib.to_json(rows, summary), indent=2))
    out = ib.chart(rows, summary, Path(png) if png else Path(build) / "inspect.png")
    click.echo(f"chart: {out}   table: {Path(build) / 'inspect.json'}")


class _DefaultGroup(click.Group):
    """`zkml setup DIR` runs the default subcommand; `zkml setup contribute DIR` the named one."""

    def parse_args(self, ctx, args):
        if not args or (args[0] not in self.commands and args[0] not in ("-h", "--help")):
            args = ["keys", *args]
        return super().parse_args(ctx, args)


@main.group("setup", cls=_DefaultGroup)
def setup_group():
    """Groth16 setup. `zkml setup DIR` makes keys; `contribute`, `beacon` and `verify` run a ceremony."""


@setup_group.command("keys")
@BUILD
@click.option("--ptau", type=click.Path(dir_okay=False),
              help="Prepared powers of tau from a public ceremony (production). Default: development keys.")
@click.option("--dev-method", type=click.Choice(["auto", "direct", "ptau"]), default="auto", show_default=True,
              help="Development keys: direct (no powers of tau) or through a cached local powers of tau.")
@click.option("--no-verify-ptau", is_flag=True, help="Skip `snarkjs powersoftau verify` of --ptau (slow on big files).")
@_guard
def setup_cmd(build, ptau, dev_method, no_verify_ptau):
    """Make keys (development by default: INSECURE for production)."""
    from . import api
    meta = api.setup(build, ptau, log=_log, dev_method=dev_method, verify_ptau=not no_verify_ptau)
    click.echo(f"setup: {meta['kind']}")
    if meta.get("contributions"):
        click.echo(f"phase-2 contributions: {', '.join(meta['contributions'])}")
    click.echo(f"setup time: {meta['seconds']} s  (keys in {build}/main.zkey, {build}/verification_key.json)")


@setup_group.command("contribute")
@BUILD
@click.option("--name", required=True, help="Who contributes (recorded in the zkey).")
@click.option("--entropy", help="Extra entropy text (default: 32 random bytes from the OS).")
@_guard
def contribute_cmd(build, name, entropy):
    """Add a phase-2 contribution to a production setup."""
    from . import groth16
    meta = groth16.contribute(build, name, entropy, log=_log)
    click.echo(f"contributions so far: {', '.join(meta['contributions'])}")


@setup_group.command("beacon")
@BUILD
@click.option("--hash", "beacon_hash", required=True, help="Public random beacon, hex (e.g. a future block hash).")
@click.option("--iterations", default=10, show_default=True, help="log2 of the beacon's hash iterations.")
@_guard
def beacon_cmd(build, beacon_hash, iterations):
    """Finish a production ceremony with a public random beacon."""
    from . import groth16
    meta = groth16.beacon(build, beacon_hash, iterations, log=_log)
    click.echo(f"contributions: {', '.join(meta['contributions'])}")


@setup_group.command("verify")
@BUILD
@click.option("--ptau", required=True, type=click.Path(dir_okay=False), help="The ceremony's powers of tau.")
@_guard
def setup_verify_cmd(build, ptau):
    """Check that main.zkey derives from main.r1cs and the ptau (snarkjs zkey verify)."""
    from . import groth16
    click.echo(groth16.verify_setup(build, ptau, log=_log))
    click.echo("setup verified: the keys derive from this circuit and powers of tau")


@main.command("prove")
@BUILD
@click.option("--input", "-i", "inputs", required=True, multiple=True, type=click.Path(dir_okay=False),
              help="Float input; repeat to prove several inputs with the key loaded once.")
@click.option("--ptau", type=click.Path(dir_okay=False), help="Used if setup has to run first.")
@click.option("--prover", type=click.Choice(["auto", "arkworks", "snarkjs"]), default="auto", show_default=True,
              help="auto: arkworks (groth16py) when installed, else snarkjs.")
@click.option("--ray", "ray_address", is_flag=False, flag_value="local", default=None, metavar="[ADDRESS]",
              help="Sliced build: prove the segments as Ray tasks, on a local Ray instance (no ADDRESS) or the "
                   "cluster at ADDRESS. Without it the segments are proven one after another.")
@click.option("--workers", type=click.IntRange(min=1), help="CPUs of the local Ray instance (default: all).")
@_guard
def prove_cmd(build, inputs, ptau, prover, ray_address, workers):
    """Compute the witness (checked against the runtime) and a Groth16 proof."""
    from . import api, slicing
    if slicing.is_sliced(build):
        if len(inputs) != 1:
            raise ZkmlError("a sliced build proves one --input at a time")
        r = slicing.prove(build, inputs[0], ray=ray_address, num_cpus=workers, ptau=ptau, prover=prover, log=_log)
        click.echo(f"{len(r.segments)} segment proofs in {r.seconds} s ({r.ray or 'in-process'}); outputs equal the "
                   f"reference runtime: {_short(r.outputs)}  -> {build}/segments/NN/proof.json")
        return
    if ray_address is not None:
        raise ZkmlError(f"--ray proves the segments of a sliced build; {build} is not one "
                        "(compile with --slices N or --max-constraints K)")
    results = api.prove_many(build, list(inputs), ptau, prover, log=_log)
    for r in results:
        s = r["seconds"]
        if "setup" in s:
            click.echo(f"setup time: {s['setup']} s")
        click.echo(f"{r['input']}: witness {s['witness']} s (outputs equal the reference runtime: {r['outputs']})")
        click.echo(f"prove time: {s['prove']} s with {r['prover']}  -> {r['dir']}/proof.json, {r['dir']}/public.json")


@main.command("verify")
@BUILD
@click.option("--proof", type=click.Path(dir_okay=False), help="Default: BUILD/proof.json")
@click.option("--public", type=click.Path(dir_okay=False), help="Default: BUILD/public.json")
@click.option("--vk", type=click.Path(dir_okay=False), help="Default: BUILD/verification_key.json")
@click.option("--outputs", "outputs_file", type=click.Path(dir_okay=False),
              help="Hashed outputs: the claimed integer outputs (JSON list) to check against the proven "
                   "commitment. Default: the outputs of prove.json beside the proof.")
@click.option("--input-commitment", help="Hashed input: the published commitment the proof must match.")
@_guard
def verify_cmd(build, proof, public, vk, outputs_file, input_commitment):
    """Verify the proof with snarkjs and with the independent Python verifier; exit 1 if invalid."""
    import json
    from . import api
    from .errors import InputError
    claimed = None
    if outputs_file:
        try:
            claimed = json.loads(open(outputs_file).read())
        except (OSError, ValueError) as e:
            raise InputError(f"{outputs_file}: not a readable JSON list of integers ({type(e).__name__})") from None
    if input_commitment is not None and not input_commitment.strip().isdigit():
        raise InputError("--input-commitment must be a decimal integer (as `zkml commit` prints it)")
    from . import slicing
    if slicing.is_sliced(build):
        if proof or public or vk:
            raise InputError("a sliced build is verified from its segment folders (no --proof/--public/--vk)")
        r = slicing.verify(build, claimed_outputs=claimed, input_commitment=input_commitment, log=_log)
        if not r.valid:
            click.echo(f"INVALID sliced proof: {r.reason}", err=True)
            sys.exit(1)
        for kind, c in (r.commitments or {}).items():
            click.echo(f"{kind} commitment (Poseidon): {c}")
        click.echo(f"valid: {len(r.segments)} segment proofs and their commitment chain; proven outputs: "
                   f"{_short(r.outputs) if r.outputs is not None else None}")
        return
    r = api.verify(build, proof, public, vk, log=_log, claimed_outputs=claimed, input_commitment=input_commitment)
    fmt = lambda v: "n/a" if v is None else str(v).lower()  # noqa: E731
    click.echo(f"snarkjs: {fmt(r.snarkjs)}")
    click.echo(f"python verifier: {fmt(r.python)}")
    if not r.valid:
        click.echo(f"INVALID proof: {r.reason}", err=True)
        sys.exit(1)
    for kind, c in (r.commitments or {}).items():
        click.echo(f"{kind} commitment (Poseidon): {c}")
    click.echo(f"valid; proven outputs: {r.outputs}")


@main.command("commit")
@BUILD
@click.option("--input", "-i", "input_", type=click.Path(dir_okay=False),
              help="Also the commitment of this float input (for a build compiled with --input hashed).")
@_guard
def commit_cmd(build, input_):
    """Print the Poseidon commitments to publish: the weights' (--weights hashed; also written to
    BUILD/commitments.json) and an input's (--input hashed)."""
    from . import api
    res = api.commitments(build, input_, log=_log)
    if not res:
        click.echo("nothing is committed by hash in this build (see `zkml compile --input/--weights/--output`)")
    for kind, c in res.items():
        click.echo(f"{kind} commitment (Poseidon): {c}")


@main.command("deploy")
@BUILD
@click.option("--rpc", help="JSON-RPC URL of a node (default: embedded py-evm chain).")
@click.option("--private-key", envvar="ZKML_PRIVATE_KEY", metavar="HEX",
              help="Sign transactions locally with this key (or set ZKML_PRIVATE_KEY). Default: the node's "
                   "first unlocked account.")
@click.option("--from", "sender", metavar="ADDRESS", help="Send from this unlocked account of the node.")
@click.option("--gas-budget", default=16_000_000, show_default=True, type=click.IntRange(min=1),
              help="Most gas any one transaction may use (EIP-7825 caps transactions at 16,777,216).")
@click.option("--mint", is_flag=True,
              help="Also deploy the ERC-721 consumer, mint a token for the proven output and read it back.")
@click.option("--poseidon", "poseidon", metavar="ADDRESS",
              help="Hashed outputs: reuse the Poseidon(16) contract an earlier `zkml deploy` left at ADDRESS on "
                   "this chain (~24M gas saved) instead of deploying another; its code and tables are checked first.")
@_guard
def deploy_cmd(build, rpc, private_key, sender, gas_budget, mint, poseidon):
    """Plan, deploy and run the on-chain verification (split across contracts and transactions
    when EIP-170 or the gas budget demands); addresses and ABIs go to BUILD/deployment.json.
    A sliced build gets a verifier per segment and the chain contract (docs/SLICING.md)."""
    from . import api, slicing
    if slicing.is_sliced(build):
        from . import evm, slicing_evm
        if mint or poseidon:
            raise ZkmlError(f"{'--mint' if mint else '--poseidon'} is not available for a sliced build yet")
        w3 = evm.connect(rpc, private_key=private_key)
        r = slicing_evm.verify_chain(build, w3, sender=sender, log=_log)
        click.echo(f"chain: {r.chain}; ZkmlChainVerifier at {r.address} (deploy gas {r.deploy_gas:,} in total)")
        click.echo(f"on-chain chain verification: {str(r.valid).lower()}; record: {build}/deployment.json")
        if not r.valid:
            click.echo(f"rejected: {r.reason}", err=True)
            sys.exit(1)
        return
    r = api.deploy(build, rpc=rpc, log=_log, private_key=private_key, sender=sender, gas_budget=gas_budget,
                   consumer=mint, **({"poseidon": poseidon} if poseidon else {}))
    click.echo(f"chain: {r.chain}")
    for c in r.contracts:
        click.echo(f"{c['name']} at {c['address']}: {c['code_size']} bytes of code, deploy gas {c['deploy_gas']}")
    n_tx = sum(1 for t in r.transactions if not t["what"].startswith("deploy") and t["what"] != "mint")
    what = "verifyProof" if r.mode == "single" else "verification"
    proof_ok = r.valid or r.hashed is not None      # the hashed-output check runs only after a valid proof
    click.echo(f"on-chain {what}: {str(proof_ok).lower()} (gas used {r.verify_gas} in {n_tx} transaction"
               f"{'s' if n_tx != 1 else ''}, budget {r.gas_budget} each)")
    if r.hashed:
        h = r.hashed
        click.echo(f"on-chain verifyWithOutputs (the outputs of prove.json as calldata, {len(h['words'])} words, "
                   f"against the output digest): {str(h['valid']).lower()}"
                   + (f" (gas used {h['gas']})" if h["gas"] is not None else " (reverted)"))
    if r.reason:
        click.echo(f"rejected: {r.reason}", err=True)
    if r.outputs is not None:
        click.echo(f"on-chain unpackOutputs: {_short(r.outputs)}")
    if r.consumer:
        c = r.consumer
        click.echo(f"ZkmlOutputNFT at {c['address']}: token {c['token_id']} minted (deploy gas {c['deploy_gas']}, "
                   f"mint gas {c['mint_gas']}); outputs read back: {_short(c['outputs'])}")
    click.echo(f"deployment record: {build}/deployment.json")
    if not r.valid:
        sys.exit(1)


@main.command("bench")
@click.argument("models", nargs=-1)
@click.option("-o", "--out", default="build/bench", show_default=True, type=click.Path(file_okay=False),
              help="Results folder: bench.md, bench.json, bench.png (scaling.* with --scaling).")
@click.option("--ezkl/--no-ezkl", "use_ezkl", default=None,
              help="Run EZKL beside zkml (default: when the ezkl package is installed, pip install 'zkml[bench]').")
@click.option("--target", "targets", multiple=True, type=click.Choice(["resources", "accuracy"]),
              help="EZKL calibrate_settings targets (default: both).")
@click.option("--scaling", is_flag=True, help="MLP and CNN families at growing width instead, with fitted growth.")
@click.option("--samples", default=8, show_default=True, type=click.IntRange(1, 450),
              help="Samples for the accuracy columns (max |error| and argmax agreement with onnxruntime).")
@click.option("--timeout", default=900, show_default=True, type=click.IntRange(10),
              help="Seconds per step before it is stopped.")
@click.option("--max-mem-gib", default=12.0, show_default=True, type=click.FloatRange(0.5),
              help="Memory per step (process tree) before it is stopped.")
@click.option("--max-logrows", default=20, show_default=True, type=click.IntRange(10, 26),
              help="EZKL models calibrated to more rows than 2^N are skipped.")
@_guard
def bench_cmd(models, out, use_ezkl, targets, scaling, samples, timeout, max_mem_gib, max_logrows):
    """Benchmark zkml (and EZKL) on MODELS: digits, lenet, lenet_qdq, shared model names or .onnx
    paths (default: all of them). Prints the markdown table and the ratios."""
    from pathlib import Path
    from . import bench
    out_p = Path(out)
    lim = bench.Limits(timeout, max_mem_gib * 1024, max_logrows)
    cmd = "zkml bench " + " ".join(sys.argv[2:])
    if scaling:
        rows = bench.bench(bench.scaling_models(out_p / "scaling" / "models"), out_p / "scaling", ezkl=use_ezkl,
                           targets=tuple(targets) or ("resources",), lim=lim, log=_log)
        (out_p / "scaling.md").write_text(f"Command: `{cmd}`\n\n{bench.scaling_report(rows)}\n")
        bench.scaling_chart(rows, out_p / "scaling.png")
        click.echo(bench.scaling_report(rows))
        click.echo(f"-> {out_p}/scaling.md, {out_p}/scaling.png")
        return
    rows = bench.bench(bench.default_models(list(models) or None, n_samples=samples), out_p, ezkl=use_ezkl,
                       targets=tuple(targets) or ("resources", "accuracy"), lim=lim, log=_log)
    click.echo(bench.write_report(rows, out_p, cmd).read_text())
    click.echo(f"-> {out_p}/bench.md, {out_p}/bench.json, {out_p}/bench.png")


def _short(values: list, n: int = 32) -> str:
    return str(values) if len(values) <= n else f"{str(values[:n])[:-1]}, ... ({len(values)} values)]"


if __name__ == "__main__":
    main()
