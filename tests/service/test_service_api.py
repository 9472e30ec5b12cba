"""The web service over real HTTP on loopback: uvicorn in a thread, httpx as the client.

Most tests replace face detection with a fixed decider (the same hook a reviewed batch
uses), so they exercise the HTTP layer, the pipeline's redaction, writing and audit for
real and stay fast; the last tests run the real face models on the bundled samples.
"""

from __future__ import annotations

import base64
import io
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import numpy as np
import piexif
import pytest
import uvicorn
from PIL import Image

from consent import audit
from consent.registry import import_pupils_csv
from consent.store import init_data_dir, open_store
from pipeline.boxes import Box
from pipeline.formats.findings import find_metadata
from pipeline.matching import Decision, FaceDecision, Reason
from service import tokens
from service.app import ServiceSettings, create_app
from service.server import build_server
from tests.support.consent_factories import pupil_row, write_registry_csv
from tests.support.environment import REPO

SIZE = (320, 240)
FACE = Box(40, 40, 60, 60)
OTHER = Box(200, 60, 60, 60)


@dataclass
class FakeFaces:
    """The decisions the fixed decider hands out; each test sets its own."""

    faces: list[FaceDecision] = field(default_factory=list)
    calls: int = 0

    def factory(self, store: Any, options: Any) -> Any:
        def decide(photo: Path, loaded: Any) -> list[FaceDecision]:
            self.calls += 1
            return list(self.faces)

        return decide


@dataclass
class Server:
    url: str
    token: str
    data_dir: Path
    faces: FakeFaces

    def post(self, path: str, token: str | None = "default", **kwargs: Any) -> httpx.Response:
        headers = kwargs.pop("headers", {})
        chosen = self.token if token == "default" else token
        if chosen is not None:
            headers["Authorization"] = f"Bearer {chosen}"
        return httpx.post(self.url + path, headers=headers, timeout=60, **kwargs)


def kept(pupil: str, box: Box = FACE) -> FaceDecision:
    return FaceDecision(box, Decision.KEPT, Reason.MATCHED_WITH_CONSENT, pupil, 0.3)


def blurred(box: Box = OTHER) -> FaceDecision:
    return FaceDecision(box, Decision.BLURRED, Reason.NO_MATCH)


def photo(fmt: str = "JPEG", size: tuple[int, int] = SIZE, **save: Any) -> bytes:
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, fmt, **save)
    return out.getvalue()


def captioned_jpeg(caption: str) -> bytes:
    exif = piexif.dump({"0th": {piexif.ImageIFD.ImageDescription: caption.encode()}})
    return photo(exif=exif)


def start(app: Any) -> tuple[uvicorn.Server, threading.Thread, str]:
    """Serve ``app`` as `photoconsent serve` does (its protocol and limits), on loopback."""
    service = app.app.state.service
    server = build_server(
        app, service.settings.limits, service.refusals, "127.0.0.1", 0, log_level="warning"
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("service")
    data_dir = root / "data"
    init_data_dir(data_dir)
    csv_path = write_registry_csv(
        root / "pupils.csv",
        [
            pupil_row("P001", first_name="Amelia", last_name="Hart"),
            pupil_row("P002", first_name="Ben", last_name="Stone", website="no"),
        ],
    )
    with open_store(data_dir) as store:
        import_pupils_csv(store, csv_path, operator="office")
        token = tokens.create_token(store, "website", operator="office")
        tokens.create_token(store, "old-plugin", operator="office")
    faces = FakeFaces()
    settings = ServiceSettings(data_dir=data_dir, max_upload_bytes=1_000_000, max_pixels=500_000)
    app = create_app(settings, decider_factory=faces.factory)
    uv, thread, url = start(app)
    yield Server(url, token, data_dir, faces)
    uv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(autouse=True)
def _no_faces(request: pytest.FixtureRequest) -> None:
    if "server" in request.fixturenames:
        request.getfixturevalue("server").faces.faces = []


def api_entries(data_dir: Path) -> list[audit.AuditEntry]:
    with open_store(data_dir) as store:
        return [e for e in audit.entries(store) if e.action == "api_request"]


def check(
    server: Server, data: bytes, name: str = "IMG_0001.jpg", token: str = "default", **form: str
) -> httpx.Response:
    return server.post(
        "/check",
        token=token,
        files={"file": (name, data, "image/jpeg")},
        data={"purpose": "website", **form},
    )


# --- open endpoints and authentication -----------------------------------------------------


def test_health_and_openapi_need_no_token(server: Server) -> None:
    health = httpx.get(server.url + "/health")
    spec = httpx.get(server.url + "/openapi.json")

    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert spec.status_code == 200
    assert {"/check", "/publish", "/health"} <= set(spec.json()["paths"])
    assert httpx.get(server.url + "/docs").status_code in (401, 404)  # no CDN-backed page


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer pct_not-a-real-token", "Basic dXNlcjpwYXNz", "pct_raw"],
    ids=["missing", "empty", "wrong", "basic", "no-scheme"],
)
def test_requests_without_a_valid_token_get_401(server: Server, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    before, calls = len(api_entries(server.data_dir)), server.faces.calls

    response = httpx.post(
        server.url + "/check",
        headers=headers,
        files={"file": ("a.jpg", photo(), "image/jpeg")},
        data={"purpose": "website"},
    )

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "token" in response.json()["detail"]
    assert server.faces.calls == calls  # nothing ran
    assert len(api_entries(server.data_dir)) == before


def test_a_revoked_token_stops_working_at_once(server: Server) -> None:
    with open_store(server.data_dir) as store:
        token = tokens.create_token(store, "to-revoke", operator="office")
    assert check(server, photo(), token=token).status_code == 200

    with open_store(server.data_dir) as store:
        tokens.revoke_token(store, "to-revoke", operator="office")

    assert check(server, photo(), token=token).status_code == 401


# --- limits ------------------------------------------------------------------------------------


def test_an_upload_over_the_size_limit_gets_413_and_is_audited(server: Server) -> None:
    big = b"\xff\xd8" + b"\0" * 1_200_000

    response = check(server, big)

    assert response.status_code == 413
    assert "1,000,000 bytes" in response.json()["detail"]
    last = api_entries(server.data_dir)[-1]
    assert last.details["status"] == 413 and last.operator == "api:website"


def test_a_declared_oversize_body_is_refused_before_it_is_sent(server: Server) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    request = (
        f"POST /check HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {server.token}\r\n"
        "Content-Type: multipart/form-data; boundary=zz\r\nContent-Length: 1000000000\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(request.encode())  # and not one byte of the gigabyte
        answer = conn.recv(4096).decode("latin-1")

    assert answer.startswith("HTTP/1.1 413")


def test_a_chunked_upload_is_cut_off_while_it_streams(server: Server) -> None:
    sent, calls = 0, server.faces.calls

    def body() -> Iterator[bytes]:
        nonlocal sent
        yield (
            b'--zz\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
            b"Content-Type: image/jpeg\r\n\r\n"
        )
        for _ in range(40):
            sent += 100_000
            yield b"x" * 100_000

    response = httpx.post(
        server.url + "/check",
        headers={
            "Authorization": f"Bearer {server.token}",
            "Content-Type": "multipart/form-data; boundary=zz",
        },
        content=body(),
        timeout=60,
    )

    assert response.status_code == 413
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert server.faces.calls == calls  # the endpoint never ran
    assert api_entries(server.data_dir)[-1].details["status"] == 413
    assert not list((server.data_dir / "service-tmp").glob("*"))


def test_an_image_over_the_pixel_limit_gets_413(server: Server) -> None:
    # 1000 x 800 = 800,000 pixels > 500,000, but a small file (flat colour compresses).
    data = io.BytesIO()
    Image.new("RGB", (1000, 800), "grey").save(data, "PNG")
    calls = server.faces.calls

    response = check(server, data.getvalue(), name="wide.png")

    assert response.status_code == 413
    assert "pixels" in response.json()["detail"]
    assert server.faces.calls == calls
    assert api_entries(server.data_dir)[-1].details["status"] == 413


def test_an_unknown_purpose_is_a_422_validation_error(server: Server) -> None:
    response = server.post(
        "/check", files={"file": ("a.jpg", photo(), "image/jpeg")}, data={"purpose": "tiktok"}
    )
    assert response.status_code == 422


# --- /check verdicts ---------------------------------------------------------------------------


def test_a_clean_photo_of_a_consented_pupil_is_safe(server: Server) -> None:
    server.faces.faces = [kept("P001")]

    response = check(server, photo(), name="sports-day-1.jpg", caption="Amelia wins the race")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["safe"] is True and body["reasons"] == []
    assert body["faces_kept"] == 1 and body["faces_not_permitted"] == 0
    assert body["suggested_caption"] == "Amelia wins the race"
    last = api_entries(server.data_dir)[-1]
    assert last.operator == "api:website"
    assert last.details["token"] == "website" and last.details["safe"] is True


def test_a_face_not_permitted_makes_it_unsafe(server: Server) -> None:
    server.faces.faces = [kept("P001"), blurred()]

    body = check(server, photo()).json()

    assert body["safe"] is False
    assert body["faces_not_permitted"] == 1
    assert any("1 face(s) not permitted for website" in r for r in body["reasons"])


def test_metadata_present_is_named(server: Server) -> None:
    gps = {piexif.GPSIFD.GPSLatitudeRef: b"N", piexif.GPSIFD.GPSLatitude: ((51, 1), (30, 1))}
    exif = piexif.dump({"0th": {piexif.ImageIFD.Make: b"Cam"}, "GPS": gps})

    body = check(server, photo(exif=exif)).json()

    assert body["safe"] is False
    (reason,) = [r for r in body["reasons"] if r.startswith("metadata present")]
    assert "EXIF" in reason and "GPS" in reason
    assert any(m.startswith("GPS") for m in body["metadata"])


def test_a_full_name_in_the_caption_makes_it_unsafe(server: Server) -> None:
    server.faces.faces = [kept("P001")]

    body = check(server, photo(), caption="Amelia Hart and Ben Stone at sports day").json()

    assert body["safe"] is False
    assert "caption gives the full name of 2 pupil(s)" in body["reasons"]
    assert {(n["pupil_id"], n["where"]) for n in body["full_names"]} == {
        ("P001", "caption"),
        ("P002", "caption"),
    }
    # Website policy: first names of shown pupils; Ben (no consent, not shown) goes.
    assert body["suggested_caption"] == "Amelia at sports day"


@pytest.mark.parametrize(
    "name", ["Amelia_Hart_sports.jpg", "amelia-hart.jpg", "AmeliaHart2026.JPG", "hart, amelia.png"]
)
def test_a_full_name_in_the_file_name_makes_it_unsafe(server: Server, name: str) -> None:
    server.faces.faces = [kept("P001")]

    body = check(server, photo(), name=name).json()

    assert body["safe"] is False
    assert "file name gives the full name of 1 pupil(s)" in body["reasons"]


def test_a_first_name_alone_in_the_file_name_is_fine(server: Server) -> None:
    server.faces.faces = [kept("P001")]

    body = check(server, photo(), name="amelia-sports.jpg").json()

    assert body["safe"] is True, body["reasons"]


def test_a_full_name_in_embedded_metadata_is_reported_by_field(server: Server) -> None:
    body = check(server, captioned_jpeg("Amelia Hart on the beam")).json()

    assert body["safe"] is False
    assert any(r.startswith("EXIF ImageDescription gives the full name") for r in body["reasons"])
    assert body["suggested_caption"] == "A pupil on the beam"  # no face shown


def test_an_unreadable_upload_is_unsafe_not_an_error(server: Server) -> None:
    body = check(server, b"this is not an image", name="Amelia_Hart.jpg").json()

    assert body["safe"] is False
    assert any(r.startswith("unreadable") for r in body["reasons"])
    # The saved upload's name is neutral and never echoed; the client's is not echoed either.
    assert not any("upload.jpg" in r or "Amelia" in r for r in body["reasons"])


def test_no_names_reach_the_audit_log(server: Server) -> None:
    check(server, photo(), name="Amelia_Hart.jpg", caption="Amelia Hart, Hart Amelia")

    with open_store(server.data_dir) as store:
        text = " ".join(e.details.__repr__() for e in audit.entries(store))
    assert "Amelia" not in text and "Hart" not in text


# --- /publish ------------------------------------------------------------------------------------


def publish(server: Server, data: bytes, name: str = "IMG_0001.jpg", **kw: Any) -> httpx.Response:
    headers = kw.pop("headers", {})
    return server.post(
        "/publish",
        files={"file": (name, data, "image/jpeg")},
        data={"purpose": "website", **kw},
        headers=headers,
    )


def test_publish_returns_a_clean_image_and_the_rewritten_caption(server: Server) -> None:
    server.faces.faces = [kept("P001"), blurred()]
    dirty = captioned_jpeg("Amelia Hart and Ben Stone at sports day")

    response = publish(server, dirty, name="Amelia_Hart.jpg")

    assert response.status_code == 200, response.text
    body = response.json()
    image = base64.b64decode(body["image_base64"])
    assert find_metadata(image) == []
    assert b"Amelia" not in image and b"Hart" not in image
    assert body["caption"] == "Amelia at sports day"
    assert body["name_policy"] == "first"
    assert (body["faces_kept"], body["faces_blurred"]) == (1, 1)
    with Image.open(io.BytesIO(image)) as im:
        assert im.format == "JPEG" and im.size == SIZE
    # The blurred face's region changed, the kept face did not (much: JPEG re-encode).
    before = np.asarray(Image.open(io.BytesIO(dirty)).convert("RGB")).astype(int)
    after = np.asarray(Image.open(io.BytesIO(image)).convert("RGB")).astype(int)
    rows, cols = OTHER.pixel_slices(*SIZE)
    krows, kcols = FACE.pixel_slices(*SIZE)
    assert np.abs(before[rows, cols] - after[rows, cols]).mean() > 30
    assert np.abs(before[krows, kcols] - after[krows, kcols]).mean() < 30


def test_publish_uses_the_forms_caption_and_the_school_policy(server: Server) -> None:
    from consent.name_policy import NamePolicy, set_name_policy
    from consent.registry import Purpose

    server.faces.faces = [kept("P001")]
    with open_store(server.data_dir) as store:
        # Internal display defaults to full names; this school chose first names.
        set_name_policy(store, Purpose.INTERNAL_DISPLAY, NamePolicy.FIRST_ONLY, operator="office")

    response = server.post(
        "/publish",
        files={"file": ("a.jpg", captioned_jpeg("Ben Stone"), "image/jpeg")},
        data={"purpose": "internal_display", "caption": "Amelia Hart wins"},
    )

    body = response.json()
    assert body["caption"] == "Amelia wins" and body["name_policy"] == "first"


def test_publish_can_answer_with_the_image_itself(server: Server) -> None:
    server.faces.faces = [kept("P001")]

    response = publish(
        server, photo(), caption="Amelia Hart wins", headers={"Accept": "image/jpeg"}
    )

    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    assert unquote(response.headers["x-photoconsent-caption"]) == "Amelia wins"
    assert find_metadata(response.content) == []


def test_a_withheld_photo_answers_422_with_the_reason(server: Server) -> None:
    response = publish(server, photo("GIF", save_all=True, append_images=[Image.new("RGB", SIZE)]))

    assert response.status_code == 422
    assert response.json()["status"] == "withheld"
    assert "multi-frame" in response.json()["detail"]
    with open_store(server.data_dir) as store:
        actions = [e.action for e in audit.entries(store)][-2:]
    assert actions == ["withhold", "api_request"]


def test_publish_is_audited_with_the_token_name_and_leaves_no_files(server: Server) -> None:
    server.faces.faces = [kept("P001")]

    assert publish(server, photo()).status_code == 200

    with open_store(server.data_dir) as store:
        last_two = list(audit.entries(store))[-2:]
        assert audit.verify(store).ok
    assert [e.action for e in last_two] == ["publish", "api_request"]
    assert {e.operator for e in last_two} == {"api:website"}
    assert last_two[0].details["pupils_kept"] == ["P001"]
    assert last_two[1].details["output_sha256"] == last_two[0].details["output_sha256"]
    assert not list((server.data_dir / "service-tmp").iterdir())


# --- the real models -----------------------------------------------------------------------------


SAMPLES = REPO / "sample_images"


@pytest.fixture(scope="module")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    from click.testing import CliRunner

    from cli import main

    data_dir = tmp_path_factory.mktemp("real") / "data"
    runner = CliRunner()
    for args in (
        ["init"],
        ["pupils", "import", str(SAMPLES / "pupils.csv")],
        ["enroll", "--folder", str(SAMPLES / "references")],
    ):
        result = runner.invoke(main, ["--data-dir", str(data_dir), *args])
        assert result.exit_code == 0, result.output
    with open_store(data_dir) as store:
        token = tokens.create_token(store, "website", operator="office")
    app = create_app(ServiceSettings(data_dir=data_dir))
    uv, thread, url = start(app)
    yield Server(url, token, data_dir, FakeFaces())
    uv.should_exit = True
    thread.join(timeout=10)


@pytest.mark.slow
def test_real_models_check_and_publish_a_sample_photo(real_server: Server) -> None:
    data = (SAMPLES / "event" / "IMG_0001.jpg").read_bytes()
    caption = "Alex Example and Sam Sample at sports day"

    verdict = check(real_server, data, caption=caption).json()
    published = publish(real_server, data, caption=caption).json()

    assert verdict["safe"] is False  # the samples carry metadata and a full-name caption
    assert any(r.startswith("metadata present") for r in verdict["reasons"])
    image = base64.b64decode(published["image_base64"])
    assert find_metadata(image) == []
    assert b"Example" not in image and b"SN-0042-DEMO" not in image
    assert "Example" not in published["caption"] and "Sample" not in published["caption"]
    assert published["faces_kept"] + published["faces_blurred"] >= 1


@pytest.mark.slow
def test_photoconsent_serve_runs_as_a_process(real_server: Server, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    exe = Path(sys.executable).parent / "photoconsent"
    if not exe.is_file():
        pytest.skip("the photoconsent entry point is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [str(exe), "--data-dir", str(real_server.data_dir), "serve", "--port", str(port)]
    proc = subprocess.Popen(args, env=env, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "serve did not answer /health"
            time.sleep(0.5)
        anonymous = httpx.post(url + "/check", data={"purpose": "website"})
        answered = httpx.post(
            url + "/check",
            headers={"Authorization": f"Bearer {real_server.token}"},
            files={"file": ("a.png", photo("PNG"), "image/png")},
            data={"purpose": "website"},
            timeout=120,
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    assert anonymous.status_code == 401
    assert answered.status_code == 200 and answered.json()["safe"] is True, answered.text


def test_concurrent_requests_each_get_their_own_answer(server: Server) -> None:
    from concurrent.futures import ThreadPoolExecutor

    server.faces.faces = [kept("P001")]
    captions = [f"Amelia Hart, photo {i}" for i in range(6)]

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda c: check(server, photo(), caption=c).json(), captions))

    assert [a["suggested_caption"] for a in answers] == [f"Amelia, photo {i}" for i in range(6)]
    with open_store(server.data_dir) as store:
        assert audit.verify(store).ok


def test_stale_upload_folders_are_removed_at_start(tmp_path: Path) -> None:
    import os

    data_dir = tmp_path / "data"
    init_data_dir(data_dir)
    old, fresh = data_dir / "service-tmp" / "old", data_dir / "service-tmp" / "fresh"
    for folder in (old, fresh):
        folder.mkdir(parents=True)
        (folder / "upload.jpg").write_bytes(b"photo of a child")
    os.utime(old, (time.time() - 7200, time.time() - 7200))

    create_app(ServiceSettings(data_dir=data_dir), decider_factory=FakeFaces().factory)

    assert not old.exists() and fresh.exists()
