"""The command line, in process: arguments, exit codes, stdout (data only) versus stderr
(diagnostics), and the state each command leaves behind, read back through the library."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from PIL import Image

from cli import main
from consent import audit, crypto, enrolment, registry
from consent.registry import Purpose
from consent.store import DB_NAME, DEFAULT_DIR, open_store
from tests.support import dirty
from tests.support.commands import ALL_COMMANDS
from tests.support.consent_factories import RegistryCsv
from tests.support.environment import REPO

SAMPLES = REPO / "sample_images"
EVENT_PHOTO = SAMPLES / "event" / "IMG_0001.jpg"
REFERENCE = SAMPLES / "references" / "P001.jpg"


def invoke(runner: CliRunner, data_dir: Path, *args: object) -> Result:
    """Run ``photoconsent --data-dir DATA_DIR ARGS...`` in process."""
    return runner.invoke(main, ["--data-dir", str(data_dir), *map(str, args)])


def audit_actions(data_dir: Path) -> list[str]:
    with open_store(data_dir) as store:
        return [e.action for e in audit.entries(store)]


def pupil_ids(data_dir: Path) -> list[str]:
    with open_store(data_dir) as store:
        return [p.pupil_id for p in registry.list_pupils(store.conn)]


def face_free_photo(path: Path) -> Path:
    """A plain JPEG without faces or metadata (publishing it needs only the detector)."""
    Image.fromarray(dirty.upright_pixels(160, 120), "RGB").save(path, "JPEG", quality=90)
    return path


# --- init ----------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["command option", "group option", "environment", "default"])
def test_init_creates_the_chosen_data_dir_and_is_idempotent(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    target = tmp_path / "chosen"
    args = {
        "command option": ["init", "--data-dir", str(target)],
        "group option": ["--data-dir", str(target), "init"],
        "environment": ["init"],
        "default": ["init"],
    }[how]
    if how == "environment":
        monkeypatch.setenv("PHOTOCONSENT_HOME", str(target))
    if how == "default":
        monkeypatch.chdir(tmp_path)
        target = tmp_path / DEFAULT_DIR

    first = runner.invoke(main, args)
    key = crypto.key_path(target).read_bytes()
    second = runner.invoke(main, args)

    assert (first.exit_code, second.exit_code) == (0, 0), first.stderr + second.stderr
    assert first.stdout == second.stdout == ""  # diagnostics only: nothing on stdout
    assert str(target) in first.stderr
    assert crypto.key_path(target).read_bytes() == key
    assert not crypto.key_path(target).is_relative_to(target)  # keys kept apart
    assert str(crypto.key_path(target).parent) in first.stderr  # and init says where
    assert audit_actions(target).count("init") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name, "user-config"]


def test_data_dir_option_beats_the_environment(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PHOTOCONSENT_HOME", str(tmp_path / "from-env"))

    result = runner.invoke(main, ["init", "--data-dir", str(tmp_path / "from-option")])

    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "from-option" / DB_NAME).is_file()
    assert not (tmp_path / "from-env").exists()


BEFORE_INIT = {
    "pupils list": ["pupils", "list"],
    "pupils import": ["pupils", "import", SAMPLES / "pupils.csv"],
    "enroll": ["enroll", "P001", REFERENCE],
    "enroll --folder": ["enroll", "--folder", SAMPLES / "references"],
    "publish": ["publish", "--purpose", "website", "--out", "{out}", EVENT_PHOTO],
    "check": ["check", "--purpose", "website", EVENT_PHOTO],
    "audit log": ["audit", "log"],
    "audit verify": ["audit", "verify"],
}


@pytest.mark.parametrize("args", BEFORE_INIT.values(), ids=BEFORE_INIT.keys())
def test_commands_before_init_say_run_init(
    runner: CliRunner, tmp_path: Path, args: list[object]
) -> None:
    data_dir, out = tmp_path / "nothing-here", tmp_path / "out"

    result = invoke(runner, data_dir, *(str(a).format(out=out) for a in args))

    assert result.exit_code == 1, result.output
    assert "photoconsent init" in result.stderr
    assert result.stdout == ""
    assert not data_dir.exists()
    assert not out.exists()


# --- pupils import / list --------------------------------------------------------------------


def test_pupils_import_records_every_pupil(
    runner: CliRunner, data_dir: Path, registry_csv: RegistryCsv
) -> None:
    csv_file = registry_csv(
        [
            {"pupil_id": "P001"},
            {"pupil_id": "P002", "website": "no", "biometric_consent": "no"},
            {"pupil_id": "P003", "press": "yes"},
        ]
    )

    result = invoke(runner, data_dir, "pupils", "import", csv_file)

    assert result.exit_code == 0, result.stderr
    assert "3 added" in result.stdout
    assert pupil_ids(data_dir) == ["P001", "P002", "P003"]
    with open_store(data_dir) as store:
        p2 = registry.current_consent(store.conn, "P002")
        p3 = registry.current_consent(store.conn, "P003")
    assert p2 is not None and p3 is not None
    assert Purpose.WEBSITE not in p2.purposes and not p2.biometric_consent
    assert {Purpose.WEBSITE, Purpose.PRESS} <= p3.purposes
    assert audit_actions(data_dir).count("consent_import") == 1


def test_reimporting_the_same_file_changes_nothing(
    runner: CliRunner, data_dir: Path, registry_csv: RegistryCsv
) -> None:
    csv_file = registry_csv([{"pupil_id": "P001"}, {"pupil_id": "P002"}])
    invoke(runner, data_dir, "pupils", "import", csv_file)

    result = invoke(runner, data_dir, "pupils", "import", "--json", csv_file)

    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["added"], summary["updated"], summary["unchanged"]) == (0, 0, 2)
    assert audit_actions(data_dir).count("pupil_add") == 2


MALFORMED = {
    "not yes or no": ([{"pupil_id": "P001"}, {"pupil_id": "P002", "website": "maybe"}], [3]),
    "bad date": ([{"pupil_id": "P001", "consent_date": "31/09/2024"}, {"pupil_id": "P002"}], [2]),
    "short line": ([{"pupil_id": "P001"}, "P009,Only,Three"], [3]),
    "duplicate id": ([{"pupil_id": "P001"}, {"pupil_id": "P002"}, {"pupil_id": "P001"}], [4]),
    "two bad lines": (
        [
            {"pupil_id": "P001", "press": "ja"},
            {"pupil_id": "P002"},
            {"pupil_id": "P003", "consent_date": "2024-13-01"},
        ],
        [2, 4],
    ),
}


@pytest.mark.parametrize(("rows", "bad_lines"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_import_names_the_lines_and_commits_nothing(
    runner: CliRunner,
    data_dir: Path,
    registry_csv: RegistryCsv,
    rows: list[dict[str, str] | str],
    bad_lines: list[int],
) -> None:
    before = audit_actions(data_dir)

    result = invoke(runner, data_dir, "pupils", "import", registry_csv(rows))

    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error: ")
    for line in bad_lines:
        assert f"line {line}:" in result.stderr
    good_lines = set(range(2, len(rows) + 2)) - set(bad_lines)
    assert not any(f"line {line}:" in result.stderr for line in good_lines)
    assert result.stdout == ""
    assert pupil_ids(data_dir) == []
    assert audit_actions(data_dir) == before


def test_pupils_list_json_shows_consent_and_references(
    runner: CliRunner, data_dir: Path, registry_csv: RegistryCsv
) -> None:
    csv_file = registry_csv(
        [{"pupil_id": "P001"}, {"pupil_id": "P002", "website": "no", "biometric_consent": "no"}]
    )
    invoke(runner, data_dir, "pupils", "import", csv_file)

    result = invoke(runner, data_dir, "pupils", "list", "--json")

    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [(r["pupil_id"], r["biometric_consent"], r["references"]) for r in rows] == [
        ("P001", True, 0),
        ("P002", False, 0),
    ]
    assert rows[0]["purposes"] == ["internal_display", "website"]
    assert rows[1]["purposes"] == ["internal_display"]


# --- enroll ----------------------------------------------------------------------------------

ENROLL_USAGE = {
    "nothing": [],
    "id without photo": ["P001"],
    "folder and id": ["--folder", SAMPLES / "references", "P001"],
    "folder and id and photo": ["--folder", SAMPLES / "references", "P001", REFERENCE],
}


@pytest.mark.parametrize("args", ENROLL_USAGE.values(), ids=ENROLL_USAGE.keys())
def test_enroll_usage_errors_exit_2(runner: CliRunner, data_dir: Path, args: list[object]) -> None:
    result = invoke(runner, data_dir, "enroll", *args)

    assert result.exit_code == 2, result.output
    assert "--folder" in result.stderr
    assert result.stdout == ""


@pytest.mark.slow
def test_enroll_without_biometric_consent_is_rejected(
    runner: CliRunner, data_dir: Path, registry_csv: RegistryCsv
) -> None:
    invoke(
        runner,
        data_dir,
        "pupils",
        "import",
        registry_csv([{"pupil_id": "P001", "biometric_consent": "no"}]),
    )

    result = invoke(runner, data_dir, "enroll", "P001", REFERENCE)

    assert result.exit_code == 1, result.output
    assert "biometric consent" in result.stderr
    assert "0 enrolled, 1 rejected" in result.stderr
    with open_store(data_dir) as store:
        assert enrolment.reference_counts(store.conn) == {}
        assert enrolment.load_gallery(store) == {}
    assert "reference_add" not in audit_actions(data_dir)


@pytest.mark.slow
@pytest.mark.parametrize("pupil_id", ["P002", "P404"], ids=["no biometric consent", "unknown"])
def test_enroll_computes_no_face_encoding_without_biometric_consent(
    runner: CliRunner,
    data_dir: Path,
    registry_csv: RegistryCsv,
    monkeypatch: pytest.MonkeyPatch,
    pupil_id: str,
) -> None:
    # Computing the encoding is already biometric processing: the consent check must come
    # before it, not only before the encoding is stored.
    import pipeline.recognisers
    import pipeline.references

    encoded: list[object] = []

    def spy(*args: object) -> list[np.ndarray]:
        boxes = args[-1]
        encoded.append(boxes)
        return [np.full(128, 0.05) for _ in boxes]  # type: ignore[attr-defined]

    # Landmarks (face geometry) and templates are both biometric processing.
    monkeypatch.setattr(pipeline.references, "dlib_landmarks", spy)
    for cls in pipeline.recognisers.RECOGNISERS.values():
        monkeypatch.setattr(cls, "encode", spy)
    invoke(
        runner,
        data_dir,
        "pupils",
        "import",
        registry_csv([{"pupil_id": "P001"}, {"pupil_id": "P002", "biometric_consent": "no"}]),
    )

    result = invoke(runner, data_dir, "enroll", pupil_id, REFERENCE)

    assert result.exit_code == 1, result.output
    assert encoded == []


# --- publish / check -------------------------------------------------------------------------

PUBLISH_USAGE = {
    "no purpose": (["--out", "{out}", EVENT_PHOTO], "--purpose"),
    "unknown purpose": (["--purpose", "billboard", "--out", "{out}", EVENT_PHOTO], "billboard"),
    "no out": (["--purpose", "website", EVENT_PHOTO], "--out"),
    "no photos": (["--purpose", "website", "--out", "{out}"], "PHOTOS"),
    "missing photo": (["--purpose", "website", "--out", "{out}", "{out}.jpg"], "does not exist"),
}


@pytest.mark.parametrize(("args", "mentions"), PUBLISH_USAGE.values(), ids=PUBLISH_USAGE.keys())
def test_publish_usage_errors_exit_2(
    runner: CliRunner, data_dir: Path, tmp_path: Path, args: list[object], mentions: str
) -> None:
    out = tmp_path / "out"

    result = invoke(runner, data_dir, "publish", *(str(a).format(out=out) for a in args))

    assert result.exit_code == 2, result.output
    assert mentions in result.stderr
    assert result.stdout == ""
    assert not out.exists()
    assert "publish" not in audit_actions(data_dir)


@pytest.mark.parametrize("purpose", ["billboard", "WEBSITE", ""])
def test_check_rejects_unknown_purposes(runner: CliRunner, data_dir: Path, purpose: str) -> None:
    result = invoke(runner, data_dir, "check", "--purpose", purpose, EVENT_PHOTO)

    assert result.exit_code == 2, result.output


@pytest.mark.slow
def test_publish_and_check_json_is_the_only_stdout(
    runner: CliRunner, data_dir: Path, tmp_path: Path
) -> None:
    photo, out = face_free_photo(tmp_path / "plain.jpg"), tmp_path / "out"

    published = invoke(
        runner, data_dir, "publish", "--purpose", "website", "--out", out, "--json", photo
    )
    checked = invoke(runner, data_dir, "check", "--purpose", "website", "--json", out)

    assert published.exit_code == 0, published.stderr
    report = json.loads(published.stdout)
    assert report["summary"]["published"] == 1
    assert report == json.loads((out / "report.json").read_text())
    assert checked.exit_code == 0, checked.output
    verdicts = json.loads(checked.stdout)
    assert [(Path(v["input"]).name, v["safe"]) for v in verdicts] == [("event-0001.jpg", True)]


@pytest.mark.slow
def test_publish_prints_nothing_on_stdout_without_json(
    runner: CliRunner, data_dir: Path, tmp_path: Path
) -> None:
    photo, out = face_free_photo(tmp_path / "plain.jpg"), tmp_path / "out"

    result = invoke(runner, data_dir, "publish", "--purpose", "website", "--out", out, photo)

    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert "1 published, 0 withheld" in result.stderr


@pytest.mark.slow
def test_check_json_reports_metadata_on_a_dirty_photo(
    runner: CliRunner, data_dir: Path, tmp_path: Path
) -> None:
    photo = dirty.make_dirty_jpeg(tmp_path / "dirty.jpg")

    result = invoke(runner, data_dir, "check", "--purpose", "website", "--json", photo)

    assert result.exit_code == 1, result.output
    (verdict,) = json.loads(result.stdout)
    assert verdict["safe"] is False
    assert any("metadata" in r for r in verdict["reasons"])
    assert dirty.NAME not in result.stdout + result.stderr


# --- audit -----------------------------------------------------------------------------------


def tamper(db: Path, kind: str) -> None:
    """Change the audit log behind photoconsent's back (dropping its guard triggers first)."""
    conn = sqlite3.connect(db)
    try:
        conn.execute("DROP TRIGGER audit_log_no_update")
        conn.execute("DROP TRIGGER audit_log_no_delete")
        if kind == "edit details":
            conn.execute(
                "UPDATE audit_log SET details = replace(details, '\"added\":2', '\"added\":1')"
                " WHERE action = 'consent_import'"
            )
        elif kind == "delete an entry":
            conn.execute(
                "DELETE FROM audit_log WHERE action = 'pupil_add' AND seq = "
                "(SELECT MIN(seq) FROM audit_log WHERE action = 'pupil_add')"
            )
        elif kind == "delete the newest entry":
            conn.execute("DELETE FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log)")
        elif kind == "change the operator":
            conn.execute("UPDATE audit_log SET operator = 'someone-else' WHERE seq = 2")
        assert conn.total_changes == 1
        conn.commit()
    finally:
        conn.close()


@pytest.mark.parametrize(
    "kind", ["edit details", "delete an entry", "delete the newest entry", "change the operator"]
)
def test_audit_verify_passes_then_fails_after_tampering(
    runner: CliRunner, data_dir: Path, registry_csv: RegistryCsv, kind: str
) -> None:
    invoke(
        runner,
        data_dir,
        "pupils",
        "import",
        registry_csv([{"pupil_id": "P001"}, {"pupil_id": "P002"}]),
    )
    intact = invoke(runner, data_dir, "audit", "verify")
    intact_json = invoke(runner, data_dir, "audit", "verify", "--json")

    tamper(data_dir / DB_NAME, kind)
    broken = invoke(runner, data_dir, "audit", "verify")
    broken_json = invoke(runner, data_dir, "audit", "verify", "--json")

    assert (intact.exit_code, intact_json.exit_code) == (0, 0), intact.output
    assert "intact" in intact.stdout
    assert json.loads(intact_json.stdout)["ok"] is True
    assert (broken.exit_code, broken_json.exit_code) == (1, 1), broken.output
    assert "TAMPERED" in broken.stderr
    assert broken.stdout == ""
    verdict = json.loads(broken_json.stdout)
    assert verdict["ok"] is False and verdict["problems"]


def test_audit_log_json_lists_entries_oldest_first(
    runner: CliRunner, data_dir: Path, registry_csv: RegistryCsv
) -> None:
    invoke(
        runner,
        data_dir,
        "pupils",
        "import",
        "--operator",
        "office",
        registry_csv([{"pupil_id": "P001"}, {"pupil_id": "P002"}]),
    )

    everything = invoke(runner, data_dir, "audit", "log", "--json")
    imports = invoke(runner, data_dir, "audit", "log", "--json", "--action", "pupil_add")
    newest = invoke(runner, data_dir, "audit", "log", "--json", "--limit", "1")

    assert everything.exit_code == imports.exit_code == newest.exit_code == 0
    entries = json.loads(everything.stdout)
    seqs = [e["seq"] for e in entries]
    assert seqs == list(range(1, len(entries) + 1))
    assert [e["action"] for e in entries][-3:] == ["pupil_add", "pupil_add", "consent_import"]
    added = json.loads(imports.stdout)
    assert [(e["operator"], e["details"]["pupil_id"]) for e in added] == [
        ("office", "P001"),
        ("office", "P002"),
    ]
    assert [e["seq"] for e in json.loads(newest.stdout)] == [seqs[-1]]
    # Names stay in the registry; they never reach the log.
    assert "FirstP001" not in everything.stdout and "LastP001" not in everything.stdout


# --- help ------------------------------------------------------------------------------------


def test_the_command_walk_finds_every_command() -> None:
    assert {" ".join(p) for p in ALL_COMMANDS} >= {
        "",
        "init",
        "pupils import",
        "pupils list",
        "enroll",
        "publish",
        "check",
        "audit log",
        "audit verify",
    }


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=lambda p: " ".join(("photoconsent", *p)))
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_exits_0_on_stdout(runner: CliRunner, path: tuple[str, ...], flag: str) -> None:
    result = runner.invoke(main, [*path, flag])

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Usage: ")
    assert result.stderr == ""


# --- a true end-to-end smoke test ------------------------------------------------------------


def photoconsent_executable() -> str:
    script = Path(sys.executable).parent / "photoconsent"
    found = str(script) if script.is_file() else shutil.which("photoconsent")
    if found is None:
        pytest.skip("the photoconsent entry point is not installed")
    return found


def test_installed_entry_point_runs_init_import_and_verify(
    tmp_path: Path, registry_csv: RegistryCsv
) -> None:
    exe, data = photoconsent_executable(), tmp_path / "data"
    env = {**os.environ, "PHOTOCONSENT_HOME": str(data)}
    csv_file = registry_csv([{"pupil_id": "P001"}])

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [exe, *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
        )

    steps = [run("init"), run("pupils", "import", str(csv_file)), run("audit", "verify")]

    assert [s.returncode for s in steps] == [0, 0, 0], [s.stderr for s in steps]
    assert steps[0].stdout == ""
    assert "intact" in steps[2].stdout
    assert pupil_ids(data) == ["P001"]
    assert run("pupils", "lst").returncode == 2
