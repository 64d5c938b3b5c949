"""Poseidon over BN254, bit for bit circomlib's `Poseidon(n)` (circomlib/circuits/poseidon.circom),
and zkml's commitment to a tensor: a chain of Poseidon(16) over its packed field elements.

`poseidon(inputs)` follows circomlib's optimized PoseidonEx(n, 1) template step by step (full
rounds with the matrix M, the sparse partial rounds with S and P, initial state 0), with the
round constants read from circomlib's own `poseidon_constants.circom` in node_modules, so the
Python value and the circuit's value are the same function of the same constants
(tests/test_visibility.py checks it against the circom witness and against the published test
vector Poseidon([1, 2])).

Commitment of a tensor (`commit_words`, circuits/commit.circom `PoseidonChain(N)`), over the
N >= 1 packed words w[0..N-1] (zkml/packing.py: lanes of `bits` bits, floor(253 / bits) per word,
lane 0 lowest):

    h_0 = N
    h_c = Poseidon(16)([h_{c-1}, w[15(c-1)], ..., w[15(c-1) + 14]])     c = 1 .. ceil(N / 15)
    commitment = h_last                                      (missing words of the last chunk are 0)

Starting the chain from the word count N binds the length, so zero padding is unambiguous.
"""
from __future__ import annotations

import re
from functools import lru_cache

from .errors import BuildError
from .ir import BN254_R
from .packing import lanes_per_word, pack

P = BN254_R
N_ROUNDS_F = 8
N_ROUNDS_P = [56, 57, 56, 60, 60, 63, 64, 63, 60, 66, 60, 65, 70, 60, 64, 68]
CHAIN_ARITY = 16          # Poseidon(16): t = 17, the widest circomlib provides
CHAIN_WORDS = CHAIN_ARITY - 1


def _constants_file():
    from .toolchain import node_modules
    return node_modules() / "circomlib" / "circuits" / "poseidon_constants.circom"


@lru_cache(maxsize=1)
def _source() -> str:
    path = _constants_file()
    try:
        return path.read_text()
    except OSError as e:
        raise BuildError(f"circomlib's Poseidon constants are missing ({path}: {e.strerror}); "
                         "run `npm install` in the zkml checkout") from None


@lru_cache(maxsize=None)
def _function_block(name: str, t: int) -> list[int]:
    """Every integer constant of circom function `name` for width t, in source order."""
    src = _source()
    start = src.index(f"function {name}(t)")
    end = src.find("\nfunction ", start + 1)
    body = src[start:end if end > 0 else len(src)]
    m = re.search(rf"if \(t\s*==\s*{t}\)\s*{{", body)
    if not m:
        raise BuildError(f"{_constants_file()} has no {name} for t = {t}")
    nxt = re.search(r"}\s*else if \(t\s*==\s*\d+\)", body[m.end():])
    block = body[m.end():m.end() + nxt.start()] if nxt else body[m.end():]
    return [int(h, 16) for h in re.findall(r"0x[0-9a-fA-F]+", block)]


@lru_cache(maxsize=None)
def constants(t: int) -> tuple[list[int], list[int], list[list[int]], list[list[int]]]:
    """(C, S, M, P) of circomlib for state width t (2..17)."""
    if not 2 <= t <= 17:
        raise ValueError(f"circomlib Poseidon has widths 2..17, not {t}")
    C, S = _function_block("POSEIDON_C", t), _function_block("POSEIDON_S", t)
    flat_m, flat_p = _function_block("POSEIDON_M", t), _function_block("POSEIDON_P", t)
    M = [flat_m[i * t:(i + 1) * t] for i in range(t)]
    Pm = [flat_p[i * t:(i + 1) * t] for i in range(t)]
    nrp = N_ROUNDS_P[t - 2]
    if len(C) != t * N_ROUNDS_F + nrp or len(S) != nrp * (2 * t - 1) or len(flat_m) != t * t:
        raise BuildError(f"unexpected Poseidon constant sizes for t = {t} in {_constants_file()}")
    return C, S, M, Pm


def _sigma(x: int) -> int:
    return pow(x, 5, P)


def _mix(state: list[int], M: list[list[int]]) -> list[int]:
    t = len(state)
    return [sum(M[j][i] * state[j] for j in range(t)) % P for i in range(t)]


def poseidon(inputs: list[int], initial_state: int = 0) -> int:
    """circomlib Poseidon(len(inputs)) (1 <= len <= 16) of field elements."""
    n = len(inputs)
    if not 1 <= n <= 16:
        raise ValueError(f"circomlib Poseidon takes 1..16 inputs, not {n}")
    t = n + 1
    C, S, M, Pm = constants(t)
    nrp = N_ROUNDS_P[t - 2]
    half = N_ROUNDS_F // 2
    st = [initial_state % P] + [int(v) % P for v in inputs]
    st = [(s + C[i]) % P for i, s in enumerate(st)]                       # ark[0]
    for r in range(half - 1):
        st = [_sigma(s) for s in st]
        st = [(s + C[(r + 1) * t + i]) % P for i, s in enumerate(st)]
        st = _mix(st, M)
    st = [_sigma(s) for s in st]
    st = [(s + C[half * t + i]) % P for i, s in enumerate(st)]
    st = _mix(st, Pm)
    for r in range(nrp):
        s0 = (_sigma(st[0]) + C[(half + 1) * t + r]) % P
        base = (2 * t - 1) * r
        new0 = (S[base] * s0 + sum(S[base + i] * st[i] for i in range(1, t))) % P
        st = [new0] + [(st[i] + s0 * S[base + t + i - 1]) % P for i in range(1, t)]
    for r in range(half - 1):
        st = [_sigma(s) for s in st]
        st = [(s + C[(half + 1) * t + nrp + r * t + i]) % P for i, s in enumerate(st)]
        st = _mix(st, M)
    st = [_sigma(s) for s in st]
    return sum(M[j][0] * st[j] for j in range(t)) % P


def commit_words(words: list[int]) -> int:
    """The PoseidonChain commitment of N >= 1 field elements (module docstring)."""
    if not words:
        raise ValueError("nothing to commit to")
    h = len(words)
    for c in range(0, len(words), CHAIN_WORDS):
        chunk = [int(w) for w in words[c:c + CHAIN_WORDS]]
        h = poseidon([h] + chunk + [0] * (CHAIN_WORDS - len(chunk)))
    return h


def commit_values(values: list[int], bits: int) -> int:
    """Commitment of a uint tensor: its values packed (zkml.packing, `bits` per lane), then chained."""
    return commit_words(pack([int(v) for v in values], bits))


def chain_constraints(n_words: int) -> int:
    """Poseidon(16) invocations of the chain over n_words (for documentation and estimates)."""
    return -(-n_words // CHAIN_WORDS)


__all__ = ["poseidon", "commit_words", "commit_values", "lanes_per_word", "CHAIN_WORDS"]
