"""Coverage-guided fuzzing of the loader and the metadata walker with atheris.

Not collected by pytest (the file name does not start with ``test_``); the bounded
hypothesis run in tests/pipeline/test_fuzz_loader.py is what CI runs. Use this for long runs:

    pip install atheris==3.0.0          # dev-only; needs a Linux x86-64 wheel
    mkdir -p /tmp/corpus && python tests/fuzz/atheris_loader.py --seed-corpus /tmp/corpus
    python tests/fuzz/atheris_loader.py /tmp/corpus -max_total_time=600 -rss_limit_mb=2048

Any exception other than UnreadableImage from load_image, or any exception at all from
find_metadata, is a crash: libFuzzer stops and writes the input as ``crash-<sha1>``.
``-timeout=10`` (seconds per input) turns a hang into a crash too.
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import atheris  # noqa: E402

with atheris.instrument_imports():
    from pipeline.errors import UnreadableImage  # noqa: E402
    from pipeline.formats.findings import find_metadata  # noqa: E402
    from pipeline.loading import load_image  # noqa: E402

_TMP = Path(tempfile.mkdtemp(prefix="atheris-loader-"))


def one_input(data: bytes) -> None:
    find_metadata(data)
    path = _TMP / "input.bin"
    path.write_bytes(data)
    try:
        load_image(path, max_pixels=4_000_000)
    except UnreadableImage:
        pass


def write_seed_corpus(folder: Path) -> None:
    """Small dirty JPEG/PNG/WebP files (the hypothesis test's seeds) as a start."""
    from tests.support import dirty

    folder.mkdir(parents=True, exist_ok=True)
    pixels = dirty.noisy_pixels(48, 32, seed=5)
    for builder in (dirty.make_dirty_jpeg, dirty.make_dirty_png, dirty.make_dirty_webp):
        builder(folder / builder.__name__, pixels)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--seed-corpus":
        write_seed_corpus(Path(sys.argv[2]))
        return
    warnings.simplefilter("ignore")  # Pillow warns on every damaged EXIF block
    atheris.Setup([*sys.argv, "-timeout=10"], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
