"""Packed public outputs: several uint lanes in one field element.

Each public input costs ~6-7k gas on-chain; uint8 outputs packed 31 per field element cut
that ~31x. Packing is a linear combination — free in R1CS — and sound because every lane is
already constrained to [0, 2^bits) by the template that produced it, and lanes * bits <= 253
keeps the packed value below the BN254 scalar field order r (~2^253.6): the packed
integer, hence each lane, is unique.

Layout: word w = sum_i lane[w*L + i] * 2^(bits*i), i < L = floor(253 / bits) (lane 0 in the
lowest bits), words in output order.
"""
from __future__ import annotations

PACK_BITS = 253


def lanes_per_word(bits: int) -> int:
    return max(1, PACK_BITS // bits)


def n_words(size: int, bits: int) -> int:
    k = lanes_per_word(bits)
    return (size + k - 1) // k


def pack(values: list[int], bits: int) -> list[int]:
    k = lanes_per_word(bits)
    words = []
    for w in range(0, len(values), k):
        acc = 0
        for i, v in enumerate(values[w:w + k]):
            if not 0 <= v < (1 << bits):
                raise ValueError(f"lane value {v} does not fit {bits} bits")
            acc |= int(v) << (bits * i)
        words.append(acc)
    return words


def unpack(words: list[int], bits: int, size: int) -> list[int]:
    k, mask = lanes_per_word(bits), (1 << bits) - 1
    out = []
    for w in words:
        w = int(w)
        out.extend((w >> (bits * i)) & mask for i in range(k))
    return out[:size]


def public_layout(outputs: list[dict], packed: bool) -> list[dict]:
    """outputs: [{name, bits, size}] -> [{name, bits, size, packed, lanes, words}]."""
    return [dict(o, packed=packed, lanes=lanes_per_word(o["bits"]) if packed else 1,
                 words=n_words(o["size"], o["bits"]) if packed else o["size"]) for o in outputs]


def to_public(layout: list[dict], outputs: list[list[int]]) -> list[int]:
    pub = []
    for lay, vals in zip(layout, outputs):
        pub.extend(pack(vals, lay["bits"]) if lay["packed"] else vals)
    return pub


def from_public(layout: list[dict], public: list[int]) -> list[list[int]]:
    out, pos = [], 0
    for lay in layout:
        words = [int(v) for v in public[pos:pos + lay["words"]]]
        pos += lay["words"]
        out.append(unpack(words, lay["bits"], lay["size"]) if lay["packed"] else words)
    return out
