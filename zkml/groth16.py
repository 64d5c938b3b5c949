"""Groth16 through snarkjs: development powers of tau (cached), circuit setup with a phase-2
contribution, proving and verification.

A development powers of tau is made locally the first time a size is needed and cached
per size in ~/.cache/zkml/ptau (or $ZKML_CACHE/ptau); it is never remade when present.
`--ptau FILE` uses a prepared file from a public ceremony instead. Development keys are
INSECURE: whoever ran the setup could forge proofs; the tool says so wherever keys show.
"""
from __future__ import annotations

import fcntl
import json
import math
import os
import secrets
import shutil
import struct
import time
from pathlib import Path
from typing import Callable

from . import binfile, toolchain
from .errors import BuildError, ZkmlError

Log = Callable[[str], None]
MIN_DEV_POWER = 10


def cache_dir() -> Path:
    base = Path(os.environ.get("ZKML_CACHE", Path.home() / ".cache" / "zkml"))
    d = base / "ptau"
    d.mkdir(parents=True, exist_ok=True)
    return d


def r1cs_info(path: Path) -> dict:
    """Header of a circom .r1cs file: constraints, wires, public outputs/inputs, private inputs."""
    data = Path(path).read_bytes()
    secs = binfile.sections(data, b"r1cs", str(path))
    if 1 in secs:
        pos = secs[1][0]
        n8 = struct.unpack_from("<I", data, pos)[0]
        p = pos + 4 + n8
        nwires, npubout, npubin, nprvin = struct.unpack_from("<IIII", data, p)
        _nlabels, ncons = struct.unpack_from("<QI", data, p + 16)
        return dict(constraints=ncons, wires=nwires, public_outputs=npubout,
                    public_inputs=npubin, private_inputs=nprvin)
    raise BuildError(f"{path}: no header section")


def ptau_power(path: Path) -> tuple[int, bool]:
    """(power, prepared for phase 2?) of a .ptau file, read from its header and sections."""
    data = Path(path).read_bytes()[:1 << 16]
    size = Path(path).stat().st_size
    if data[:4] != b"ptau":
        raise ZkmlError(f"{path} is not a powers-of-tau (.ptau) file")
    nsec = struct.unpack_from("<I", data, 8)[0]
    pos, power, ids = 12, None, set()
    with open(path, "rb") as f:
        for _ in range(nsec):
            f.seek(pos)
            sid, ssize = struct.unpack("<IQ", f.read(12))
            ids.add(sid)
            if sid == 1:
                n8 = struct.unpack("<I", f.read(4))[0]
                f.seek(pos + 12 + 4 + n8)
                power = struct.unpack("<I", f.read(4))[0]
            pos += 12 + ssize
            if pos > size:
                raise ZkmlError(f"{path} is truncated")
    if power is None:
        raise ZkmlError(f"{path}: no header section")
    return power, all(s in ids for s in (12, 13, 14, 15))


def needed_power(info: dict) -> int:
    n = info["constraints"] + info["public_inputs"] + info["public_outputs"] + 1
    return max(1, math.ceil(math.log2(n)))


def dev_ptau(power: int, log: Log = lambda s: None) -> Path:
    """A prepared development powers of tau of at least 2^power, cached per size."""
    power = max(power, MIN_DEV_POWER)
    d = cache_dir()
    for p in range(power, 29):
        f = d / f"dev_pot{p}_final.ptau"
        if f.exists() and f.stat().st_size > 0:
            return f
    final = d / f"dev_pot{power}_final.ptau"
    with open(d / f".lock{power}", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if final.exists() and final.stat().st_size > 0:
            return final
        log(f"making a development powers of tau 2^{power} (one time; cached in {d}) ...")
        t0 = time.time()
        tmp = d / f".tmp{power}_{os.getpid()}"
        tmp.mkdir(exist_ok=True)
        try:
            toolchain.snarkjs("powersoftau", "new", "bn128", power, tmp / "0.ptau")
            toolchain.snarkjs("powersoftau", "contribute", tmp / "0.ptau", tmp / "1.ptau",
                              "-name=zkml development (insecure)", f"-e={secrets.token_hex(32)}")
            log("  preparing phase 2 (the slow step: ~1 min at 2^12, ~9 min at 2^14) ...")
            toolchain.snarkjs("powersoftau", "prepare", "phase2", tmp / "1.ptau", tmp / "final.ptau")
            os.replace(tmp / "final.ptau", final)
        finally:
            for f in tmp.glob("*"):
                f.unlink()
            tmp.rmdir()
        log(f"  done in {time.time() - t0:.1f} s: {final}")
    return final


def _snarkjs_writes(out: Path, *args) -> None:
    """Run snarkjs and insist that it wrote `out`: snarkjs exits 0 after many errors."""
    Path(out).unlink(missing_ok=True)
    proc = toolchain.snarkjs(*args)
    if not Path(out).exists() or Path(out).stat().st_size == 0:
        msg = (proc.stdout + proc.stderr).strip().splitlines()
        raise ZkmlError(f"snarkjs {args[0]} {args[1]} wrote no {Path(out).name}: "
                        f"{msg[-1] if msg else 'no message'}")


DEV_KIND = "development (INSECURE: single-party keys, whoever ran the setup can forge proofs)"


def _finish(build: Path, zkey: Path, meta: dict) -> dict:
    if not zkey.exists() or zkey.stat().st_size == 0:
        raise ZkmlError(f"{zkey} is empty: snarkjs was given an unprepared or too small powers of tau")
    _snarkjs_writes(build / "verification_key.json", "zkey", "export", "verificationkey", zkey,
                    build / "verification_key.json")
    (build / "setup.json").write_text(json.dumps(meta, indent=2))
    return meta


def setup(build: Path, ptau: Path | None = None, log: Log = lambda s: None, *, verify_ptau: bool = True,
          dev_method: str = "auto") -> dict:
    """Groth16 keys for build/main.r1cs: main.zkey, verification_key.json, setup.json.

    Without `ptau`: development keys (INSECURE). dev_method "direct" computes them from fresh
    secrets with no powers of tau (zkml.devsetup); "ptau" uses snarkjs with a cached local
    powers of tau; "auto" takes direct when its library is available.
    With `ptau` (a prepared file from a public ceremony): the production path — the ptau is
    verified, snarkjs' circuit setup runs, and this machine makes the first phase-2
    contribution; `contribute`/`beacon` add more; `verify_setup` checks the chain.
    """
    build = Path(build)
    r1cs = build / "main.r1cs"
    if not r1cs.exists():
        raise BuildError(f"{r1cs} not found: run `zkml compile` first")
    info = r1cs_info(r1cs)
    need = needed_power(info)
    zkey = build / "main.zkey"
    for stale in (zkey, build / "verification_key.json", build / "setup.json"):
        stale.unlink(missing_ok=True)
    t0 = time.time()
    if ptau is None:
        if dev_method not in ("auto", "direct", "ptau"):
            raise ZkmlError(f"unknown development setup method {dev_method!r}")
        if dev_method in ("auto", "direct"):
            try:
                from . import devsetup
                devsetup.mcl()  # loads MCL, selects BN254 and checks it against py_ecc
            except (ImportError, AttributeError, ZkmlError) as e:
                if dev_method == "direct":
                    raise ZkmlError(f"direct development setup unavailable: {e}") from None
                devsetup = None
            if devsetup is not None:
                log(f"development setup (direct, no powers of tau): {info['constraints']} constraints, "
                    f"domain 2^{need} — INSECURE, for development only")
                devsetup.dev_setup(r1cs, zkey, log=log)
                return _finish(build, zkey, dict(kind=DEV_KIND, method="direct", insecure=True, ptau=None,
                                                 power=need, constraints=info["constraints"],
                                                 seconds=round(time.time() - t0, 2), contributions=[]))
        ptau = dev_ptau(need, log)
        log(f"development setup (snarkjs, local powers of tau): {info['constraints']} constraints, "
            f"domain 2^{need} — INSECURE, for development only")
        z0 = build / "main_0000.zkey"
        _snarkjs_writes(z0, "groth16", "setup", r1cs, ptau, z0)
        _snarkjs_writes(zkey, "zkey", "contribute", z0, zkey, "-name=zkml development contribution",
                        f"-e={secrets.token_hex(32)}")
        z0.unlink()
        return _finish(build, zkey, dict(kind=DEV_KIND, method="ptau", insecure=True, ptau=str(ptau), power=need,
                                         constraints=info["constraints"], seconds=round(time.time() - t0, 2),
                                         contributions=["zkml development contribution"]))
    ptau = Path(ptau)
    power, prepared = ptau_power(ptau)
    if not prepared:
        raise ZkmlError(f"{ptau} is not prepared for phase 2; run `snarkjs powersoftau prepare phase2` "
                        "on it or use a prepared file from a public ceremony")
    if power < need:
        raise ZkmlError(f"{ptau} holds 2^{power} powers; the circuit needs 2^{need}")
    if verify_ptau:
        log(f"verifying the powers of tau {ptau.name} (snarkjs powersoftau verify) ...")
        out = toolchain.snarkjs("powersoftau", "verify", ptau, hint=f"{ptau} does not verify").stdout
        if "Powers of Tau Ok" not in out:
            raise ZkmlError(f"snarkjs powersoftau verify did not accept {ptau}")
    log(f"production setup: {info['constraints']} constraints, domain 2^{need}, ptau {ptau.name} (2^{power})")
    ceremony = build / "ceremony"
    if ceremony.exists():
        shutil.rmtree(ceremony)
    ceremony.mkdir()
    _snarkjs_writes(ceremony / "0000.zkey", "groth16", "setup", r1cs, ptau, ceremony / "0000.zkey")
    meta = dict(kind=f"production: powers of tau {ptau.name}, phase-2 contributions below", method="ceremony",
                insecure=False, ptau=str(ptau), power=need, constraints=info["constraints"],
                contributions=[], seconds=None)
    (build / "setup.json").write_text(json.dumps(meta, indent=2))
    shutil.copyfile(ceremony / "0000.zkey", zkey)
    meta = contribute(build, "zkml setup (first contribution)", log=log)
    meta["seconds"] = round(time.time() - t0, 2)
    (build / "setup.json").write_text(json.dumps(meta, indent=2))
    return meta


def _ceremony(build: Path) -> tuple[dict, Path, int]:
    try:
        meta = json.loads((build / "setup.json").read_text()) if (build / "setup.json").exists() else None
    except (OSError, ValueError, RecursionError):
        raise BuildError(f"{build / 'setup.json'} is unreadable; run `zkml setup DIR --ptau FILE` again") from None
    if not isinstance(meta, dict) or meta.get("method") != "ceremony" or \
            not isinstance(meta.get("contributions"), list):
        raise ZkmlError("phase-2 contributions need a production setup: run `zkml setup DIR --ptau FILE` first "
                        "(development keys are single-party and cannot be made secure)")
    ceremony = build / "ceremony"
    n = len(sorted(ceremony.glob("*.zkey")))
    return meta, ceremony, n


def contribute(build: Path, name: str, entropy: str | None = None, log: Log = lambda s: None) -> dict:
    """Add a phase-2 contribution (fresh randomness unless `entropy` is given)."""
    build = Path(build)
    meta, ceremony, n = _ceremony(build)
    new = ceremony / f"{n:04d}.zkey"
    log(f"phase-2 contribution #{len(meta['contributions']) + 1} by '{name}' ...")
    _snarkjs_writes(new, "zkey", "contribute", ceremony / f"{n - 1:04d}.zkey", new, f"-name={name}",
                    f"-e={entropy or secrets.token_hex(32)}")
    shutil.copyfile(new, build / "main.zkey")
    meta["contributions"].append(name)
    return _finish(build, build / "main.zkey", meta)


def beacon(build: Path, beacon_hash: str, iterations: int = 10, log: Log = lambda s: None) -> dict:
    """Finish the ceremony with a public random beacon (e.g. a future block hash)."""
    build = Path(build)
    meta, ceremony, n = _ceremony(build)
    try:
        bytes.fromhex(beacon_hash)
    except ValueError:
        raise ZkmlError("the beacon hash must be hexadecimal") from None
    if not 10 <= iterations <= 63:
        raise ZkmlError("the beacon's iterations exponent must be between 10 and 63")
    new = ceremony / f"{n:04d}.zkey"
    log(f"applying the beacon {beacon_hash[:16]}... (2^{iterations} iterations)")
    _snarkjs_writes(new, "zkey", "beacon", ceremony / f"{n - 1:04d}.zkey", new, beacon_hash, str(iterations),
                    "-n=zkml final beacon")
    shutil.copyfile(new, build / "main.zkey")
    meta["contributions"].append(f"beacon {beacon_hash} 2^{iterations}")
    return _finish(build, build / "main.zkey", meta)


def verify_setup(build: Path, ptau: Path, log: Log = lambda s: None) -> str:
    """snarkjs zkey verify: main.zkey derives from main.r1cs and the ptau through its contributions."""
    build = Path(build)
    proc = toolchain.snarkjs("zkey", "verify", build / "main.r1cs", ptau, build / "main.zkey",
                             hint="the zkey does not derive from this circuit and powers of tau")
    out = proc.stdout + proc.stderr
    if "ZKey Ok!" not in out:
        raise ZkmlError("snarkjs zkey verify did not accept the keys:\n" + out[-800:])
    return "\n".join(l for l in out.splitlines() if "contribution" in l.lower() or "Ok" in l)


def snarkjs_verify(vk: Path, public: Path, proof: Path) -> bool:
    """snarkjs groth16 verify; True on 'OK', False on an invalid proof."""
    cli = toolchain.node_modules() / "snarkjs" / "build" / "cli.cjs"
    import subprocess
    proc = subprocess.run([toolchain.node(), str(cli), "groth16", "verify", str(vk), str(public), str(proof)],
                          capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    if proc.returncode == 0 and "OK" in out:
        return True
    if "Invalid proof" in out:
        return False
    raise ZkmlError(f"snarkjs groth16 verify failed: {out.strip().splitlines()[-1] if out.strip() else proc.returncode}")
