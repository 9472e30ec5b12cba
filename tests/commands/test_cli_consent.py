"""The consent-change, takedown, leaver and subject access commands through the CLI, with
the state checked through the library; the publish scenarios run the face models on the
bundled samples (IMG_0001 shows P001, who is enrolled, and an unenrolled adult)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli import main
from consent import audit, enrolment, registry
from consent.store import open_store
from tests.support.consent_factories import RegistryCsv
from tests.support.environment import REPO

SAMPLES = REPO / "sample_images"
IMG1 = SAMPLES / "event" / "IMG_0001.jpg"
IMG2 = SAMPLES / "event" / "IMG_0002.jpg"


def invoke(runner: CliRunner, data_dir: Path, *args: object, **kw: Any) -> Result:
    return runner.invoke(main, ["--data-dir", str(data_dir), *map(str, args)], **kw)


@pytest.fixture
def registered(runner: CliRunner, data_dir: Path, registry_csv: RegistryCsv) -> Path:
    csv = registry_csv([{"pupil_id": "P001"}, {"pupil_id": "P002"}])
    assert invoke(runner, data_dir, "pupils", "import", csv).exit_code == 0
    return data_dir


def test_withdraw_set_and_show(runner: CliRunner, registered: Path) -> None:
    out = invoke(
        runner,
        registered,
        "consent",
        "withdraw",
        "P001",
        "--purpose",
        "website",
        "--source",
        "letter 1",
        "--operator",
        "office",
        "--json",
    )
    assert out.exit_code == 0, out.output
    payload = json.loads(out.stdout)
    assert payload["purposes"]["website"] is False and payload["takedown"] == []

    out = invoke(
        runner,
        registered,
        "consent",
        "set",
        "P001",
        "--purpose",
        "press",
        "--expires",
        "2030-07-31",
        "--source",
        "slip 2",
    )
    assert out.exit_code == 0, out.output
    assert "press" in out.stdout and "use-by 2030-07-31" in out.stdout

    shown = invoke(runner, registered, "consent", "show", "P001", "--json")
    history = json.loads(shown.stdout)["history"]
    assert [v["kind"] for v in history] == ["import", "withdraw", "set"]
    assert history[1]["changed"] == {"website": [True, False]}
    assert history[2]["source"] == "slip 2"
    text = invoke(runner, registered, "consent", "show", "P001")
    assert "website True->False" in text.stdout and "letter 1" in text.stdout
    verify = invoke(runner, registered, "audit", "verify")
    assert verify.exit_code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["consent", "withdraw", "P001", "--source", "x"], "--purpose, --biometric or --all"),
        (["consent", "set", "P001", "--source", "x"], "--purpose, --biometric"),
        (["consent", "withdraw", "P001", "--purpose", "website"], "--source"),
        (["takedown", "P001", "--republish"], "--out"),
        (["retention", "set", "biometrics", "soon"], "DAYS"),
    ],
)
def test_usage_errors_exit_2(
    runner: CliRunner, registered: Path, args: list[str], message: str
) -> None:
    result = invoke(runner, registered, *args)
    assert result.exit_code == 2 and message in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["consent", "withdraw", "P404", "--all", "--source", "x"], "No pupil 'P404'"),
        (["consent", "withdraw", "P001", "--purpose", "press", "--source", "x"], "already"),
        (["forget", "P404", "--yes"], "No pupil"),
        (["export", "P404", "--out", "nowhere"], "No pupil"),
    ],
)
def test_errors_exit_1(runner: CliRunner, registered: Path, args: list[str], message: str) -> None:
    result = invoke(runner, registered, *args)
    assert result.exit_code == 1 and message in result.stderr


def test_leave_purge_retention_and_forget(runner: CliRunner, registered: Path) -> None:
    import numpy as np

    with open_store(registered) as store:
        for i, pid in enumerate(["P001", "P002"]):
            enrolment.add_reference(
                store, pid, np.full(128, i + 1.0), source_sha256=f"{i:064x}", operator="t"
            )
    assert invoke(runner, registered, "retention", "set", "biometrics", "10").exit_code == 0
    shown = invoke(runner, registered, "retention", "show", "--json")
    assert json.loads(shown.stdout)["biometrics"] == 10

    left = invoke(runner, registered, "pupils", "leave", "P001", "--date", "2999-07-01", "--json")
    assert left.exit_code == 0 and json.loads(left.stdout) == []
    dry = invoke(runner, registered, "purge", "--date", "2999-07-11", "--dry-run", "--json")
    assert [p["pupil_id"] for p in json.loads(dry.stdout)] == ["P001"]
    done = invoke(runner, registered, "purge", "--date", "2999-07-11")
    assert done.exit_code == 0 and "P001\tbiometrics\t1 deleted" in done.stdout

    refused = invoke(runner, registered, "forget", "P002", input="n\n")
    assert refused.exit_code == 1
    forgot = invoke(runner, registered, "forget", "P002", "--source", "letter 3", "--yes")
    assert forgot.exit_code == 0, forgot.output
    with open_store(registered) as store:
        assert enrolment.reference_counts(store.conn) == {}
        assert registry.get_pupil(store.conn, "P002").first_name == ""
        actions = [e.action for e in audit.entries(store)]
        assert {"retention_set", "pupil_leave", "purge", "pupil_erase"} <= set(actions)
        assert audit.verify(store).ok


def test_export_and_transfer(runner: CliRunner, registered: Path, tmp_path: Path) -> None:
    sar = tmp_path / "sar"
    result = invoke(runner, registered, "export", "P001", "--out", sar, "--json")
    assert result.exit_code == 0, result.output
    assert "biometrics.json" in json.loads(result.stdout)["files"]
    moved = invoke(runner, registered, "export", "P001", "--transfer", "--out", tmp_path / "t")
    assert moved.exit_code == 0
    assert not (tmp_path / "t" / "biometrics.json").exists()


# --- with the face models: withdraw, publish, takedown, republish, expiry ------------------


@dataclass
class Scenario:
    data_dir: Path
    runner: CliRunner
    tmp: Path
    before: dict[str, dict[str, Any]]  # event -> audit details of the publish of IMG_0001


def publish(
    s: Scenario, out: str, photo: Path, purpose: str, event: str, day: str, *extra: str
) -> Result:
    return invoke(
        s.runner,
        s.data_dir,
        "publish",
        "--purpose",
        purpose,
        "--event",
        event,
        "--date",
        day,
        "--operator",
        "teacher-1",
        "--quiet",
        "--out",
        s.tmp / out,
        *extra,
        "--",
        photo,
    )


def publish_entry(s: Scenario, event: str, day: str) -> dict[str, Any]:
    with open_store(s.data_dir) as store:
        (found,) = [
            e.details
            for e in audit.entries(store, action="publish")
            if e.details["event"] == event and e.details["publish_date"] == day
        ]
    return found


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    """P001 published for several events and purposes, then website and internal display
    withdrawn."""
    tmp = tmp_path_factory.mktemp("consent-scenario")
    runner = CliRunner()
    s = Scenario(tmp / "data", runner, tmp, {})
    steps = [
        runner.invoke(main, ["init", "--data-dir", str(s.data_dir)]),
        invoke(runner, s.data_dir, "pupils", "import", SAMPLES / "pupils.csv"),
        invoke(runner, s.data_dir, "enroll", "--folder", SAMPLES / "references"),
        publish(
            s,
            "w1",
            IMG1,
            "website",
            "Sports day",
            "2026-10-01",
            "--destination",
            "https://school.example/news",
        ),
        publish(s, "p1", IMG1, "prospectus", "Prospectus", "2026-10-01"),
        publish(s, "i1", IMG1, "internal_display", "Open day", "2026-10-02"),
        publish(s, "w2", IMG2, "website", "Concert", "2026-10-03"),
        invoke(
            runner,
            s.data_dir,
            "consent",
            "withdraw",
            "P001",
            "--purpose",
            "website",
            "--purpose",
            "internal_display",
            "--source",
            "letter 2026-10-04",
        ),
    ]
    assert [r.exit_code for r in steps] == [0] * len(steps), [r.output for r in steps]
    for event, day in [
        ("Sports day", "2026-10-01"),
        ("Prospectus", "2026-10-01"),
        ("Open day", "2026-10-02"),
    ]:
        s.before[event] = publish_entry(s, event, day)
        assert s.before[event]["pupils_kept"] == ["P001"]
    return s


slow = pytest.mark.slow  # these run the face detector


@slow
def test_takedown_lists_exactly_the_earlier_publishes_that_kept_the_pupil(
    scenario: Scenario,
) -> None:
    result = invoke(scenario.runner, scenario.data_dir, "takedown", "P001", "--json")
    items = json.loads(result.stdout)["items"]
    assert [(i["event"], i["purpose"], i["output"]) for i in items] == [
        ("Sports day", "website", scenario.before["Sports day"]["output"]),
        ("Open day", "internal_display", scenario.before["Open day"]["output"]),
    ]
    assert items[0]["destination"] == "https://school.example/news"
    assert items[0]["operator"] == "teacher-1" and items[0]["publish_date"] == "2026-10-01"
    assert all(i["replaced_by"] is None for i in items)


@slow
def test_the_next_publish_blurs_the_withdrawn_pupil(scenario: Scenario) -> None:
    result = publish(scenario, "w3", IMG1, "website", "After", "2026-10-05")
    assert result.exit_code == 0, result.output
    details = publish_entry(scenario, "After", "2026-10-05")
    assert details["pupils_kept"] == [] and details["faces_blurred"] == 2
    # The prospectus permission was not withdrawn: still kept there.
    kept = publish(scenario, "p2", IMG1, "prospectus", "Prospectus 2", "2026-10-05")
    assert kept.exit_code == 0
    assert publish_entry(scenario, "Prospectus 2", "2026-10-05")["pupils_kept"] == ["P001"]


@slow
def test_expiry_is_honoured_at_publish_time(scenario: Scenario) -> None:
    changed = invoke(
        scenario.runner,
        scenario.data_dir,
        "consent",
        "set",
        "P001",
        "--expires",
        "2026-10-31",
        "--source",
        "use-by letter",
    )
    assert changed.exit_code == 0, changed.output
    publish(scenario, "e1", IMG1, "prospectus", "Before expiry", "2026-10-31")
    publish(scenario, "e2", IMG1, "prospectus", "After expiry", "2026-11-01")
    assert publish_entry(scenario, "Before expiry", "2026-10-31")["pupils_kept"] == ["P001"]
    assert publish_entry(scenario, "After expiry", "2026-11-01")["pupils_kept"] == []


@slow
def test_republish_replaces_and_is_audited(scenario: Scenario) -> None:
    out = scenario.tmp / "replacements"
    result = invoke(
        scenario.runner,
        scenario.data_dir,
        "takedown",
        "P001",
        "--purpose",
        "website",
        "--purpose",
        "internal_display",
        "--date",
        "2026-10-06",
        "--republish",
        "--out",
        out,
        "--operator",
        "office",
        "--json",
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert [o["status"] for o in payload["republish"]] == ["replaced", "replaced"]
    assert all(i["replaced_by"] for i in payload["items"])
    with open_store(scenario.data_dir) as store:
        links = audit.entries(store, action="takedown_republish")
        assert [link.details["replaced_output_sha256"] for link in links] == [
            scenario.before["Sports day"]["output_sha256"],
            scenario.before["Open day"]["output_sha256"],
        ]
        for link in links:
            assert (out / link.details["new_output"]).is_file()
        new = [
            e.details
            for e in audit.entries(store, action="publish")
            if e.details["publish_date"] == "2026-10-06"
        ]
        assert len(new) == 2 and all(d["pupils_kept"] == [] for d in new)
        assert new[0]["destination"] == "https://school.example/news"
        assert audit.verify(store).ok


@slow
def test_history_and_audit_show_every_change(scenario: Scenario) -> None:
    shown = invoke(scenario.runner, scenario.data_dir, "consent", "show", "P001", "--json")
    kinds = [v["kind"] for v in json.loads(shown.stdout)["history"]]
    assert kinds[:2] == ["import", "withdraw"]
    verify = invoke(scenario.runner, scenario.data_dir, "audit", "verify", "--json")
    assert json.loads(verify.stdout)["ok"] is True
