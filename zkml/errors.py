"""Typed errors. Every failure a user can cause or meet is a ZkmlError subclass,
so the CLI can print one line and exit non-zero instead of a traceback."""
from __future__ import annotations


class ZkmlError(Exception):
    """Base class of every error zkml raises on purpose."""


class ModelError(ZkmlError):
    """The ONNX file cannot be read, checked or understood."""


class UnsupportedOpError(ModelError):
    def __init__(self, op: str, opset: int, node: str, detail: str = ""):
        self.op, self.opset, self.node = op, opset, node
        msg = f"unsupported operator {op} (opset {opset}) at node '{node}'"
        if detail:
            msg += f": {detail}"
        super().__init__(msg)


class BitWidthError(ZkmlError):
    """A value could reach the field size (or exceed what the circuit allows)."""

    def __init__(self, node: str, bits: int, limit: int, what: str = "value"):
        self.node, self.bits, self.limit = node, bits, limit
        super().__init__(
            f"node '{node}': {what} needs {bits} bits, more than the {limit} bits "
            f"the BN254 scalar field allows safely; reduce activation/weight bits or split the layer")


class InputError(ZkmlError):
    """A user-supplied input or calibration file is malformed or out of range."""


class BuildError(ZkmlError):
    """A build folder is missing files or holds inconsistent ones."""


class ToolError(ZkmlError):
    """An external tool (circom, snarkjs, solc, node) failed."""

    def __init__(self, cmd: list[str] | str, returncode: int, stderr: str, hint: str = ""):
        self.cmd = cmd if isinstance(cmd, str) else " ".join(str(c) for c in cmd)
        self.returncode = returncode
        tail = "\n".join(stderr.strip().splitlines()[-8:])
        msg = f"command failed (exit {returncode}): {self.cmd}"
        if hint:
            msg += f"\n  {hint}"
        if tail:
            msg += "\n  " + tail.replace("\n", "\n  ")
        super().__init__(msg)


class VerificationError(ZkmlError):
    """A proof did not verify (used where a boolean is not enough)."""
