"""Bounded fuzzing (issue 8): mutated real JPEG/PNG/WebP files through the loader, the
metadata walker and verify-clean.

Seeds are the dirty fixtures (EXIF with GPS and an IFD1 thumbnail, XMP, IPTC, ICC, PNG
text), so mutations land in the parsers that matter. Mutations are bit flips, cuts,
inserted segments/chunks (well-formed wrappers around random bodies, so the walkers go
past the header) and rewritten length fields. The contract: the loader returns a valid
LoadedImage or raises UnreadableImage; the walker and verify-clean never raise. Each
example runs under a hard 10-second alarm (a hang fails the test instead of stalling
CI) and the whole file runs in about 15 seconds. For longer, coverage-guided runs see
tests/fuzz/atheris_loader.py.
"""

from __future__ import annotations

import contextlib
import os
import signal
import struct
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli import main
from pipeline.errors import UnreadableImage
from pipeline.formats.findings import MetadataFinding, find_metadata
from pipeline.loading import LoadedImage, load_image
from tests.support import dirty

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow's "corrupt EXIF"

EXPLORE = os.environ.get("FUZZ_EXPLORE") == "1"
FUZZ = settings(
    max_examples=2000 if EXPLORE else 120,
    deadline=5000,  # ms per example; the alarm below is the hard stop
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    # The same examples in CI every time; FUZZ_EXPLORE=1 draws new ones (and more).
    derandomize=not EXPLORE,
)


def _seeds() -> dict[str, bytes]:
    pixels = dirty.noisy_pixels(48, 32, seed=5)
    with tempfile.TemporaryDirectory() as tmp:
        return {
            "jpeg": dirty.make_dirty_jpeg(Path(tmp) / "s", pixels).read_bytes(),
            "png": dirty.make_dirty_png(Path(tmp) / "s", pixels).read_bytes(),
            "webp": dirty.make_dirty_webp(Path(tmp) / "s", pixels).read_bytes(),
        }


SEEDS = _seeds()


def _jpeg_segment(data: st.DataObject) -> bytes:
    marker = data.draw(st.sampled_from([0xE0, 0xE1, 0xE2, 0xED, 0xEE, 0xFE, 0xDB, 0xC4, 0xC0]))
    body = data.draw(st.binary(max_size=64))
    prefix = data.draw(st.sampled_from([b"", b"Exif\0\0II*\0", b"JFIF\0", b"Adobe", b"MPF\0"]))
    payload = prefix + body
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload


def _png_chunk(data: st.DataObject) -> bytes:
    ctype = data.draw(st.sampled_from([b"IHDR", b"IDAT", b"tEXt", b"eXIf", b"iCCP", b"acTL"]))
    body = data.draw(st.binary(max_size=64))
    crc = zlib.crc32(ctype + body)
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", crc)


def _webp_chunk(data: st.DataObject) -> bytes:
    fourcc = data.draw(st.sampled_from([b"VP8X", b"EXIF", b"ANIM", b"ALPH", b"VP8 ", b"XMP "]))
    body = data.draw(st.binary(max_size=64))
    return fourcc + struct.pack("<I", len(body)) + body + b"\0" * (len(body) & 1)


INSERTS = {"jpeg": _jpeg_segment, "png": _png_chunk, "webp": _webp_chunk}


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A seed file with one to four mutations applied."""
    kind = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(SEEDS[kind])
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "length", "splice"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = INSERTS[kind](draw(st.data()))
        elif op == "length" and pos + 4 <= len(data):
            # Lengths and counts are where parsers trust the file most.
            value = draw(st.sampled_from([0, 1, 0xFFFF, 0x7FFF_FFFF, 0xFFFF_FFFF]))
            data[pos : pos + 4] = value.to_bytes(4, "big")
        elif op == "splice":
            other = SEEDS[draw(st.sampled_from(sorted(SEEDS)))]
            start = draw(st.integers(0, len(other) - 1))
            data[pos:pos] = other[start : start + draw(st.integers(1, 256))]
    return bytes(data)


@contextlib.contextmanager
def hard_limit(seconds: int) -> Iterator[None]:
    """Fail (rather than hang) if the body runs longer than ``seconds`` (POSIX alarm)."""

    def expired(signum: int, frame: object) -> None:
        raise TimeoutError(f"still running after {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def _as_file(data: bytes, suffix: str = ".jpg") -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"fuzz{suffix}"
        path.write_bytes(data)
        yield path


@FUZZ
@given(mutated())
def test_loader_returns_an_image_or_refuses(data: bytes) -> None:
    with _as_file(data) as path:
        with hard_limit(10):
            try:
                loaded = load_image(path)
            except UnreadableImage as exc:
                assert str(exc).startswith("fuzz.jpg: ")
                return
        assert isinstance(loaded, LoadedImage)
        assert loaded.pixels.dtype == np.uint8 and loaded.pixels.ndim == 3
        assert loaded.pixels.shape == (loaded.size[1], loaded.size[0], 3)
        assert 1 <= loaded.orientation <= 8


@settings(FUZZ, max_examples=FUZZ.max_examples * 2)
@given(mutated())
def test_metadata_walker_never_raises(data: bytes) -> None:
    with hard_limit(10):
        findings = find_metadata(data)
    assert all(isinstance(f, MetadataFinding) for f in findings)
    assert all(f.kind and f.detail for f in findings)


@settings(FUZZ, max_examples=FUZZ.max_examples // 2)
@given(mutated())
def test_verify_clean_answers_clean_or_not(data: bytes) -> None:
    with _as_file(data) as path:
        with hard_limit(10):
            result = CliRunner().invoke(main, ["verify-clean", "--json", str(path)])
        assert result.exit_code in (0, 1), result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        # A mutated dirty file is never proven clean unless the walker also finds nothing.
        assert (result.exit_code == 0) == (find_metadata(data) == [])
