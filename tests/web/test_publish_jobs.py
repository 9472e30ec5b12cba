"""Publish jobs survive a restart of the office app: each job folder's ``job.json`` is read
back by a new app over the same data directory. A finished publish gets its results grid
and its zip again; one the restart interrupted offers nothing but "run it again", which
resumes the batch (no photo made or audited twice); a damaged report.json offers nothing.

Publish runs for real, in-process, with a decider that finds no faces (no model loads).
"""

from __future__ import annotations

import io
import json
import os
import stat
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from consent import audit
from consent.store import open_store
from pipeline.errors import PipelineError
from publishing import publish as publish_module
from publishing.report import CAPTIONS_NAME, REPORT_NAME
from tests.web.conftest import FIRST, LAST, sign_in
from web import jobs
from web.app import create_app
from web.pages import AppSettings

real_publish = publish_module.publish
real_save_record = jobs.save_record
PHOTOS = 5


def no_faces(path: Path, loaded: object) -> list:
    return []


class Killed(BaseException):
    """The app's process dying in the middle of a publish."""


def quick(store, inputs, options, progress=None):  # type: ignore[no-untyped-def]
    return real_publish(store, inputs, options, progress=progress, decider=no_faces)


@pytest.fixture(autouse=True)
def no_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "publish", quick)


def png(shade: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((16, 24, 3), shade, np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def photos(n: int = PHOTOS) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("photos", (f"IMG_{i:04d}.png", png(30 * i), "image/png")) for i in range(n)]


@pytest.fixture
def restart(web_data: Path) -> Iterator[Callable[[], TestClient]]:
    """``restart()`` gives a client of a new app over the same data directory (the app
    stopped and started again), signed in as nobody."""
    opened: list[TestClient] = []

    def new() -> TestClient:
        client = TestClient(create_app(AppSettings(web_data, workers=1)))
        client.__enter__()
        opened.append(client)
        return client

    yield new
    for client in opened:
        client.__exit__(None, None, None)


def wait(client: TestClient, job_id: str) -> None:
    for _ in range(600):
        if client.get(f"/api/publish/{job_id}").json()["finished"]:
            # The thread writes job.json last, just after it says it has finished.
            record = json.loads(job_folder(client, job_id).joinpath("job.json").read_text())
            if record["state"] != "running":
                return
        time.sleep(0.05)
    raise AssertionError("the publish did not finish")


def job_folder(client: TestClient, job_id: str) -> Path:
    return client.app.state.settings.work / "publish" / job_id  # type: ignore[attr-defined]


def start(client: TestClient, csrf: str, event: str = "Sports day", **extra: object) -> str:
    data = {"csrf": csrf, "purpose": "website", "event": event, **extra}
    files = photos() if "folder" not in extra else None
    reply = client.post("/publish", data=data, files=files, follow_redirects=False)
    assert reply.status_code == 303, reply.text
    return reply.headers["location"].rsplit("/", 1)[1]


def zip_names(reply) -> list[str]:  # type: ignore[no-untyped-def]
    assert reply.status_code == 200, reply.text
    return sorted(zipfile.ZipFile(io.BytesIO(reply.content)).namelist())


def publish_entries(web_data: Path) -> list[str]:
    with open_store(web_data) as store:
        return sorted(e.details["output"] for e in audit.entries(store, action="publish"))


def kill_after(monkeypatch: pytest.MonkeyPatch, photos_done: int) -> None:
    """The next publish dies after ``photos_done`` photos, leaving its folder as a killed
    process would: outputs and journal rows so far, and job.json as written at the start
    (the dying process never writes the end)."""

    def dying(store, inputs, options, progress=None):  # type: ignore[no-untyped-def]
        record = options.out_dir.parent / jobs.JOB_FILE
        at_start = record.read_bytes()

        def step(done: int, total: int, result: object) -> None:
            if done == photos_done:
                raise Killed()

        try:
            return real_publish(store, inputs, options, progress=step, decider=no_faces)
        finally:
            monkeypatch.setattr(jobs, "save_record", lambda job: record.write_bytes(at_start))

    monkeypatch.setattr(jobs, "publish", dying)


def interrupted_job(
    restart: Callable[[], TestClient], monkeypatch: pytest.MonkeyPatch, photos_done: int = 2
) -> str:
    before = restart()
    kill_after(monkeypatch, photos_done)
    hook = threading.excepthook  # pytest's: it turns a thread's exception into a warning

    def expected(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is not Killed:
            hook(args)

    monkeypatch.setattr(threading, "excepthook", expected)
    job_id = start(before, sign_in(before, "office1"))
    thread = next(t for t in threading.enumerate() if t.name == f"publish-{job_id}")
    thread.join(30)
    monkeypatch.setattr(jobs, "publish", quick)
    monkeypatch.setattr(jobs, "save_record", real_save_record)
    return job_id


# --- a finished publish -------------------------------------------------------------


def test_a_finished_publish_is_there_after_a_restart(
    restart: Callable[[], TestClient], web_data: Path
) -> None:
    before = restart()
    job_id = start(before, sign_in(before, "office1"), destination="school website")
    wait(before, job_id)
    first_zip = zip_names(before.get(f"/publish/{job_id}/download"))
    assert len(first_zip) == PHOTOS

    after = restart()
    sign_in(after, "office1")
    page = after.get(f"/publish/{job_id}")
    assert page.status_code == 200
    assert f"{PHOTOS} published, 0 withheld" in page.text
    assert page.text.count('class="pair"') == PHOTOS
    assert f"/publish/{job_id}/download" in page.text
    assert zip_names(after.get(f"/publish/{job_id}/download")) == first_zip
    for which in ("before", "after"):
        thumb = after.get(f"/publish/{job_id}/0/{which}.jpg")
        assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8"
    # The restart published nothing and audited nothing.
    assert len(publish_entries(web_data)) == PHOTOS


def test_the_recent_list_finds_an_earlier_publish(restart: Callable[[], TestClient]) -> None:
    before = restart()
    csrf = sign_in(before, "office1")
    first = start(before, csrf, event="Sports day")
    wait(before, first)
    second = start(before, csrf, event="Harvest festival")
    wait(before, second)

    after = restart()
    sign_in(after, "office1")
    page = after.get("/publish").text
    recent = page.split("Recent publishes")[1]
    assert recent.index("Harvest festival") < recent.index("Sports day")  # latest first
    assert f'href="/publish/{first}"' in recent and f'href="/publish/{second}"' in recent
    assert f"{PHOTOS} published, 0 withheld" in recent and "Finished" in recent
    started = jobs.load_jobs(after.app.state.settings.work)[first].started  # type: ignore[attr-defined]
    from web.words import uk_date

    assert uk_date(started.astimezone()) in recent  # "3 December 2026", never 03/12/2026
    assert "by office1" in recent


def test_job_json_is_private_and_names_nobody(
    restart: Callable[[], TestClient], tmp_path: Path
) -> None:
    client = restart()
    csrf = sign_in(client, "office1")
    captions = f"file,caption\nIMG_0001.png,{FIRST} {LAST} wins the race\n".encode()
    reply = client.post(
        "/publish",
        data={"csrf": csrf, "purpose": "website", "event": "Sports day"},
        files=[*photos(), ("captions", ("captions.csv", captions, "text/csv"))],
        follow_redirects=False,
    )
    job_id = reply.headers["location"].rsplit("/", 1)[1]
    wait(client, job_id)
    folder = job_folder(client, job_id)
    path = folder / jobs.JOB_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # The captions as given name pupils in full: gone once the publish has made its own.
    assert not (folder / jobs.CAPTIONS_GIVEN).exists()
    text = path.read_text(encoding="utf-8")
    assert FIRST not in text and LAST not in text
    assert os.sep + "tmp" not in text and str(folder) not in text  # no absolute paths
    record = json.loads(text)
    assert record == record | {
        "job_id": job_id,
        "owner": "office1",
        "purpose": "website",
        "event": "Sports day",
        "source": "upload",
        "inputs": [f"IMG_{i:04d}.png" for i in range(PHOTOS)],
        "captions": False,
        "state": "published",
        "published": PHOTOS,
        "withheld": 0,
        "review_batch": None,
        "error": None,
    }
    assert not list(folder.glob(".job.json.tmp*"))  # replaced in one step, no temp left


def test_the_chosen_folder_is_not_written_down(
    restart: Callable[[], TestClient], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chosen = tmp_path / f"{FIRST} party"
    chosen.mkdir()
    (chosen / "a.png").write_bytes(png(10))

    def fails(store, inputs, options, progress=None):  # type: ignore[no-untyped-def]
        raise PipelineError(f"{inputs[0]}/a.png could not be read")

    monkeypatch.setattr(jobs, "publish", fails)
    before = restart()
    job_id = start(before, sign_in(before, "office1"), folder=str(chosen))
    wait(before, job_id)
    text = (job_folder(before, job_id) / jobs.JOB_FILE).read_text(encoding="utf-8")
    assert str(chosen) not in text and FIRST not in text
    assert json.loads(text)["error"] == "the chosen folder/a.png could not be read"

    after = restart()
    sign_in(after, "office1")
    page = after.get(f"/publish/{job_id}").text
    assert "the chosen folder/a.png could not be read" in page
    assert "Run it again" not in page and "publish that folder again" in page


# --- an interrupted publish ---------------------------------------------------------


def test_an_interrupted_publish_offers_nothing_but_running_it_again(
    restart: Callable[[], TestClient], monkeypatch: pytest.MonkeyPatch, web_data: Path
) -> None:
    job_id = interrupted_job(restart, monkeypatch, photos_done=2)
    made = publish_entries(web_data)
    assert len(made) == 2  # two photos were made and audited before the app died

    after = restart()
    csrf = sign_in(after, "office1")
    page = after.get(f"/publish/{job_id}")
    assert "Interrupted" in page.text and "Nothing from it was published unless listed" in page.text
    for name in made:
        assert name in page.text
    assert "/download" not in page.text and "Run it again" in page.text
    assert after.get(f"/publish/{job_id}/download").status_code == 404
    assert after.get(f"/publish/{job_id}/0/after.jpg").status_code == 404
    assert "Interrupted" in after.get("/publish").text.split("Recent publishes")[1]

    reply = after.post(f"/publish/{job_id}/again", data={"csrf": csrf}, follow_redirects=False)
    assert reply.status_code == 303 and reply.headers["location"] == f"/publish/{job_id}"
    wait(after, job_id)
    page = after.get(f"/publish/{job_id}")
    assert f"{PHOTOS} published, 0 withheld" in page.text
    assert len(zip_names(after.get(f"/publish/{job_id}/download"))) == PHOTOS
    # Resumed: the two made before are kept, not made or audited again.
    assert len(publish_entries(web_data)) == PHOTOS and set(made) <= set(publish_entries(web_data))
    report = json.loads((job_folder(after, job_id) / "out" / REPORT_NAME).read_text())
    assert report["summary"]["resumed"] == 2
    visible = [p for p in (job_folder(after, job_id) / "out").iterdir() if p.suffix == ".jpg"]
    assert len(visible) == PHOTOS and not list((job_folder(after, job_id) / "out").glob(".*"))

    # And after one more restart it is an ordinary finished publish.
    later = restart()
    sign_in(later, "office1")
    assert f"{PHOTOS} published, 0 withheld" in later.get(f"/publish/{job_id}").text


def test_an_interrupted_publish_keeps_its_captions_privately_until_it_is_run_again(
    restart: Callable[[], TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = restart()
    kill_after(monkeypatch, 2)
    hook = threading.excepthook

    def expected(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is not Killed:
            hook(args)

    monkeypatch.setattr(threading, "excepthook", expected)
    captions = f"file,caption\nIMG_0001.png,{FIRST} {LAST} wins the race\n".encode()
    reply = before.post(
        "/publish",
        data={"csrf": sign_in(before, "office1"), "purpose": "website", "event": "Sports day"},
        files=[*photos(), ("captions", ("captions.csv", captions, "text/csv"))],
        follow_redirects=False,
    )
    job_id = reply.headers["location"].rsplit("/", 1)[1]
    next(t for t in threading.enumerate() if t.name == f"publish-{job_id}").join(30)
    monkeypatch.setattr(jobs, "publish", quick)
    monkeypatch.setattr(jobs, "save_record", real_save_record)
    folder = job_folder(before, job_id)
    assert stat.S_IMODE((folder / jobs.CAPTIONS_GIVEN).stat().st_mode) == 0o600

    after = restart()
    csrf = sign_in(after, "office1")
    after.post(f"/publish/{job_id}/again", data={"csrf": csrf}, follow_redirects=False)
    wait(after, job_id)
    # The rerun used them (the website's name policy shortened the name), then let go.
    made = (folder / "out" / CAPTIONS_NAME).read_text(encoding="utf-8")
    assert "wins the race" in made and LAST not in made
    assert not (folder / jobs.CAPTIONS_GIVEN).exists()


def test_running_it_again_twice_starts_one_run(
    restart: Callable[[], TestClient], monkeypatch: pytest.MonkeyPatch, web_data: Path
) -> None:
    job_id = interrupted_job(restart, monkeypatch)
    after = restart()
    csrf = sign_in(after, "office1")
    first = after.app.state.jobs[job_id]  # type: ignore[attr-defined]
    after.post(f"/publish/{job_id}/again", data={"csrf": csrf})
    second = after.post(f"/publish/{job_id}/again", data={"csrf": csrf}, follow_redirects=False)
    assert second.status_code == 303
    wait(after, job_id)
    assert after.app.state.jobs[job_id] is not first  # type: ignore[attr-defined]
    assert len(publish_entries(web_data)) == PHOTOS


def test_an_interrupted_publish_with_a_photo_gone_cannot_be_run_again(
    restart: Callable[[], TestClient], monkeypatch: pytest.MonkeyPatch, web_data: Path
) -> None:
    job_id = interrupted_job(restart, monkeypatch)
    after = restart()
    (job_folder(after, job_id) / "in" / "IMG_0004.png").unlink()
    csrf = sign_in(after, "office1")
    reply = after.post(f"/publish/{job_id}/again", data={"csrf": csrf})
    assert reply.status_code == 409 and "no longer all" in reply.text
    assert len(publish_entries(web_data)) == 2  # nothing more was published


# --- a damaged report ---------------------------------------------------------------


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.write_bytes(p.read_bytes()[:200]),
        lambda p: p.unlink(),
        lambda p: p.write_text(p.read_text().replace('"published": 5', '"published": 6')),
    ],
    ids=["truncated", "deleted", "summary edited"],
)
def test_a_damaged_report_fails_closed_after_a_restart(
    restart: Callable[[], TestClient], damage: Callable[[Path], None]
) -> None:
    before = restart()
    job_id = start(before, sign_in(before, "office1"))
    wait(before, job_id)
    damage(job_folder(before, job_id) / "out" / REPORT_NAME)

    after = restart()
    csrf = sign_in(after, "office1")
    page = after.get(f"/publish/{job_id}")
    assert page.status_code == 200
    assert "results could not be read" in page.text
    assert "/download" not in page.text and 'class="pair"' not in page.text
    assert after.get(f"/publish/{job_id}/download").status_code == 404
    assert after.get(f"/publish/{job_id}/0/before.jpg").status_code == 404
    assert "Results could not be read" in after.get("/publish").text
    # Running it again rebuilds the report from the journal, publishing nothing new.
    after.post(f"/publish/{job_id}/again", data={"csrf": csrf})
    wait(after, job_id)
    assert f"{PHOTOS} published, 0 withheld" in after.get(f"/publish/{job_id}").text


def test_a_published_copy_changed_since_is_not_zipped(restart: Callable[[], TestClient]) -> None:
    before = restart()
    job_id = start(before, sign_in(before, "office1"))
    wait(before, job_id)
    first = sorted((job_folder(before, job_id) / "out").glob("*.jpg"))[0]
    first.write_bytes(png(200))  # someone replaced a published copy by hand

    after = restart()
    sign_in(after, "office1")
    reply = after.get(f"/publish/{job_id}/download")
    assert reply.status_code == 409 and first.name in reply.text
    assert reply.headers["content-type"].startswith("text/html")


def test_a_damaged_job_json_is_not_listed(restart: Callable[[], TestClient]) -> None:
    before = restart()
    job_id = start(before, sign_in(before, "office1"))
    wait(before, job_id)
    (job_folder(before, job_id) / jobs.JOB_FILE).write_text('{"version": 1, "job_id": ')

    after = restart()
    sign_in(after, "office1")
    assert after.get(f"/publish/{job_id}").status_code == 404
    assert job_id not in after.get("/publish").text


def test_a_review_job_still_leads_to_its_review(
    restart: Callable[[], TestClient], web_data: Path
) -> None:
    client = restart()
    settings = client.app.state.settings  # type: ignore[attr-defined]
    job_id, folder = jobs.new_job_folder(settings.work)
    (folder / "in" / "a.png").write_bytes(png(1))
    from consent.registry import Purpose
    from publishing.options import PublishOptions

    job = jobs.PublishJob(
        job_id, "office1", folder, [folder / "in"],
        PublishOptions(purpose=Purpose.PRESS, out_dir=folder / "out", event="Play"),
        review=True, finished=True, review_batch="20261202-120000-abcd", photo_names=["a.png"],
    )  # fmt: skip
    jobs.save_record(job)

    after = restart()
    sign_in(after, "office1")
    reply = after.get(f"/publish/{job_id}", follow_redirects=False)
    assert reply.status_code == 303
    assert reply.headers["location"] == "/review/20261202-120000-abcd"


# --- who may see it -----------------------------------------------------------------


@pytest.mark.parametrize("account", ["readonly1", "dpo1", "medical1"])
def test_after_a_restart_other_roles_are_refused(
    restart: Callable[[], TestClient], monkeypatch: pytest.MonkeyPatch, account: str
) -> None:
    job_id = interrupted_job(restart, monkeypatch)
    after = restart()
    csrf = sign_in(after, account)
    pages = ["", "/download", "/0/before.jpg"]
    for path in [f"/publish/{job_id}{p}" for p in pages] + [f"/api/publish/{job_id}", "/publish"]:
        reply = after.get(path)
        assert reply.status_code == 403, (path, reply.status_code)
    reply = after.post(f"/publish/{job_id}/again", data={"csrf": csrf})
    assert reply.status_code == 403 and "cannot" in reply.text
    assert after.app.state.jobs[job_id].interrupted  # type: ignore[attr-defined]


def test_another_office_account_sees_and_reruns_it(
    restart: Callable[[], TestClient], monkeypatch: pytest.MonkeyPatch, web_data: Path
) -> None:
    """As before restarts: every account that may publish sees every publish (a shared
    office); the new run is audited under whoever ran it again."""
    with open_store(web_data) as store:
        from tests.web.conftest import PASSWORD
        from web import accounts

        accounts.create_account(store, "office2", PASSWORD, accounts.Role.OFFICE, operator="t")
    job_id = interrupted_job(restart, monkeypatch)
    after = restart()
    csrf = sign_in(after, "office2")
    assert "Interrupted" in after.get(f"/publish/{job_id}").text
    after.post(f"/publish/{job_id}/again", data={"csrf": csrf})
    wait(after, job_id)
    with open_store(web_data) as store:
        operators = [e.operator for e in audit.entries(store, action="publish")]
    assert operators.count("office1") == 2 and operators.count("office2") == PHOTOS - 2


def test_a_reviewed_publish_is_not_run_again_from_its_folder(
    restart: Callable[[], TestClient], tmp_path: Path, web_data: Path
) -> None:
    """*Publish as reviewed* runs on the review batch's photos, outside the job's in/:
    its job.json names none of them, and after a restart it points back to Review."""
    from consent.registry import Purpose
    from publishing.options import PublishOptions

    client = restart()
    settings = client.app.state.settings  # type: ignore[attr-defined]
    elsewhere = tmp_path / f"{FIRST} at sports day.png"
    elsewhere.write_bytes(png(3))
    job_id, folder = jobs.new_job_folder(settings.work)
    options = PublishOptions(purpose=Purpose.PRESS, out_dir=folder / "out", event="Play")
    job = jobs.PublishJob(
        job_id, "office1", folder, [elsewhere], options, source=jobs.Source.REVIEWED
    )

    def fails(store, progress):  # type: ignore[no-untyped-def]
        raise PipelineError(f"{elsewhere} could not be read")

    jobs.start(job, web_data, fails).join(30)
    record = json.loads((folder / jobs.JOB_FILE).read_text(encoding="utf-8"))
    assert record["source"] == "reviewed" and record["inputs"] == []
    assert record["error"] == "a reviewed photo could not be read"
    assert FIRST not in json.dumps(record)

    after = restart()
    sign_in(after, "office1")
    page = after.get(f"/publish/{job_id}").text
    assert "Run it again" not in page and 'href="/review"' in page
