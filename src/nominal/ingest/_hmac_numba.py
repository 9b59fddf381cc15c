"""HMAC-SHA256 of every value of a text column, compiled with numba (imported lazily).

HMAC is ``H((K ^ opad) || H((K ^ ipad) || m))``. The two padded keys are one SHA-256
block each and the same for every value, so their compression states are computed once
per key: each value then costs one or two compressions for the inner hash (its bytes
and the padding) and exactly one for the outer hash (the 32-byte inner digest and the
padding), against four in the SQL form. The output is the lower-case hex digest cut to
``chars`` characters, written straight into one buffer for an Arrow string array.

Every sum and rotation is cast back to uint32: numba widens small integers to 64 bits,
where a rotation would otherwise keep the high bits.
"""

from __future__ import annotations

import numpy as np
from numba import njit, uint32

_ROUND = np.array(
    [
        0x428A2F98, 0x71374491, 0xB5C0FBCF, 0xE9B5DBA5, 0x3956C25B, 0x59F111F1, 0x923F82A4,
        0xAB1C5ED5, 0xD807AA98, 0x12835B01, 0x243185BE, 0x550C7DC3, 0x72BE5D74, 0x80DEB1FE,
        0x9BDC06A7, 0xC19BF174, 0xE49B69C1, 0xEFBE4786, 0x0FC19DC6, 0x240CA1CC, 0x2DE92C6F,
        0x4A7484AA, 0x5CB0A9DC, 0x76F988DA, 0x983E5152, 0xA831C66D, 0xB00327C8, 0xBF597FC7,
        0xC6E00BF3, 0xD5A79147, 0x06CA6351, 0x14292967, 0x27B70A85, 0x2E1B2138, 0x4D2C6DFC,
        0x53380D13, 0x650A7354, 0x766A0ABB, 0x81C2C92E, 0x92722C85, 0xA2BFE8A1, 0xA81A664B,
        0xC24B8B70, 0xC76C51A3, 0xD192E819, 0xD6990624, 0xF40E3585, 0x106AA070, 0x19A4C116,
        0x1E376C08, 0x2748774C, 0x34B0BCB5, 0x391C0CB3, 0x4ED8AA4A, 0x5B9CCA4F, 0x682E6FF3,
        0x748F82EE, 0x78A5636F, 0x84C87814, 0x8CC70208, 0x90BEFFFA, 0xA4506CEB, 0xBEF9A3F7,
        0xC67178F2,
    ],
    dtype=np.uint32,
)  # fmt: skip
_INITIAL = np.array(
    [0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB,
     0x5BE0CD19],
    dtype=np.uint32,
)  # fmt: skip
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8).copy()


@njit(cache=True, inline="always")
def _rotr(x: np.uint32, n: int) -> np.uint32:
    return uint32((x >> uint32(n)) | (x << uint32(32 - n)))


@njit(cache=True)
def _compress(state: np.ndarray, block: np.ndarray, w: np.ndarray, k: np.ndarray) -> None:
    """One SHA-256 compression of the 64-byte ``block`` into ``state`` (8 uint32 words)."""
    for i in range(16):
        w[i] = (
            (uint32(block[4 * i]) << uint32(24))
            | (uint32(block[4 * i + 1]) << uint32(16))
            | (uint32(block[4 * i + 2]) << uint32(8))
            | uint32(block[4 * i + 3])
        )
    for i in range(16, 64):
        x = w[i - 15]
        y = w[i - 2]
        s0 = _rotr(x, 7) ^ _rotr(x, 18) ^ (x >> uint32(3))
        s1 = _rotr(y, 17) ^ _rotr(y, 19) ^ (y >> uint32(10))
        w[i] = uint32(w[i - 16] + s0 + w[i - 7] + s1)
    a, b, c, d = state[0], state[1], state[2], state[3]
    e, f, g, h = state[4], state[5], state[6], state[7]
    for i in range(64):
        s1 = _rotr(e, 6) ^ _rotr(e, 11) ^ _rotr(e, 25)
        ch = (e & f) ^ (~e & g)
        t1 = uint32(h + s1 + ch + k[i] + w[i])
        s0 = _rotr(a, 2) ^ _rotr(a, 13) ^ _rotr(a, 22)
        t2 = uint32(s0 + ((a & b) ^ (a & c) ^ (b & c)))
        h, g, f, e = g, f, e, uint32(d + t1)
        d, c, b, a = c, b, a, uint32(t1 + t2)
    state[0] = uint32(state[0] + a)
    state[1] = uint32(state[1] + b)
    state[2] = uint32(state[2] + c)
    state[3] = uint32(state[3] + d)
    state[4] = uint32(state[4] + e)
    state[5] = uint32(state[5] + f)
    state[6] = uint32(state[6] + g)
    state[7] = uint32(state[7] + h)


@njit(cache=True)
def _hmac_many(
    data: np.ndarray,
    offsets: np.ndarray,
    inner: np.ndarray,
    outer: np.ndarray,
    k: np.ndarray,
    hexdigits: np.ndarray,
    chars: int,
    out: np.ndarray,
) -> None:
    """``out[r*chars:(r+1)*chars]`` = hex HMAC of ``data[offsets[r]:offsets[r+1]]``."""
    w = np.empty(64, dtype=np.uint32)
    state = np.empty(8, dtype=np.uint32)
    block = np.zeros(64, dtype=np.uint8)
    for r in range(offsets.shape[0] - 1):
        start = offsets[r]
        length = offsets[r + 1] - start
        state[:] = inner
        pos = 0
        while length - pos >= 64:
            for j in range(64):
                block[j] = data[start + pos + j]
            _compress(state, block, w, k)
            pos += 64
        rest = length - pos
        for j in range(rest):
            block[j] = data[start + pos + j]
        block[rest] = 0x80
        for j in range(rest + 1, 64):
            block[j] = 0
        if rest >= 56:  # no room for the length: it goes in one more block
            _compress(state, block, w, k)
            for j in range(64):
                block[j] = 0
        bits = (64 + length) * 8  # the ipad block counts towards the length
        for j in range(8):
            block[63 - j] = (bits >> (8 * j)) & 0xFF
        _compress(state, block, w, k)
        # Outer hash: the 32-byte inner digest, padding, length 96 bytes (768 bits).
        for j in range(8):
            v = np.int64(state[j])
            block[4 * j] = (v >> 24) & 0xFF
            block[4 * j + 1] = (v >> 16) & 0xFF
            block[4 * j + 2] = (v >> 8) & 0xFF
            block[4 * j + 3] = v & 0xFF
        block[32] = 0x80
        for j in range(33, 62):
            block[j] = 0
        block[62] = 0x03
        block[63] = 0x00
        state[:] = outer
        _compress(state, block, w, k)
        base = r * chars
        for j in range(chars):
            byte = (np.int64(state[j // 8]) >> (28 - 4 * (j % 8))) & 0xF
            out[base + j] = hexdigits[byte]


def padded_states(key_block: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Compression states after the ipad and opad blocks of a 64-byte padded key."""
    w = np.empty(64, dtype=np.uint32)
    states = []
    for pad in (0x36, 0x5C):
        state = _INITIAL.copy()
        block = np.frombuffer(bytes(b ^ pad for b in key_block), dtype=np.uint8).copy()
        _compress(state, block, w, _ROUND)
        states.append(state)
    return states[0], states[1]


def hmac_hex(
    data: np.ndarray, offsets: np.ndarray, inner: np.ndarray, outer: np.ndarray, chars: int
) -> np.ndarray:
    """The hex HMACs of ``len(offsets) - 1`` values, ``chars`` bytes each, in one buffer."""
    out = np.empty((offsets.shape[0] - 1) * chars, dtype=np.uint8)
    _hmac_many(data, offsets, inner, outer, _ROUND, _HEX, chars, out)
    return out
