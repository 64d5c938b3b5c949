"""Packed public outputs: layout arithmetic (the circuit side is covered end to end in test_pipeline)."""
import pytest

from zkml.ir import BN254_R
from zkml.packing import from_public, lanes_per_word, pack, public_layout, to_public, unpack


@pytest.mark.parametrize("bits", [1, 2, 7, 8, 12, 16, 31, 32, 64, 126, 127, 253])
def test_roundtrip_and_below_field(bits):
    k = lanes_per_word(bits)
    assert k * bits <= 253
    vals = [(1 << bits) - 1] * (2 * k + 3)        # the largest lanes: the largest words
    words = pack(vals, bits)
    assert len(words) == -(-len(vals) // k) and all(w < BN254_R for w in words)
    assert unpack(words, bits, len(vals)) == vals


def test_uint8_packs_31_per_word():
    assert lanes_per_word(8) == 31
    assert len(pack(list(range(100)), 8)) == 4


def test_lane_out_of_range_refused():
    with pytest.raises(ValueError):
        pack([256], 8)


def test_layout_mixed_outputs():
    lay = public_layout([dict(name="a", bits=8, size=40), dict(name="b", bits=4, size=3)], True)
    assert [o["words"] for o in lay] == [2, 1]
    outs = [list(range(40)), [1, 2, 3]]
    assert from_public(lay, to_public(lay, outs)) == outs
    flat = public_layout([dict(name="a", bits=8, size=3)], False)
    assert to_public(flat, [[1, 2, 3]]) == [1, 2, 3]
