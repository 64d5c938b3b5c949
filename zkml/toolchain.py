"""The pinned JavaScript toolchain (circom2, snarkjs, solcjs, anvil) from node_modules.

Every external command goes through `run()`, which turns a failure into a ToolError
carrying the command line and the tail of stderr.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .errors import ToolError, ZkmlError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CIRCUITS_DIR = PROJECT_ROOT / "circuits"
CONTRACTS_DIR = PROJECT_ROOT / "contracts"


def node_modules() -> Path:
    env = os.environ.get("ZKML_NODE_MODULES")
    nm = Path(env) if env else PROJECT_ROOT / "node_modules"
    if not (nm / "snarkjs").is_dir():
        raise ZkmlError(
            f"the JavaScript toolchain is missing ({nm}); run `npm ci` in {PROJECT_ROOT} "
            "(or set ZKML_NODE_MODULES)")
    return nm


def _bin(name: str) -> Path:
    p = node_modules() / ".bin" / name
    if not p.exists():
        raise ZkmlError(f"{name} not found in {p.parent}; run `npm ci` in {PROJECT_ROOT}")
    return p


def node() -> str:
    n = shutil.which("node")
    if not n:
        raise ZkmlError("Node.js (`node`) is not on PATH; install Node.js 18 or newer")
    return n


def run(cmd: list, *, cwd: Path | str | None = None, hint: str = "", timeout: float | None = None,
        env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [str(c) for c in cmd]
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})})
    except FileNotFoundError as e:
        raise ToolError(cmd, 127, str(e), hint) from None
    except subprocess.TimeoutExpired:
        raise ToolError(cmd, -1, f"timed out after {timeout} s", hint) from None
    if proc.returncode != 0:
        # stderr last: ToolError keeps the last lines, and a tool's error message is on stderr
        raise ToolError(cmd, proc.returncode, (proc.stdout or "")[-2000:] + "\n" + (proc.stderr or ""), hint)
    return proc


def snarkjs(*args, cwd=None, hint: str = "", timeout=None) -> subprocess.CompletedProcess:
    """Run snarkjs through node with a larger heap (big zkeys need it)."""
    cli = node_modules() / "snarkjs" / "build" / "cli.cjs"
    return run([node(), "--max-old-space-size=16384", cli, *args], cwd=cwd, hint=hint,
               timeout=timeout)


def circom(source: Path, out_dir: Path, *, extra_libs: list[Path] = (), flags: list[str] = (),
           hint: str = "") -> subprocess.CompletedProcess:
    """Compile a circom file with circom2 (WebAssembly).

    circom2 can only open files below its working directory, so it runs from the
    deepest folder that holds the source, the output folder, circuits/ and node_modules,
    with every path given relative to it.
    """
    nm = node_modules()
    source, out_dir = Path(source).resolve(), Path(out_dir).resolve()
    libs = [CIRCUITS_DIR, nm, *[Path(p).resolve() for p in extra_libs]]
    base = Path(os.path.commonpath([source, out_dir, *libs]))
    rel = lambda p: os.path.relpath(p, base)  # noqa: E731
    cmd = [_bin("circom2"), rel(source), "-o", rel(out_dir), *flags]
    for lib in libs:
        cmd += ["-l", rel(lib)]
    return run(cmd, cwd=base, hint=hint)


def solcjs_standard_json(input_json: str) -> str:
    """Run solcjs --standard-json; strip the warning line it prints before the JSON.

    Input and output go through temporary files, not pipes: solc.js reads stdin with
    readFileSync (EAGAIN on a pipe once the input exceeds its ~64 KB buffer) and calls
    process.exit right after console.log (output to a pipe is cut at ~64 KB).
    """
    cmd = [node(), node_modules() / "solc" / "solc.js", "--standard-json"]
    with tempfile.TemporaryFile("w+", encoding="utf-8") as fin, \
            tempfile.TemporaryFile("w+", encoding="utf-8") as fout:
        fin.write(input_json)
        fin.seek(0)
        proc = subprocess.run([str(c) for c in cmd], stdin=fin, stdout=fout, stderr=subprocess.PIPE,
                              text=True)
        fout.seek(0)
        out = fout.read()
    start = out.find("{")
    if proc.returncode != 0 or start < 0:
        raise ToolError(cmd, proc.returncode, proc.stderr + out)
    return out[start:]


def anvil_path() -> Path:
    p = node_modules() / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
    if not p.exists():
        raise ZkmlError(f"anvil not found at {p}; run `npm ci` in {PROJECT_ROOT}")
    return p
