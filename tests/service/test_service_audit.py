"""Every request with a valid token is audited whatever its outcome; requests without one
are counted per source and interval; the caption recorded is the one returned (issue 15)."""

from __future__ import annotations

import hashlib
import io
import time
from pathlib import Path

import httpx
import piexif
import pytest
from PIL import Image

from consent import audit
from consent.store import open_store
from service.limits import ServiceLimits
from tests.support.service_factories import FakeFaces, api_entries, kept, multipart, photo, running


def _big_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (1000, 800), "grey").save(out, "PNG")
    return out.getvalue()


# (name, method, path, how to send it, expected status, expected reason, audited endpoint)
OUTCOMES = [
    ("bad multipart", "POST", "/check", {"content": b"--zz\r\nnot a part", "boundary": True},
     400, "bad_multipart", "/check"),
    ("unknown path", "POST", "/nothing-here", {}, 404, "not_found", "other"),
    ("wrong method", "GET", "/check", {}, 405, "method_not_allowed", "/check"),
    ("over the pixel cap", "POST", "/check", {"file": "big"}, 413, "too_many_pixels", "/check"),
    ("missing purpose", "POST", "/check", {"form": {}}, 422, "invalid_form", "/check"),
    ("unknown purpose", "POST", "/publish", {"form": {"purpose": "tiktok"}}, 422,
     "invalid_form", "/publish"),
    ("missing file", "POST", "/check", {"file": None}, 422, "invalid_form", "/check"),
    ("caption too long", "POST", "/check", {"form": {"purpose": "website", "caption": "x" * 2001}},
     422, "invalid_form", "/check"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "how", "status", "reason", "endpoint"),
    [o[1:] for o in OUTCOMES],
    ids=[o[0] for o in OUTCOMES],
)
def test_every_signed_in_outcome_is_audited(
    data_dir: Path,
    token: str,
    method: str,
    path: str,
    how: dict[str, object],
    status: int,
    reason: str,
    endpoint: str,
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    kwargs: dict[str, object] = {}
    if "content" in how:
        headers["Content-Type"] = "multipart/form-data; boundary=zz"
        kwargs["content"] = how["content"]
    elif method == "POST":
        file = how.get("file", "photo")
        if file is not None:
            data = _big_png() if file == "big" else photo()
            kwargs["files"] = {"file": ("a.png", data, "image/png")}
        kwargs["data"] = how.get("form", {"purpose": "website"})
    with running(data_dir, token, max_pixels=500_000) as srv:
        response = httpx.request(method, srv.url + path, headers=headers, timeout=30, **kwargs)

    assert response.status_code == status, response.text
    (entry,) = api_entries(data_dir)
    assert entry.operator == "api:website"
    assert entry.details["status"] == status
    assert entry.details["reason"] == reason
    assert entry.details["endpoint"] == endpoint


def test_answered_requests_are_audited_once(data_dir: Path, token: str) -> None:
    with running(data_dir, token, FakeFaces([kept("P001")])) as srv:
        assert srv.check().status_code == 200

    (entry,) = api_entries(data_dir)
    assert entry.details["status"] == 200 and entry.details["safe"] is True


def test_requests_without_a_valid_token_are_counted_per_source_and_interval(
    data_dir: Path, token: str
) -> None:
    wrong = "pct_" + "W" * 43
    limits = ServiceLimits(log_interval=1.0)
    with running(data_dir, token, limits=limits) as srv:
        for _ in range(3):
            assert httpx.post(srv.url + "/check", headers=srv.auth(wrong)).status_code == 401
        assert httpx.post(srv.url + "/publish").status_code == 401
        time.sleep(1.1)
        # The next one closes the interval: its counts are written once.
        assert httpx.post(srv.url + "/check").status_code == 401

    assert api_entries(data_dir) == []  # nothing per request
    # One entry for the closed interval, one for the rest, written when the server stopped.
    interval, rest = api_entries(data_dir, "api_unauthenticated")
    assert interval.details["by_source"] == {"127.0.0.1": 4}
    assert interval.details["requests"] == 4 and interval.operator == "api:anonymous"
    assert rest.details["by_source"] == {"127.0.0.1": 1}
    with open_store(data_dir) as store:
        everything = repr([e.details for e in audit.entries(store)])
    assert wrong not in everything and "WWWW" not in everything


def test_the_caption_recorded_is_the_one_returned(data_dir: Path, token: str) -> None:
    exif = piexif.dump({"0th": {piexif.ImageIFD.ImageDescription: b"Ben Stone on the beam"}})
    with running(data_dir, token, FakeFaces([kept("P001")])) as srv:
        response = httpx.post(
            srv.url + "/publish",
            headers=srv.auth(),
            files={"file": ("a.jpg", photo(exif=exif), "image/jpeg")},
            data={"purpose": "website", "caption": "Amelia Hart wins the relay"},
            timeout=30,
        )

    assert response.status_code == 200, response.text
    returned = response.json()["caption"]
    assert returned == "Amelia wins the relay"
    digest = hashlib.sha256(returned.encode()).hexdigest()
    with open_store(data_dir) as store:
        (published,) = [e for e in audit.entries(store) if e.action == "publish"]
    assert published.details["caption"]["sha256"] == digest
    assert published.details["caption"]["source"] != "embedded"
    (request,) = api_entries(data_dir)
    assert request.details["caption"] == {"source": "form", "sha256": digest}


def test_a_withheld_publish_is_audited_with_its_reason_class(data_dir: Path, token: str) -> None:
    with running(data_dir, token) as srv:
        response = httpx.post(
            srv.url + "/publish",
            headers=srv.auth(),
            files={"file": ("a.jpg", b"\xff\xd8 truncated", "image/jpeg")},
            data={"purpose": "website"},
            timeout=30,
        )

    assert response.status_code == 422
    (entry,) = api_entries(data_dir)
    assert (entry.details["status"], entry.details["reason"]) == (422, "withheld")


def test_several_files_are_refused_and_audited(data_dir: Path, token: str) -> None:
    body = multipart({"purpose": "website"}, [("file", photo())] * 50, "zz")
    with running(data_dir, token) as srv:
        response = httpx.post(
            srv.url + "/check",
            headers={**srv.auth(), "Content-Type": "multipart/form-data; boundary=zz"},
            content=body,
            timeout=30,
        )
        calls = srv.faces.calls

    assert response.status_code == 400
    assert "50 files" in response.json()["detail"] and "exactly one" in response.json()["detail"]
    assert calls == 0
    (entry,) = api_entries(data_dir)
    assert (entry.details["status"], entry.details["reason"]) == (400, "several_files")
