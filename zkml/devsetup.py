"""Development Groth16 setup without a powers of tau: fresh toxic waste, keys computed directly.

`dev_setup(r1cs, zkey)` draws tau, alpha, beta, gamma and delta with `secrets`, evaluates the
circuit's QAP polynomials at tau, computes every proving/verification key point by a fixed-base
scalar multiplication on BN254 (Ethereum's alt_bn128, through MCL/`mclbn256`) and writes a
standard snarkjs `.zkey` that `snarkjs zkey export verificationkey`, `snarkjs groth16 prove`,
`snarkjs groth16 verify`, the Python verifier and the Solidity verifier accept. It replaces
`powersoftau new/contribute/prepare phase2` + `groth16 setup` + `zkey contribute` (about 21 min
of prepare alone at 2^16 constraints) by seconds.

INSECURE for production: the process that ran the setup knew the toxic waste and anybody who
obtains it can forge proofs. `snarkjs zkey verify` cannot check such a key (there is no ptau to
check it against) and reports a mismatch; that is expected for development keys.

What is written (snarkjs 0.7.6's format, read from its zkey_new.js / groth16_prove.js):

  n = domainSize = 2^power, power = ceil(log2(nConstraints + nPublic + 1)); omega = omega_n is
  ffjavascript's root of unity (5^((r-1)/2^power)); L_i(x) is the Lagrange basis of the n-domain,
  L_i(tau) = omega^i (tau^n - 1) / (n (tau - omega^i)). The nPublic + 1 constraints after the
  circuit's are the "input constraints" snarkjs adds (signal s = 0..nPublic in A, nothing in B, C).
    a_s = sum_c A[c][s] L_c(tau) (+ L_{nCons+s}(tau) for s <= nPublic), b_s and c_s likewise
    section 1  u32 1 (groth16)
    section 2  n8q, q, n8r, r, nVars, nPublic, domainSize, alpha1, beta1, beta2, gamma2, delta1, delta2
    section 4  u32 count, then (u32 matrix, u32 constraint, u32 signal, 32-byte value) for every A
               and B term in r1cs order, then the input constraints; value = coef * R^2 mod r
               (plain little endian; R = 2^256), which snarkjs' prover reads as Montgomery
    section 3  IC_s = (beta a_s + alpha b_s + c_s) / gamma * G1, s = 0..nPublic
    section 9  H_i = L'_{2i+1}(tau) / delta * G1, i < n, with L' the Lagrange basis of the
               2n-domain. snarkjs' prover evaluates a*b - c on the odd coset of the 2n-domain
               (where x^n - 1 is the constant -2) and does not divide by it; newZKey copies these
               odd entries from the ptau's Lagrange section 12.
    section 8  C_s = (beta a_s + alpha b_s + c_s) / delta * G1, s = nPublic+1..nVars-1
    section 5  A_s = a_s * G1;  section 6  B1_s = b_s * G1;  section 7  B2_s = b_s * G2
    section 10 a 64-byte hash and u32 0 contributions. snarkjs stores there the blake2b "circuit
               hash" of the key before any contribution (checked by zkey verify, carried along by
               zkey contribute); a dev key has no such history, so we store blake2b-512 of
               sections 2..9 as written.
  G1 points are affine (x, y) and G2 points (x.c0, x.c1, y.c0, y.c1), each coordinate 32 bytes,
  little endian, Montgomery form (R = 2^256) -- exactly MCL's own memory layout once
  normalized; the point at infinity is all zeros. Sections appear in snarkjs' order.

Validated: with gamma = delta = 1, sections 1-9 equal byte for byte what `snarkjs groth16 setup`
writes from a ptau made from the same known tau/alpha/beta and prepared by snarkjs (test_devsetup;
the ptau must be larger than the circuit's power: for a ptau of exactly that power snarkjs derives
H from a 2n-domain block whose last power of tau it zeroes, an equally valid but different
section 9). delta != 1 divides C and H and gives delta1/delta2 as `zkey contribute` does; gamma
!= 1 divides IC (snarkjs keeps gamma = 1; Groth16 allows any). Random-secret keys are checked end
to end (snarkjs prove/verify, zkml.pyverify, the Solidity verifier on an EVM).

Speed: every point is a fixed-base multiplication by a window table (see `Mcl.fixed_base`),
~10 us per G1 and ~20 us per G2 point on one core (MCL's plain mul: ~43 / ~68 us), one thread per
core; the O(n + nnz) field arithmetic (Lagrange values, A/B/C at tau) uses Python integers.
"""
from __future__ import annotations

import ctypes
import gc
import hashlib
import math
import os
import secrets
import struct
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np

from . import binfile
from .errors import BuildError, ZkmlError

Log = Callable[[str], None]

#: BN254 scalar field order r and base field modulus q (Ethereum's alt_bn128)
R = 21888242871839275222246405745257275088548364400416034343698204186575808495617
Q = 21888242871839275222246405745257275088696311157297823662689037894645226208583
#: Montgomery factor of both fields in MCL and ffjavascript (4 x 64-bit limbs)
MONT_R = (1 << 256) % R
MONT_Q = (1 << 256) % Q
#: 2-adicity of r - 1 and ffjavascript's quadratic non-residue that generates the roots of unity
TWO_ADICITY = 28
NQR = 5
#: the largest domain this setup supports (the 2n-domain used for H must exist in F_r)
MAX_POWER = TWO_ADICITY - 1

#: MCL's curve id of Ethereum's BN254 ("BN_SNARK1"); mclbn256's default (0) is a different curve
MCL_BN_SNARK1 = 4
#: MCLBN_COMPILED_TIME_VAR for MCLBN_FP_UNIT_SIZE = MCLBN_FR_UNIT_SIZE = 4
MCL_COMPILED_TIME_VAR = 4 + 4 * 10

# Ethereum's generators (EIP-196/197), as in py_ecc.bn128
G1_GEN = (1, 2)
G2_GEN = ((10857046999023057135944570762232829481370756359578518086990519993285655852781,
           11559732032986387107991004021392285783925812861821192530917403151452391805634),
          (8495653923123431417604973247489272438418190587263600148770280649306958101930,
           4082367875863433681332203403145435568316851327593401208105741076214120093531))

G1_SIZE, G2_SIZE = 96, 192          # MCL projective structs (x, y, z)
G1_LEM, G2_LEM = 64, 128            # zkey affine points
KIND = "development (INSECURE: fresh local toxic waste, no powers of tau; not for production)"


# --------------------------------------------------------------------------- MCL
class Mcl:
    """MCL (from the `mclbn256` wheel) initialised on Ethereum's BN254 and checked against py_ecc.

    mclbn256 initialises MCL on its own default curve when imported; we re-initialise the shared
    library with BN_SNARK1. zkml uses mclbn256 nowhere else, but any other code in the same process
    that relies on mclbn256's default curve would be affected.
    """

    def __init__(self):
        try:
            import mclbn256.mclbn256 as m  # noqa: PLC0415 (optional, heavy import)
        except ImportError as e:
            raise ZkmlError(f"the development setup needs the MCL pairing library: pip install mclbn256 ({e})") \
                from None
        except OSError as e:
            raise ZkmlError(f"the MCL library of mclbn256 cannot be loaded on this platform ({e}); "
                            "use --ptau with a prepared powers of tau instead") from None
        lib = getattr(m, "lib", None)
        if lib is None or not hasattr(lib, "mclBn_init"):
            raise ZkmlError("mclbn256 does not expose the MCL library; pip install 'mclbn256>=1.3.5'")
        vp = ctypes.c_void_p
        sigs = {
            "mclBn_init": ([ctypes.c_int, ctypes.c_int], ctypes.c_int),
            "mclBn_getCurveType": ([], ctypes.c_int),
            "mclBn_getFieldOrder": ([ctypes.c_char_p, ctypes.c_size_t], ctypes.c_size_t),
            "mclBn_getCurveOrder": ([ctypes.c_char_p, ctypes.c_size_t], ctypes.c_size_t),
            "mclBnG1_mul": ([vp, vp, vp], None),
            "mclBnG2_mul": ([vp, vp, vp], None),
            "mclBnG1_normalize": ([vp, vp], None),
            "mclBnG2_normalize": ([vp, vp], None),
            "mclBnG1_add": ([vp, vp, vp], None),
            "mclBnG2_add": ([vp, vp, vp], None),
            "mclBn_G1EvaluatePolynomial": ([vp, vp, ctypes.c_size_t, vp], ctypes.c_int),
            "mclBn_G2EvaluatePolynomial": ([vp, vp, ctypes.c_size_t, vp], ctypes.c_int),
            "mclBnFr_setInt32": ([vp, ctypes.c_int], None),
            "mclBnG1_isValid": ([vp], ctypes.c_int),
            "mclBnG2_isValid": ([vp], ctypes.c_int),
        }
        for name, (args, res) in sigs.items():
            f = getattr(lib, name, None)
            if f is None:
                raise ZkmlError(f"the MCL library of mclbn256 lacks {name}; pip install 'mclbn256>=1.3.5'")
            f.argtypes, f.restype = args, res
        if lib.mclBn_init(MCL_BN_SNARK1, MCL_COMPILED_TIME_VAR) != 0:
            raise ZkmlError("MCL refused to initialise Ethereum's BN254 curve (BN_SNARK1)")
        self.lib = lib
        self._check_curve()
        self._tables: dict[tuple[int, int], np.ndarray] = {}
        self.fr_one = (ctypes.c_uint64 * 4)()
        lib.mclBnFr_setInt32(self.fr_one, 1)
        # generators in MCL memory (Montgomery, z = 1)
        self.g1 = (ctypes.c_uint64 * 12)()
        self.g2 = (ctypes.c_uint64 * 24)()
        ctypes.memmove(self.g1, g1_to_mcl(G1_GEN), G1_SIZE)
        ctypes.memmove(self.g2, g2_to_mcl(G2_GEN), G2_SIZE)
        if not lib.mclBnG1_isValid(self.g1) or not lib.mclBnG2_isValid(self.g2):
            raise ZkmlError("MCL rejects Ethereum's BN254 generators: wrong curve selected")

    def _check_curve(self):
        buf = ctypes.create_string_buffer(128)
        self.lib.mclBn_getFieldOrder(buf, 128)
        q = int(buf.value)
        self.lib.mclBn_getCurveOrder(buf, 128)
        r = int(buf.value)
        if (q, r) != (Q, R) or self.lib.mclBn_getCurveType() != MCL_BN_SNARK1:
            raise ZkmlError(f"MCL is not on Ethereum's BN254 (field order {q}, group order {r})")

    # ---------------------------------------------------------------- multiplications
    def g1_mul(self, k: int) -> bytes:
        """k * G1 as 64 bytes (affine x, y; Montgomery little endian; infinity = zeros)."""
        return self.mul_generic(1, bytearray((k % R).to_bytes(32, "little")))

    def g2_mul(self, k: int) -> bytes:
        """k * G2 as 128 bytes (affine x.c0, x.c1, y.c0, y.c1; Montgomery LE)."""
        return self.mul_generic(2, bytearray((k % R).to_bytes(32, "little")))

    def _run(self, work: Callable[[list[int]], None], ids: list[int], threads: int | None) -> None:
        """work(ids) split over one thread per core (ctypes releases the GIL inside MCL)."""
        threads = threads or _cores()
        if threads <= 1 or len(ids) < 256:
            work(ids)
            return
        step = -(-len(ids) // threads)
        with ThreadPoolExecutor(threads) as ex:
            list(ex.map(work, [ids[j:j + step] for j in range(0, len(ids), step)]))

    def mul_generic(self, group: int, scalars: bytearray, threads: int | None = None) -> bytes:
        """k_i * G for 32-byte little-endian scalars k_i < r: one MCL mul per point (reference
        path, ~45 us per G1 point; `fixed_base` computes the same 5-10x faster)."""
        count = len(scalars) // 32
        mont = bytearray(b"".join((int.from_bytes(scalars[32 * i:32 * i + 32], "little") * MONT_R % R)
                                  .to_bytes(32, "little") for i in range(count)))
        size, words, keep, base = self._shape(group)
        mul = self.lib.mclBnG1_mul if group == 1 else self.lib.mclBnG2_mul
        norm = self.lib.mclBnG1_normalize if group == 1 else self.lib.mclBnG2_normalize
        out = np.zeros((count, words), dtype=np.uint64)
        nonzero = np.flatnonzero(np.frombuffer(mont, dtype=np.uint64).reshape(count, 4).any(axis=1)).tolist()
        holder = (ctypes.c_char * len(mont)).from_buffer(mont)
        sa, oa, ba = ctypes.addressof(holder), out.ctypes.data, ctypes.addressof(base)

        def work(ids: list[int]) -> None:
            for i in ids:
                o = oa + size * i
                mul(o, ba, sa + 32 * i)
                norm(o, o)

        try:
            self._run(work, nonzero, threads)
        finally:
            ctypes.memset(sa, 0, len(mont))
            del holder
        return out[:, :keep // 8].tobytes()

    def _shape(self, group: int):
        return (G1_SIZE, 12, G1_LEM, self.g1) if group == 1 else (G2_SIZE, 24, G2_LEM, self.g2)

    @staticmethod
    def best_window(group: int, count: int, threads: int | None = None) -> int:
        """Window w minimising count*ceil(254/w)*add + ceil(254/w)*2^w*table-entry (measured costs)."""
        threads = threads or _cores()
        add, entry = (0.45, 1.0 + 2.3 / threads) if group == 1 else (0.75, 1.8 + 3.0 / threads)
        return min(range(4, 15), key=lambda w: -(-254 // w) * (count * add / threads + (1 << w) * entry))

    def table(self, group: int, w: int, threads: int | None = None) -> np.ndarray:
        """T[j, v] = v * 2^(w j) * G (v < 2^w, j < ceil(254/w)), normalized MCL structs; cached."""
        key = (group, w)
        if key in self._tables:
            return self._tables[key]
        size, words, keep, _ = self._shape(group)
        nw = -(-254 // w)
        add = self.lib.mclBnG1_add if group == 1 else self.lib.mclBnG2_add
        norm = self.lib.mclBnG1_normalize if group == 1 else self.lib.mclBnG2_normalize
        tab = np.zeros((nw, 1 << w, words), dtype=np.uint64)
        bases = self.mul_generic(group, bytearray(b"".join(
            (pow(2, w * j, R)).to_bytes(32, "little") for j in range(nw))))
        tab[:, 1, :keep // 8] = np.frombuffer(bases, dtype=np.uint64).reshape(nw, keep // 8)
        tab[:, 1, keep // 8:keep // 8 + 4] = np.frombuffer(MONT_Q.to_bytes(32, "little"), dtype=np.uint64)
        ta, rowb, entb = tab.ctypes.data, (1 << w) * size, size
        for j in range(nw):
            b1 = ta + j * rowb + entb
            prev = b1
            for v in range(2, 1 << w):
                cur = ta + j * rowb + v * entb
                add(cur, prev, b1)
                prev = cur

        def work(ids: list[int]) -> None:
            for i in ids:
                a = ta + i * entb
                norm(a, a)

        self._run(work, [j * (1 << w) + v for j in range(nw) for v in range(2, 1 << w)], threads)
        self._tables[key] = tab
        return tab

    def fixed_base(self, group: int, scalars: bytearray, w: int | None = None,
                   threads: int | None = None) -> bytes:
        """k_i * G for 32-byte little-endian scalars k_i < r (a zkey section, see module doc).

        Fixed-base comb: with w-bit windows k = sum_j d_j 2^(w j), k*G = sum_j T[j, d_j]; the
        table entries of one scalar are gathered into a contiguous array and summed by ONE call of
        MCL's G1/G2 EvaluatePolynomial at x = 1 (Horner: y = y*1 + c_j), so the loop runs in C
        with the GIL released; then the point is normalized to affine. Zero scalars give the
        point at infinity (all-zero bytes).
        """
        count = len(scalars) // 32
        if count == 0:
            return b""
        size, words, keep, _ = self._shape(group)
        w = w or self.best_window(group, count, threads)
        tab = self.table(group, w, threads)
        nw = tab.shape[0]
        flat = tab.reshape(nw << w, words)
        evalp = self.lib.mclBn_G1EvaluatePolynomial if group == 1 else self.lib.mclBn_G2EvaluatePolynomial
        norm = self.lib.mclBnG1_normalize if group == 1 else self.lib.mclBnG2_normalize
        one = ctypes.addressof(self.fr_one)
        limbs_all = np.frombuffer(scalars, dtype="<u8").reshape(count, 4)
        nonzero = np.flatnonzero(limbs_all.any(axis=1))
        out = np.zeros((count, words), dtype=np.uint64)
        oa = out.ctypes.data
        mask = np.uint64((1 << w) - 1)
        chunk = 2048

        def work(ids: list[int]) -> None:
            for lo in range(0, len(ids), chunk):
                sel = np.asarray(ids[lo:lo + chunk], dtype=np.int64)
                limbs = limbs_all[sel]
                digits = np.empty((len(sel), nw), dtype=np.uint64)
                tmp = np.empty(len(sel), dtype=np.uint64)
                for j in range(nw):                   # digit j = bits w*j .. w*j+w-1
                    li, sh = divmod(w * j, 64)
                    d = digits[:, j]
                    np.right_shift(limbs[:, li], np.uint64(sh), out=d)
                    if sh + w > 64 and li < 3:
                        np.left_shift(limbs[:, li + 1], np.uint64(64 - sh), out=tmp)
                        np.bitwise_or(d, tmp, out=d)
                    np.bitwise_and(d, mask, out=d)
                    d += np.uint64(j << w)            # row of window j in the flat table
                gathered = flat[digits]               # (k, nw, words), contiguous
                ga, stride = gathered.ctypes.data, nw * size
                for t, i in enumerate(sel.tolist()):
                    o = oa + size * i
                    evalp(o, ga + t * stride, nw, one)
                    norm(o, o)
                # the digits (and which table entries were gathered) reveal the secret scalars
                for arr in (limbs, digits, tmp, gathered):
                    arr[:] = 0

        self._run(work, nonzero.tolist(), threads)
        return out[:, :keep // 8].tobytes()


_MCL: Mcl | None = None


def mcl() -> Mcl:
    """The process-wide MCL instance, initialised once and checked against py_ecc (~0.1 s)."""
    global _MCL
    if _MCL is None:
        inst = Mcl()
        check_against_py_ecc(inst, k=(1 << 200) + 0x5EED)
        _MCL = inst
    return _MCL


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover (not Linux)
        return max(1, os.cpu_count() or 1)


def g1_to_mcl(p: tuple[int, int]) -> bytes:
    """Affine G1 point -> MCL struct bytes (Jacobian, Montgomery, z = 1)."""
    return b"".join((c * MONT_Q % Q).to_bytes(32, "little") for c in (*p, 1))


def g2_to_mcl(p) -> bytes:
    (x0, x1), (y0, y1) = p
    return b"".join((c * MONT_Q % Q).to_bytes(32, "little") for c in (x0, x1, y0, y1, 1, 0))


def lem_to_ints(b: bytes) -> list[int]:
    """Coordinates of a zkey point (64 or 128 bytes of Montgomery LE) as plain integers."""
    inv = pow(MONT_Q, -1, Q)
    return [int.from_bytes(b[i:i + 32], "little") * inv % Q for i in range(0, len(b), 32)]


def ints_to_lem(coords) -> bytes:
    return b"".join((c * MONT_Q % Q).to_bytes(32, "little") for c in coords)


def check_against_py_ecc(m: Mcl | None = None, k: int | None = None) -> None:
    """k*G1 and k*G2 computed by MCL equal py_ecc's bn128 results (curve, generators, arithmetic)."""
    from py_ecc import optimized_bn128 as b  # noqa: PLC0415
    m = m or mcl()
    k = k if k is not None else secrets.randbelow(R - 1) + 1
    if (b.field_modulus, b.curve_order) != (Q, R):
        raise ZkmlError("py_ecc's bn128 constants differ from zkml's")
    if b.normalize(b.G1) != tuple(b.FQ(c) for c in G1_GEN) or \
            b.normalize(b.G2) != tuple(b.FQ2(list(c)) for c in G2_GEN):
        raise ZkmlError("zkml's BN254 generators differ from py_ecc's")
    p1 = b.normalize(b.multiply(b.G1, k))
    p2 = b.normalize(b.multiply(b.G2, k))
    want1 = [int(c) for c in p1]
    want2 = [int(c) for xy in p2 for c in xy.coeffs]
    if lem_to_ints(m.g1_mul(k)) != want1 or lem_to_ints(m.g2_mul(k)) != want2:
        raise ZkmlError("MCL's BN254 arithmetic disagrees with py_ecc (wrong curve?)")


# --------------------------------------------------------------------------- r1cs
class R1cs:
    """Header and raw constraint section of a circom .r1cs file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.exists():
            raise BuildError(f"{self.path} not found: compile the circuit first")
        self.data = self.path.read_bytes()
        secs = binfile.sections(self.data, b"r1cs", str(self.path))
        if 1 not in secs or 2 not in secs:
            raise BuildError(f"{self.path}: missing the header or the constraint section")
        pos, _ = secs[1]
        n8 = struct.unpack_from("<I", self.data, pos)[0]
        prime = int.from_bytes(self.data[pos + 4:pos + 4 + n8], "little")
        if n8 != 32 or prime != R:
            raise ZkmlError(f"{self.path}: the circuit is not over BN254's scalar field "
                            f"(prime {prime}); compile it with circom's default --prime bn128")
        p = pos + 4 + n8
        self.n_vars, self.n_outputs, self.n_pub_inputs, self.n_prv_inputs = struct.unpack_from("<IIII", self.data, p)
        _labels, self.n_constraints = struct.unpack_from("<QI", self.data, p + 16)
        self.cons_pos, self.cons_size = secs[2]
        self.n_public = self.n_outputs + self.n_pub_inputs
        need = self.n_constraints + self.n_public + 1
        self.power = max(1, math.ceil(math.log2(need)))
        self.domain_size = 1 << self.power


# --------------------------------------------------------------------------- field work
def root_of_unity(power: int) -> int:
    """ffjavascript's Fr.w[power]: w[28] = 5^((r-1)/2^28), w[k-1] = w[k]^2."""
    return pow(NQR, (R - 1) >> power, R)


class TauInDomain(ValueError):
    """tau is a 2n-th root of unity (probability ~2^-226 for a random tau): draw another."""


def batch_inverse(vals: list[int]) -> list[int]:
    out = [0] * len(vals)
    acc = 1
    for i, v in enumerate(vals):
        out[i] = acc
        acc = acc * v % R
    inv = pow(acc, -1, R)
    for i in range(len(vals) - 1, -1, -1):
        out[i] = out[i] * inv % R
        inv = inv * vals[i] % R
    return out


def lagrange_at(tau: int, power: int, count: int, scale: int, h_scale: int) -> tuple[list[int], list[int]]:
    """(L_i(tau) * scale for i < count, L'_{2i+1}(tau) * h_scale for i < n).

    L is the Lagrange basis of the n-domain (n = 2^power), L' that of the 2n-domain, both with
    ffjavascript's roots of unity. O(n) with one inversion (batch inversion).
    """
    n = 1 << power
    w, w2 = root_of_unity(power), root_of_unity(power + 1)
    tn = pow(tau, n, R)
    if tn * tn % R == 1:
        raise TauInDomain("tau lies in the evaluation domain")
    zn = (tn - 1) * pow(n, -1, R) % R * scale % R
    z2n = (tn * tn - 1) * pow(2 * n, -1, R) % R * h_scale % R
    pw = [1] * n
    for i in range(1, n):
        pw[i] = pw[i - 1] * w % R
    odd = [w2 * x % R for x in pw]                       # omega_2n^(2i+1)
    inv = batch_inverse([tau - x for x in pw[:count]] + [tau - x for x in odd])
    lag = [zn * pw[i] % R * inv[i] % R for i in range(count)]
    hs = [z2n * odd[i] % R * inv[count + i] % R for i in range(n)]
    return lag, hs


def _scalar_bytes(vals) -> bytearray:
    return bytearray(b"".join((v % R).to_bytes(32, "little") for v in vals))


# --------------------------------------------------------------------------- zkey
def write_zkey(r1cs_path: str | Path, zkey_path: str | Path, toxic: dict, log: Log = lambda s: None) -> dict:
    """Write the zkey for given toxic waste {tau, alpha, beta, gamma, delta} (integers mod r).

    `dev_setup` calls this with fresh secrets; tests call it with known ones to compare with
    snarkjs. The caller owns `toxic` (and erases it). The file is written to a temporary name
    and renamed when complete.
    """
    t0 = time.perf_counter()
    times: dict[str, float] = {}
    m = mcl()
    cs = R1cs(r1cs_path)
    if cs.power > MAX_POWER:
        raise ZkmlError(f"{cs.path}: {cs.n_constraints} constraints need a domain of 2^{cs.power}; "
                        f"the development setup supports up to 2^{MAX_POWER}")
    tau, alpha, beta, gamma, delta = (toxic[k] % R for k in ("tau", "alpha", "beta", "gamma", "delta"))
    if 0 in (alpha, beta, gamma, delta):
        raise ValueError("alpha, beta, gamma and delta must be non-zero")
    n, npub, nvars, ncons = cs.domain_size, cs.n_public, cs.n_vars, cs.n_constraints
    log(f"development setup (INSECURE): {ncons} constraints, {nvars} wires, {npub} public, "
        f"domain 2^{cs.power}")

    # Lagrange values at tau (those of H already divided by delta)
    inv_gamma, inv_delta = pow(gamma, -1, R), pow(delta, -1, R)
    lag, hsc = lagrange_at(tau, cs.power, ncons + npub + 1, 1, inv_delta)
    times["lagrange"] = time.perf_counter() - t0

    # evaluate A, B, C at tau per signal; collect section 4 (A and B terms)
    t = time.perf_counter()
    acc = ([0] * nvars, [0] * nvars, [0] * nvars)
    data, pos, end = cs.data[cs.cons_pos:cs.cons_pos + cs.cons_size], 0, cs.cons_size
    u32 = struct.Struct("<I").unpack_from
    hdr = struct.Struct("<III").pack
    r2 = MONT_R * MONT_R % R
    coef_int: dict[bytes, int] = {}
    coef_mont: dict[bytes, bytes] = {}
    sec4 = bytearray(4)
    ncoef = 0
    try:
        for c in range(ncons):
            lc = lag[c]
            for mat in (0, 1, 2):
                nt = u32(data, pos)[0]
                pos += 4
                accm = acc[mat]
                for _ in range(nt):
                    s = u32(data, pos)[0]
                    cb = data[pos + 4:pos + 36]
                    pos += 36
                    v = coef_int.get(cb)
                    if v is None:
                        if len(cb) != 32:
                            raise IndexError
                        v = int.from_bytes(cb, "little")
                        if v >= R:
                            raise BuildError(f"{cs.path}: coefficient {v} is not reduced mod r")
                        coef_int[cb] = v
                        coef_mont[cb] = (v * r2 % R).to_bytes(32, "little")
                    accm[s] += v * lc if v != 1 else lc
                    if mat < 2:
                        sec4 += hdr(mat, c, s)
                        sec4 += coef_mont[cb]
                        ncoef += 1
    except (struct.error, IndexError):
        raise BuildError(f"{cs.path}: the constraint section is truncated or refers to a wire "
                         f"beyond the {nvars} declared") from None
    if pos != end:
        raise BuildError(f"{cs.path}: constraint section size mismatch ({pos} of {cs.cons_size} bytes used)")
    one_mont = r2.to_bytes(32, "little")
    for s in range(npub + 1):                       # input constraints: s * 1 in A, nothing else
        acc[0][s] += lag[ncons + s]
        sec4 += hdr(0, ncons + s, s)
        sec4 += one_mont
        ncoef += 1
    sec4[0:4] = struct.pack("<I", ncoef)
    del lag, cs
    a, b, cc = acc
    times["evaluate"] = time.perf_counter() - t

    # scalars of every point
    t = time.perf_counter()
    a = [x % R for x in a]
    b = [x % R for x in b]
    k = [(beta * x + alpha * y + z) % R for x, y, z in zip(a, b, cc)]
    del cc, acc
    sc_a, sc_b = _scalar_bytes(a), _scalar_bytes(b)
    sc_ic = _scalar_bytes(x * inv_gamma for x in k[:npub + 1])
    sc_c = _scalar_bytes(x * inv_delta for x in k[npub + 1:])
    sc_h = _scalar_bytes(hsc)
    del a, b, k, hsc
    times["scalars"] = time.perf_counter() - t

    # points, written as they are computed, in snarkjs' section order
    t = time.perf_counter()
    zkey_path = Path(zkey_path)
    tmp = zkey_path.with_name(zkey_path.name + f".tmp{os.getpid()}")
    key_hash = hashlib.blake2b(digest_size=64)
    w1 = m.best_window(1, (len(sc_a) + len(sc_b) + len(sc_ic) + len(sc_c) + len(sc_h)) // 32)
    w2 = m.best_window(2, len(sc_b) // 32)
    t_g2 = 0.0
    try:
        with open(tmp, "wb") as f:
            def section(sid: int, body: bytes | bytearray, size: int | None = None) -> None:
                if size is not None and len(body) != size:
                    raise AssertionError(f"section {sid}: {len(body)} bytes instead of {size}")
                f.write(struct.pack("<IQ", sid, len(body)))
                f.write(body)
                if 2 <= sid <= 9:
                    key_hash.update(body)

            f.write(b"zkey" + struct.pack("<II", 1, 10))
            section(1, struct.pack("<I", 1))
            section(2, b"".join([
                struct.pack("<I", 32), Q.to_bytes(32, "little"), struct.pack("<I", 32), R.to_bytes(32, "little"),
                struct.pack("<III", nvars, npub, n), m.g1_mul(alpha), m.g1_mul(beta), m.g2_mul(beta),
                m.g2_mul(gamma), m.g1_mul(delta), m.g2_mul(delta)]))
            section(4, sec4)
            del sec4
            section(3, m.fixed_base(1, sc_ic, w1), (npub + 1) * G1_LEM)
            section(9, m.fixed_base(1, sc_h, w1), n * G1_LEM)
            section(8, m.fixed_base(1, sc_c, w1), (nvars - npub - 1) * G1_LEM)
            section(5, m.fixed_base(1, sc_a, w1), nvars * G1_LEM)
            section(6, m.fixed_base(1, sc_b, w1), nvars * G1_LEM)
            t2 = time.perf_counter()
            section(7, m.fixed_base(2, sc_b, w2), nvars * G2_LEM)
            t_g2 = time.perf_counter() - t2
            # snarkjs stores the blake2b circuit hash of the pre-contribution key here; a dev key
            # has none, so we store blake2b-512 of sections 2..9 as written (file order)
            section(10, key_hash.digest() + struct.pack("<I", 0))
        os.replace(tmp, zkey_path)
    finally:
        for buf in (sc_a, sc_b, sc_ic, sc_c, sc_h):
            ctypes.memset((ctypes.c_char * len(buf)).from_buffer(buf), 0, len(buf))
        del sc_a, sc_b, sc_ic, sc_c, sc_h
        tmp.unlink(missing_ok=True)
    del tau, alpha, beta, gamma, delta, inv_gamma, inv_delta
    times["g2"] = t_g2
    times["points"] = time.perf_counter() - t
    times["g1"] = times["points"] - t_g2
    seconds = time.perf_counter() - t0
    log(f"  wrote {zkey_path} ({zkey_path.stat().st_size / 2**20:.1f} MiB) in {seconds:.1f} s")
    return dict(constraints=ncons, wires=nvars, public=npub, power=int(math.log2(n)), domain_size=n,
                coefficients=ncoef, seconds=round(seconds, 3),
                timings={k2: round(v, 3) for k2, v in times.items()}, zkey=str(zkey_path), kind=KIND,
                insecure=True)


def dev_setup(r1cs_path: str | Path, zkey_path: str | Path, log: Log = lambda s: None) -> dict:
    """Groth16 development keys for a circom .r1cs, written as a snarkjs .zkey. INSECURE.

    Draws fresh toxic waste (tau, alpha, beta, gamma, delta; uniform in [1, r) from `secrets`),
    computes the keys directly (no powers of tau) and returns {"constraints", "wires", "public",
    "power", "domain_size", "seconds", "timings", "zkey", "kind", "insecure": True}.

    Erasing the secrets "as far as Python allows" means: the five secret integers live in one
    dict that is cleared when the setup ends (also on errors); the big buffers of secret-derived
    scalars (the QAP polynomials evaluated at tau, from which tau could be recovered) are
    bytearrays overwritten with zeros, as are the window digits and gathered table points of the
    fixed-base step; every other list is dropped and a garbage collection runs. What Python does
    NOT allow: integers are immutable, so each secret and each intermediate value (Lagrange
    values, sums, products, numpy temporaries, MCL's stack) is freed but not overwritten; its
    bytes stay in freed memory until reused, may have been swapped to disk, and can appear in a
    core dump. The table lookups also depend on the secret scalars (not constant time). Treat the
    machine that ran a development setup as knowing the toxic waste: anyone who could read its
    memory while or after it ran could forge proofs for these keys.
    """
    mcl()  # fail early (missing library, wrong curve) before drawing secrets
    toxic = {k: secrets.randbelow(R - 1) + 1 for k in ("tau", "alpha", "beta", "gamma", "delta")}
    try:
        while True:
            try:
                return write_zkey(r1cs_path, zkey_path, toxic, log)
            except TauInDomain:        # probability ~2^-226
                toxic["tau"] = secrets.randbelow(R - 1) + 1
    finally:
        for key in list(toxic):
            toxic[key] = 0
        toxic.clear()
        del toxic
        gc.collect()


__all__ = ["dev_setup", "write_zkey", "mcl", "Mcl", "check_against_py_ecc", "lagrange_at", "root_of_unity",
           "R1cs", "KIND", "R", "Q"]
