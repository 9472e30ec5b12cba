"""verify-clean: dirty files fail with their findings named, clean outputs pass."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from cli import main
from pipeline.writing import OutputFormat, encode_clean
from tests.pipeline import dirty


def test_dirty_files_fail_and_clean_ones_pass(tmp_path: Path) -> None:
    bad_jpeg = dirty.make_dirty_jpeg(tmp_path / "dirty.jpg")
    bad_png = dirty.make_dirty_png(tmp_path / "dirty.png")
    clean = tmp_path / "clean.jpg"
    clean.write_bytes(encode_clean(np.zeros((16, 16, 3), np.uint8), OutputFormat.JPEG))
    text = tmp_path / "notes.txt"
    text.write_text("not an image")

    runner = CliRunner()
    ok = runner.invoke(main, ["verify-clean", str(clean)])
    assert ok.exit_code == 0 and "clean" in ok.stdout

    result = runner.invoke(
        main, ["verify-clean", "--json", str(bad_jpeg), str(bad_png), str(clean), str(text)]
    )
    assert result.exit_code == 1
    by_name = {Path(r["file"]).name: r for r in json.loads(result.stdout)}
    assert by_name["clean.jpg"]["clean"] is True
    assert not by_name["dirty.jpg"]["clean"] and not by_name["dirty.png"]["clean"]
    kinds = " ".join(by_name["dirty.jpg"]["findings"])
    for kind in ("EXIF", "GPS", "XMP", "JPEG comment", "IFD1 thumbnail"):
        assert kind in kinds
    assert not by_name["notes.txt"]["clean"]
