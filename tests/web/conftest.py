"""The office app over a fresh data directory: one account per role, a small register."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from consent.registry import import_pupils_csv
from consent.store import open_store
from tests.support.consent_factories import pupil_row, write_registry_csv
from web import accounts
from web.app import create_app
from web.pages import AppSettings

PASSWORD = "correct horse battery staple"
ROLES = {role.value: role for role in accounts.Role}
# Names no page may show a read-only account; unusual enough not to occur by chance.
FIRST, LAST = "Wilhelmina", "Quarrington"


def make_accounts(data_dir: Path) -> None:
    with open_store(data_dir) as store:
        for name, role in ROLES.items():
            accounts.create_account(store, f"{name}1", PASSWORD, role, operator="test-setup")


@pytest.fixture(autouse=True)
def quick_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2 at its cheapest: the tests sign in hundreds of times on a shared machine.
    The app's own parameters are argon2-cffi's defaults (RFC 9106)."""
    monkeypatch.setattr(
        accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


@pytest.fixture
def web_data(data_dir: Path, tmp_path: Path) -> Path:
    """The data directory with a register of two pupils and an account per role."""
    csv = write_registry_csv(
        tmp_path / "pupils.csv",
        [pupil_row("P0001", first_name=FIRST, last_name=LAST), pupil_row("P0002")],
    )
    with open_store(data_dir) as store:
        import_pupils_csv(store, csv, operator="test-setup")
    make_accounts(data_dir)
    return data_dir


@pytest.fixture
def client(web_data: Path) -> Iterator[TestClient]:
    with TestClient(create_app(AppSettings(web_data))) as c:
        yield c


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Sign in; return the session's CSRF token."""
    page = client.get("/sign-in")
    reply = client.post(
        "/sign-in",
        data={"csrf": csrf_of(page.text), "username": username, "password": password, "next": "/"},
        follow_redirects=False,
    )
    assert reply.status_code == 303, reply.text
    return csrf_of(client.get("/").text)
