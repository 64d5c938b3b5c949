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
            log(f"  preparing phase 2 (the slow step: ~1 min at 2^12, ~9 min at 2^14) ...")
            toolchain.snarkjs("powersoftau", "prepare", "phase2", tmp / "1.ptau", tmp / "final.ptau")
            os.replace(tmp / "final.ptau", final)
        finally:
            for f in tmp.glob("*"):
                f.unlink()
            tmp.rmdir()
        log(f"  done in {time.time() - t0:.1f} s: {final}")
    return final


def setup(build: Path, ptau: Path | None = None, log: Log = lambda s: None) -> dict:
    """Groth16 keys for build/main.r1cs: main.zkey, verification_key.json, setup.json."""
    build = Path(build)
    r1cs = build / "main.r1cs"
    if not r1cs.exists():
        raise BuildError(f"{r1cs} not found: run `zkml compile` first")
    info = r1cs_info(r1cs)
    need = needed_power(info)
    if ptau is not None:
        ptau = Path(ptau)
        power, prepared = ptau_power(ptau)
        if not prepared:
            raise ZkmlError(f"{ptau} is not prepared for phase 2; run `snarkjs powersoftau prepare phase2` "
                            "on it or use a prepared file from a public ceremony")
        if power < need:
            raise ZkmlError(f"{ptau} holds 2^{power} powers; the circuit needs 2^{need}")
        kind, insecure = f"production: powers of tau {ptau.name} + one phase-2 contribution", False
    else:
        ptau = dev_ptau(need, log)
        kind, insecure = "development (INSECURE: local powers of tau and keys; not for production)", True
    t0 = time.time()
    log(f"groth16 setup: {info['constraints']} constraints, domain 2^{need}, {kind}")
    z0, zkey = build / "main_0000.zkey", build / "main.zkey"
    toolchain.snarkjs("groth16", "setup", r1cs, ptau, z0)
    if not z0.exists() or z0.stat().st_size == 0:
        raise ZkmlError(f"snarkjs wrote an empty zkey from {ptau}: the ptau is unprepared or too small")
    toolchain.snarkjs("zkey", "contribute", z0, zkey, "-name=zkml phase-2 contribution",
                      f"-e={secrets.token_hex(32)}")
    z0.unlink()
    if not zkey.exists() or zkey.stat().st_size == 0:
        raise ZkmlError("snarkjs wrote an empty zkey after the phase-2 contribution")
    toolchain.snarkjs("zkey", "export", "verificationkey", zkey, build / "verification_key.json")
    meta = dict(kind=kind, insecure=insecure, ptau=str(ptau), power=need, seconds=round(time.time() - t0, 2),
                constraints=info["constraints"])
    (build / "setup.json").write_text(json.dumps(meta, indent=2))
    return meta


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
