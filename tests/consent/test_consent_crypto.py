from __future__ import annotations

import os

import pytest

from consent.crypto import NONCE_BYTES, decrypt, encrypt
from consent.errors import TamperedData

KEY = bytes(range(32))


def test_round_trip() -> None:
    blob = encrypt(KEY, b"secret", b"encoding:P001")
    assert decrypt(KEY, blob, b"encoding:P001") == b"secret"
    assert b"secret" not in blob


def test_nonce_is_fresh_each_time() -> None:
    first, second = encrypt(KEY, b"x", b"a"), encrypt(KEY, b"x", b"a")
    assert first[:NONCE_BYTES] != second[:NONCE_BYTES]


def flip_last_byte(blob: bytes) -> bytes:
    return blob[:-1] + bytes([blob[-1] ^ 1])


@pytest.mark.parametrize(
    ("key", "aad", "mangle"),
    [
        (KEY, b"encoding:P002", lambda b: b),
        (os.urandom(32), b"encoding:P001", lambda b: b),
        (KEY, b"encoding:P001", flip_last_byte),
        (KEY, b"encoding:P001", lambda b: b[:20]),
    ],
    ids=["other-pupil", "other-key", "flipped-bit", "truncated"],
)
def test_mismatch_raises_tampered(key: bytes, aad: bytes, mangle) -> None:
    blob = encrypt(KEY, b"secret", b"encoding:P001")
    with pytest.raises(TamperedData):
        decrypt(key, mangle(blob), aad)
