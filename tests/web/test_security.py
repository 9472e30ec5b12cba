"""The office app refuses what it must: no session, the wrong role, a missing or wrong
CSRF token, a foreign origin; it locks an account after repeated wrong passwords; a
read-only account never sees a full name; it binds loopback unless told otherwise."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from consent import audit
from consent.store import open_store
from tests.web.conftest import FIRST, LAST, PASSWORD, csrf_of, sign_in
from web import accounts
from web.app import CSP, create_app
from web.pages import AppSettings
from web.permissions import ROLE_PERMISSIONS, Permission
from web.sessions import COOKIE

# Every route of the app, with the permission it needs. A new route must be added here
# (test_every_route_is_listed), so none can be left unguarded by accident.
ROUTES: dict[tuple[str, str], Permission] = {
    ("GET", "/"): Permission.DASHBOARD,
    ("POST", "/sign-out"): Permission.DASHBOARD,
    ("GET", "/pupils"): Permission.PUPILS,
    ("GET", "/pupils/{pupil_id}"): Permission.PUPILS,
    ("GET", "/import"): Permission.IMPORT,
    ("POST", "/import/preview"): Permission.IMPORT,
    ("POST", "/import/confirm"): Permission.IMPORT,
    ("GET", "/enrol"): Permission.ENROL,
    ("POST", "/enrol"): Permission.ENROL,
    ("GET", "/publish"): Permission.PUBLISH,
    ("POST", "/publish"): Permission.PUBLISH,
    ("GET", "/api/publish/{job_id}"): Permission.PUBLISH,
    ("GET", "/publish/{job_id}"): Permission.PUBLISH,
    ("GET", "/publish/{job_id}/{index}/{which}.jpg"): Permission.PUBLISH,
    ("GET", "/publish/{job_id}/download"): Permission.PUBLISH,
    ("POST", "/publish/{job_id}/again"): Permission.PUBLISH,
    ("GET", "/review"): Permission.REVIEW,
    ("GET", "/review/{batch_id}"): Permission.REVIEW,
    ("GET", "/review/{batch_id}/face/{face_id}.jpg"): Permission.REVIEW,
    ("POST", "/review/{batch_id}/approve-all"): Permission.REVIEW,
    ("POST", "/review/{batch_id}/verdict"): Permission.REVIEW,
    ("POST", "/review/{batch_id}/unblur"): Permission.REVIEW,
    ("POST", "/review/{batch_id}/reject"): Permission.REVIEW,
    ("GET", "/review/{batch_id}/pupils"): Permission.REVIEW,
    ("POST", "/review/{batch_id}/pupils/{pupil_id}/approve"): Permission.REVIEW,
    ("GET", "/review/{batch_id}/reference/{pupil_id}.jpg"): Permission.REVIEW,
    ("POST", "/review/{batch_id}/publish"): Permission.PUBLISH,
    ("POST", "/pupils/{pupil_id}/withdraw"): Permission.IMPORT,
    ("GET", "/takedown"): Permission.TAKEDOWN,
    ("GET", "/takedown/{pupil_id}"): Permission.TAKEDOWN,
    ("GET", "/takedown/{pupil_id}/{seq}.jpg"): Permission.TAKEDOWN,
    ("POST", "/takedown/{pupil_id}/republish"): Permission.TAKEDOWN,
    ("GET", "/takedown/replacements/{token}/download"): Permission.TAKEDOWN,
    ("GET", "/board"): Permission.MEDICAL,
    ("POST", "/board/preview"): Permission.MEDICAL,
    ("POST", "/board/make"): Permission.MEDICAL,
    ("GET", "/board/download/{token}"): Permission.MEDICAL,
    ("GET", "/accounts"): Permission.ACCOUNTS,
    ("POST", "/accounts"): Permission.ACCOUNTS,
    ("POST", "/accounts/{username}/password"): Permission.ACCOUNTS,
    ("POST", "/accounts/{username}/switch"): Permission.ACCOUNTS,
    ("GET", "/audit"): Permission.AUDIT,
    ("GET", "/export"): Permission.EXPORT,
    ("POST", "/export"): Permission.EXPORT,
    ("GET", "/erase"): Permission.ERASE,
    ("POST", "/erase/check"): Permission.ERASE,
    ("POST", "/erase"): Permission.ERASE,
    ("GET", "/retention"): Permission.RETENTION,
    ("POST", "/retention/{category}"): Permission.RETENTION,
    ("POST", "/purge"): Permission.RETENTION,
    ("GET", "/settings"): Permission.SETTINGS,
    ("POST", "/settings/names"): Permission.SETTINGS,
}
OPEN_ROUTES = {("GET", "/sign-in"), ("POST", "/sign-in")}
FILL = {"pupil_id": "P0001", "job_id": "0123456789abcdef", "index": "0", "which": "before",
        "username": "office1", "seq": "1", "token": "0123456789abcdef",
        "batch_id": "20261202-120000-abcd", "face_id": "F0001",
        "category": "biometrics"}  # fmt: skip


def url(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: FILL[m.group(1)], path)


def app_routes(routes: list[object]) -> set[tuple[str, str]]:
    """``(method, path)`` of every route, into included routers (no prefixes are used)."""
    found = set()
    for route in routes:
        if isinstance(route, APIRoute):
            found |= {(method, route.path) for method in route.methods - {"HEAD"}}
        elif hasattr(route, "original_router"):  # FastAPI's included router
            found |= app_routes(route.original_router.routes)
    return found


def test_every_route_is_listed(client: TestClient) -> None:
    routes = client.app.routes  # type: ignore[attr-defined]
    assert app_routes(routes) == set(ROUTES) | OPEN_ROUTES


@pytest.mark.parametrize("route", sorted(ROUTES), ids=lambda r: f"{r[0]} {r[1]}")
def test_every_route_refuses_without_a_session(client: TestClient, route: tuple[str, str]) -> None:
    method, path = route
    reply = client.request(method, url(path), follow_redirects=False)
    if method == "GET" and not path.startswith("/api/"):
        assert reply.status_code == 303
        assert reply.headers["location"].startswith("/sign-in")
    else:
        assert reply.status_code == 401
    assert FIRST not in reply.text and "P0002" not in reply.text


@pytest.mark.parametrize("route", sorted(ROUTES), ids=lambda r: f"{r[0]} {r[1]}")
def test_every_route_refuses_a_role_without_its_permission(
    client: TestClient, route: tuple[str, str]
) -> None:
    method, path = route
    refused = [r for r, allowed in ROLE_PERMISSIONS.items() if ROUTES[route] not in allowed]
    for role in refused:
        client.cookies.clear()
        csrf = sign_in(client, f"{role.value}1")
        reply = client.request(method, url(path), data={"csrf": csrf} if method == "POST" else None)
        assert reply.status_code == 403, (role, reply.text)
        assert "cannot" in reply.text and FIRST not in reply.text


POSTS = sorted(r for r in ROUTES if r[0] == "POST")


def _allowed_user(route: tuple[str, str]) -> str:
    role = next(r for r, allowed in ROLE_PERMISSIONS.items() if ROUTES[route] in allowed)
    return f"{role.value}1"


@pytest.mark.parametrize("token", [None, "wrong"], ids=["missing", "wrong"])
@pytest.mark.parametrize("route", POSTS, ids=lambda r: r[1])
def test_every_form_refuses_a_missing_or_wrong_csrf_token(
    client: TestClient, web_data: Path, route: tuple[str, str], token: str | None
) -> None:
    sign_in(client, _allowed_user(route))
    with open_store(web_data) as store:
        before = audit.head(store.conn)
    data = {"username": "newperson", "role": "office", "password": "x" * 12,
            "password_again": "x" * 12, "off": "1"}  # fmt: skip
    if token is not None:
        data["csrf"] = token
    reply = client.post(url(route[1]), data=data)
    assert reply.status_code == 403
    assert "expired" in reply.text
    with open_store(web_data) as store:
        assert audit.head(store.conn) == before  # nothing done, nothing audited
    assert client.get("/").status_code == 200  # still signed in


def test_a_post_from_another_site_is_refused(client: TestClient) -> None:
    csrf = sign_in(client, "dpo1")
    reply = client.post(
        "/accounts",
        data={
            "csrf": csrf,
            "username": "x1",
            "role": "office",
            "password": "y" * 12,
            "password_again": "y" * 12,
        },  # fmt: skip
        headers={"origin": "http://evil.example"},
    )
    assert reply.status_code == 403
    assert "another web site" in reply.text


def test_sign_in_needs_its_own_form_token(client: TestClient) -> None:
    reply = client.post("/sign-in", data={"username": "office1", "password": PASSWORD})
    assert reply.status_code == 403
    assert client.get("/", follow_redirects=False).status_code == 303


def test_the_session_cookie_is_httponly_and_samesite_strict(client: TestClient) -> None:
    page = client.get("/sign-in")
    reply = client.post(
        "/sign-in",
        data={"csrf": csrf_of(page.text), "username": "office1", "password": PASSWORD},
        follow_redirects=False,
    )
    cookie = next(v for k, v in reply.headers.multi_items() if k == "set-cookie" and COOKIE in v)
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie


def test_pages_carry_a_csp_without_inline_scripts(client: TestClient) -> None:
    reply = client.get("/sign-in")
    assert reply.headers["content-security-policy"] == CSP
    assert "'unsafe-inline'" not in CSP and "script-src 'self'" in CSP
    assert reply.headers["cache-control"] == "no-store"
    assert "<script>" not in reply.text and "onclick" not in reply.text


def test_an_idle_session_ends(web_data: Path) -> None:
    app = create_app(AppSettings(web_data, idle_seconds=60))
    now = [1000.0]
    app.state.sessions.clock = lambda: now[0]
    with TestClient(app) as client:
        sign_in(client, "office1")
        assert client.get("/", follow_redirects=False).status_code == 200
        now[0] += 61
        reply = client.get("/", follow_redirects=False)
        assert reply.status_code == 303 and reply.headers["location"].startswith("/sign-in")


def test_signing_out_ends_the_session(client: TestClient) -> None:
    csrf = sign_in(client, "office1")
    token = client.cookies.get(COOKIE)
    client.post("/sign-out", data={"csrf": csrf})
    client.cookies.set(COOKIE, token or "")
    assert client.get("/", follow_redirects=False).status_code == 303


def _try(client: TestClient, password: str) -> int:
    page = client.get("/sign-in")
    return client.post(
        "/sign-in",
        data={"csrf": csrf_of(page.text), "username": "office1", "password": password},
        follow_redirects=False,
    ).status_code


def test_repeated_wrong_passwords_lock_the_account(client: TestClient, web_data: Path) -> None:
    for _ in range(accounts.MAX_FAILED_SIGN_INS):
        assert _try(client, "not the password") == 401
    # Locked: even the right password is refused now, and the lock is in the database.
    assert _try(client, PASSWORD) == 401
    with open_store(web_data) as store:
        locked = accounts.get_account(store.conn, "office1")
        assert locked is not None and locked.locked(datetime.now(UTC))
        actions = [e.action for e in audit.entries(store) if e.operator == "office1"]
        assert actions.count("staff_sign_in_failed") == accounts.MAX_FAILED_SIGN_INS - 1
        assert "staff_account_locked" in actions
        later = datetime.now(UTC) + timedelta(minutes=accounts.LOCK_MINUTES + 1)
        assert accounts.sign_in(store, "office1", PASSWORD, now=later).username == "office1"


def test_an_unknown_user_name_is_refused_in_the_same_words_and_not_audited(
    client: TestClient, web_data: Path
) -> None:
    page = client.get("/sign-in")
    reply = client.post(
        "/sign-in",
        data={"csrf": csrf_of(page.text), "username": "my-secret-pass", "password": "x"},
    )
    assert reply.status_code == 401
    assert "do not match" in reply.text
    with open_store(web_data) as store:
        assert "my-secret-pass" not in str([e.details for e in audit.entries(store)])


def test_the_dpo_resets_a_locked_account(client: TestClient) -> None:
    for _ in range(accounts.MAX_FAILED_SIGN_INS):
        _try(client, "wrong")
    csrf = sign_in(client, "dpo1")
    new = "a brand new passphrase"
    reply = client.post(
        "/accounts/office1/password", data={"csrf": csrf, "password": new, "password_again": new}
    )
    assert reply.status_code == 200 and "unlocked" in reply.text
    client.cookies.clear()
    sign_in(client, "office1", new)


SCREENS = ["/", "/pupils", "/pupils/P0001", "/pupils?q=P0001"]


@pytest.mark.parametrize("path", SCREENS)
def test_a_read_only_account_never_sees_a_full_name(client: TestClient, path: str) -> None:
    sign_in(client, "readonly1")
    page = client.get(path)
    assert page.status_code == 200
    assert FIRST not in page.text and LAST not in page.text
    assert "P0001" in page.text or path == "/"


def test_searching_by_name_finds_nobody_for_a_read_only_account(client: TestClient) -> None:
    sign_in(client, "readonly1")
    assert "P0001" not in client.get(f"/pupils?q={FIRST}").text


def test_the_office_sees_names(client: TestClient) -> None:
    sign_in(client, "office1")
    assert FIRST in client.get(f"/pupils?q={FIRST[:4]}").text


def test_a_sign_in_never_sends_you_to_another_site(client: TestClient) -> None:
    page = client.get("/sign-in?next=//evil.example/")
    reply = client.post(
        "/sign-in",
        data={
            "csrf": csrf_of(page.text),
            "username": "office1",
            "password": PASSWORD,
            "next": "https://evil.example/",
        },  # fmt: skip
        follow_redirects=False,
    )
    assert reply.headers["location"] == "/"


# --- the command ----------------------------------------------------------------------


def test_the_app_listens_on_loopback_by_default(
    web_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli import main
    from web import server

    seen = {}

    def fake(settings: AppSettings, host: str, port: int) -> object:
        seen.update(host=host, port=port)
        return type("S", (), {"run": lambda self: None})()

    monkeypatch.setattr(server, "build_server", fake)
    result = CliRunner().invoke(main, ["--data-dir", str(web_data), "app"])
    assert result.exit_code == 0, result.output
    assert seen == {"host": "127.0.0.1", "port": 8765}
    assert "WARNING" not in result.output


def test_another_host_warns_loudly(web_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cli import main
    from web import server

    monkeypatch.setattr(
        server, "build_server", lambda *a: type("S", (), {"run": lambda self: None})()
    )
    result = CliRunner().invoke(
        main, ["--data-dir", str(web_data), "app", "--host", "0.0.0.0", "--port", "9000"]
    )
    assert result.exit_code == 0
    assert "WARNING" in result.stderr and "unencrypted" in result.stderr


def test_create_admin_asks_twice_and_makes_a_dpo(data_dir: Path) -> None:
    from cli import main

    result = CliRunner().invoke(
        main,
        ["--data-dir", str(data_dir), "app", "--create-admin", "Head.DPO"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    with open_store(data_dir) as store:
        made = accounts.get_account(store.conn, "head.dpo")
        assert made is not None and made.role is accounts.Role.DPO
        assert audit.entries(store, action="staff_account_create")[-1].details == {
            "username": "head.dpo",
            "role": "dpo",
        }


def test_create_admin_refuses_passwords_that_differ(data_dir: Path) -> None:
    from cli import main

    result = CliRunner().invoke(
        main,
        ["--data-dir", str(data_dir), "app", "--create-admin", "dpo"],
        input=f"{PASSWORD}\nsomething else\n{PASSWORD}\n{PASSWORD}\n",
    )
    assert "do not match" in result.output
    assert result.exit_code == 0  # asked again, then made


def test_the_app_will_not_start_without_an_account(data_dir: Path) -> None:
    from cli import main

    result = CliRunner().invoke(main, ["--data-dir", str(data_dir), "app"])
    assert result.exit_code == 1
    assert "--create-admin" in result.stderr
