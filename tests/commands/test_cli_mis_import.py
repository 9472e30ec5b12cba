"""``pupils import`` with an MIS export, ``--dry-run``, ``--mapping`` and ``pupils mapping
init`` through the CLI, the state checked through the library."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from cli import main
from consent import registry
from consent.store import open_store

SIMS = (
    "\ufeffUPN,Legal Surname,Legal Forename,Preferred Forename,Reg Group,Date of Birth,"
    "Photo Consent - Website,Consent Date\r\n"
    "A1,Nowak,Łukasz,Luke,3B,14/03/2018,Granted,01/09/2026\r\n"
    "\r\n"
    "A2,Lee,Amy,,3B,01/01/2018,,01/09/2026\r\n"
)


def run(runner: CliRunner, data_dir: Path, *args: object):
    return runner.invoke(main, ["--data-dir", str(data_dir), *map(str, args)])


def test_dry_run_then_import_of_a_sims_export(
    runner: CliRunner, data_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(SIMS.encode())
    out = run(runner, data_dir, "pupils", "import", path, "--dry-run")
    assert out.exit_code == 0, out.output
    assert "Would import export.csv (sims): 2 added" in out.stdout
    assert "Columns ignored (not stored): Date of Birth" in out.stdout
    assert "1 empty consent cell(s) recorded as no consent" in out.stdout
    assert "Dry run: nothing was written." in out.stdout
    with open_store(data_dir) as store:
        assert registry.list_pupils(store.conn) == []
    out = run(runner, data_dir, "pupils", "import", path, "--json")
    assert out.exit_code == 0, out.output
    summary = json.loads(out.stdout)
    assert (summary["format"], summary["added"], summary["empty_consent_cells"]) == ("sims", 2, 1)
    out = run(runner, data_dir, "pupils", "list")
    assert "Łukasz Nowak (known as Luke Nowak)" in out.stdout


def test_mapping_init_then_import(runner: CliRunner, data_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "custom.csv"
    path.write_text("ID,Given,Family,Web\nX1,Amy,Lee,Y\n", encoding="utf-8")
    out = run(runner, data_dir, "pupils", "import", path)
    assert out.exit_code != 0 and "pupils mapping init" in out.output
    out = run(runner, data_dir, "pupils", "mapping", "init", path)
    assert out.exit_code == 0, out.output
    mapping = tmp_path / "custom.mapping.txt"
    text = mapping.read_text(encoding="utf-8")
    for field, column in [("pupil_id", "ID"), ("first_name", "Given"), ("last_name", "Family")]:
        text = text.replace(f"\n{field} = \n", f"\n{field} = {column}\n")
    mapping.write_text(text.replace("\nwebsite = \n", "\nwebsite = Web\n"), encoding="utf-8")
    out = run(runner, data_dir, "pupils", "import", path, "--mapping", mapping)
    assert out.exit_code == 0, out.output
    with open_store(data_dir) as store:
        rec = registry.current_consent(store.conn, "X1")
        assert rec is not None and rec.purposes == {registry.Purpose.WEBSITE}
    again = run(runner, data_dir, "pupils", "mapping", "init", path)
    assert again.exit_code != 0 and "already exists" in again.output
