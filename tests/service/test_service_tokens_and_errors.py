"""Tokens only in the Authorization header, no token or query string in the logs, error
bodies that name the field and the limit without echoing, the service's own pixel cap,
and reasons that read as sentences (issue 15)."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import httpx
import pytest
from PIL import Image

from service.app import DEFAULT_MAX_PIXELS
from service.guard import token_in_query
from tests.support.service_factories import api_entries, photo, running


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def logged(caplog: pytest.LogCaptureFixture) -> str:
    """What the server logged (the test's own HTTP client logs its URLs: not counted)."""
    server = ("photoconsent", "uvicorn", "asyncio", "fastapi", "starlette")
    return "\n".join(r.getMessage() for r in caplog.records if r.name.startswith(server))


def test_a_token_in_the_query_string_is_refused_and_never_logged(
    data_dir: Path, token: str, logs: pytest.LogCaptureFixture
) -> None:
    with running(data_dir, token) as srv:
        bare = httpx.post(srv.url + f"/check?token={token}", data={"purpose": "website"})
        shaped = httpx.get(srv.url + f"/health?x={token}")
        both = httpx.post(
            srv.url + f"/check?access_token={token}",
            headers=srv.auth(),
            files={"file": ("a.jpg", photo(), "image/jpeg")},
            data={"purpose": "website"},
        )

    for response in (bare, shaped, both):
        assert response.status_code == 400
        assert "Authorization: Bearer" in response.json()["detail"]
        assert token not in response.text
    assert token not in logged(logs) and "token=pct_" not in logged(logs)
    # Only the request that also sent a valid header is audited (as refused).
    (entry,) = api_entries(data_dir)
    assert (entry.details["status"], entry.details["reason"]) == (400, "token_in_query")


def test_the_access_log_has_no_query_strings_nor_token_shaped_paths(
    data_dir: Path, token: str, logs: pytest.LogCaptureFixture
) -> None:
    with running(data_dir, token) as srv:
        httpx.get(srv.url + "/health?school=Amelia+Hart")
        httpx.post(srv.url + f"/{token}/x?y=1", headers=srv.auth())
        srv.check()

    lines = [r.getMessage() for r in logs.records if r.name == "photoconsent.service.access"]
    assert len(lines) == 3
    assert '"GET /health" 200' in lines[0] and "Amelia" not in lines[0]
    assert '"POST other" 404' in lines[1] and "token=website" in lines[1]
    assert '"POST /check" 200' in lines[2]
    assert token not in logged(logs) and "?" not in "".join(lines)


@pytest.mark.parametrize(
    "query", ["token=abc", "api_key=1", "Authorization=x", "x=pct_abcdefgh123", "a=1&KEY=2"]
)
def test_credential_shaped_queries_are_recognised(query: str) -> None:
    assert token_in_query(query.encode())


@pytest.mark.parametrize("query", ["", "page=2", "purpose=website", "x=pct_"])
def test_ordinary_queries_are_not_taken_for_tokens(query: str) -> None:
    assert not token_in_query(query.encode())


def test_a_huge_caption_is_not_echoed(data_dir: Path, token: str) -> None:
    with running(data_dir, token) as srv:
        response = srv.check(caption="Amelia Hart " + "x" * 1_000_000)

    assert response.status_code == 422
    assert len(response.content) < 500
    assert "Amelia" not in response.text and "xxxx" not in response.text
    assert response.json()["detail"] == [
        {"field": "caption", "problem": "is longer than the limit of 2,000 characters"}
    ]


def test_an_invalid_purpose_is_named_not_echoed(data_dir: Path, token: str) -> None:
    with running(data_dir, token) as srv:
        response = httpx.post(
            srv.url + "/check",
            headers=srv.auth(),
            files={"file": ("a.jpg", photo(), "image/jpeg")},
            data={"purpose": "Amelia Hart's page"},
        )

    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert problem["field"] == "purpose" and "website" in problem["problem"]
    assert "Amelia" not in response.text


def test_missing_fields_are_named(data_dir: Path, token: str) -> None:
    with running(data_dir, token) as srv:
        response = httpx.post(srv.url + "/publish", headers=srv.auth(), data={"x": "y"})

    assert response.status_code == 422
    assert {p["field"] for p in response.json()["detail"]} == {"file", "purpose"}
    assert all(p["problem"] == "is required" for p in response.json()["detail"])


def test_a_40_megapixel_png_is_refused_by_the_service_limit(data_dir: Path, token: str) -> None:
    out = io.BytesIO()
    Image.new("L", (8000, 5000), 128).save(out, "PNG")  # 40 MP in a few dozen KB
    data = out.getvalue()
    with running(data_dir, token) as srv:  # the service's default pixel cap
        response = srv.check(data, timeout=30)
        calls = srv.faces.calls

    assert len(data) < 200_000
    assert response.status_code == 413
    assert f"{DEFAULT_MAX_PIXELS:,} pixels" in response.json()["detail"]
    assert DEFAULT_MAX_PIXELS < 64_000_000 // 2  # well below the batch limit
    assert calls == 0


def test_a_refused_format_reads_as_one_sentence(data_dir: Path, token: str) -> None:
    avif = b"\0\0\0\x1cftypavif" + b"\0" * 200
    with running(data_dir, token) as srv:
        body = srv.check(avif).json()

    (reason,) = body["reasons"]
    assert "AVIF is not supported; export the photo as JPEG or PNG" in reason
    assert "not supported is not supported" not in reason
