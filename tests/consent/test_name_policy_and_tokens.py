"""The caption name policy per purpose, and API tokens: storage, audit, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from consent import audit
from consent.name_policy import (
    DEFAULTS,
    FullNamesOutside,
    NamePolicy,
    is_default,
    name_policies,
    name_policy,
    set_name_policy,
)
from consent.registry import Purpose
from consent.store import open_store
from service import tokens


def test_defaults_follow_the_policy_statement(data_dir: Path) -> None:
    with open_store(data_dir) as store:
        policies = name_policies(store.conn)

    assert policies == DEFAULTS
    assert policies[Purpose.INTERNAL_DISPLAY] is NamePolicy.FULL
    assert policies[Purpose.WEBSITE] is NamePolicy.FIRST_ONLY
    assert policies[Purpose.PRESS] is NamePolicy.FIRST_ONLY
    assert policies[Purpose.SOCIAL_MEDIA] is NamePolicy.NONE
    assert set(policies) == set(Purpose)


def test_setting_a_policy_is_stored_and_audited(data_dir: Path) -> None:
    with open_store(data_dir) as store:
        previous = set_name_policy(store, Purpose.PRESS, NamePolicy.NONE, operator="dpo")
        assert previous is NamePolicy.FIRST_ONLY
        assert name_policy(store.conn, Purpose.PRESS) is NamePolicy.NONE
        assert not is_default(store.conn, Purpose.PRESS)
        assert is_default(store.conn, Purpose.WEBSITE)
        (entry,) = audit.entries(store, action="name_policy_set")
        assert audit.verify(store).ok

    assert entry.operator == "dpo"
    assert entry.details == {"purpose": "press", "policy": "none", "previous_policy": "first"}


@pytest.mark.parametrize("purpose", [p for p in Purpose if p is not Purpose.INTERNAL_DISPLAY])
def test_full_names_outside_the_school_need_an_explicit_yes(
    data_dir: Path, purpose: Purpose
) -> None:
    with open_store(data_dir) as store:
        with pytest.raises(FullNamesOutside, match="--allow-full-names"):
            set_name_policy(store, purpose, NamePolicy.FULL, operator="dpo")
        assert name_policy(store.conn, purpose) is DEFAULTS[purpose]
        assert audit.entries(store, action="name_policy_set") == []

        set_name_policy(store, purpose, NamePolicy.FULL, operator="dpo", allow_full_external=True)
        assert name_policy(store.conn, purpose) is NamePolicy.FULL


def test_a_token_is_returned_once_and_only_its_hash_is_stored(data_dir: Path) -> None:
    with open_store(data_dir) as store:
        token = tokens.create_token(store, "website", operator="it")
        rows = store.conn.execute("SELECT * FROM api_tokens").fetchall()
        dump = "\n".join(store.conn.iterdump())

    assert token.startswith("pct_") and len(token) > 40
    assert token not in dump
    assert rows[0]["token_sha256"] == tokens.token_hash(token)


def test_authenticate_accepts_only_the_live_token(data_dir: Path) -> None:
    with open_store(data_dir) as store:
        token = tokens.create_token(store, "website", operator="it")
        other = tokens.create_token(store, "cms", operator="it")

        assert tokens.authenticate(store.conn, token).name == "website"  # type: ignore[union-attr]
        assert tokens.authenticate(store.conn, other).name == "cms"  # type: ignore[union-attr]
        for wrong in ["", "pct_", token[:-1], token + "x", token.upper(), "x" * 500]:
            assert tokens.authenticate(store.conn, wrong) is None

        tokens.revoke_token(store, "website", operator="it")
        assert tokens.authenticate(store.conn, token) is None
        assert tokens.authenticate(store.conn, other) is not None


def test_token_names_are_unique_while_live_and_reusable_after_revoking(data_dir: Path) -> None:
    with open_store(data_dir) as store:
        first = tokens.create_token(store, "website", operator="it")
        with pytest.raises(tokens.TokenExists, match="token revoke website"):
            tokens.create_token(store, "website", operator="it")
        tokens.revoke_token(store, "website", operator="it")
        second = tokens.create_token(store, "website", operator="it")
        listed = tokens.list_tokens(store.conn)
        everything = tokens.list_tokens(store.conn, include_revoked=True)
        actions = [(e.action, e.details) for e in audit.entries(store) if "token" in e.action]

    assert first != second
    assert [t.name for t in listed] == ["website"] and listed[0].revoked_at is None
    assert [t.revoked_by for t in everything] == ["it", None]
    assert actions == [
        ("token_create", {"token": "website"}),
        ("token_revoke", {"token": "website"}),
        ("token_create", {"token": "website"}),
    ]


@pytest.mark.parametrize("name", ["", "-v", "has space", "a/b", "x" * 65, "naïve", "a\nb"])
def test_bad_token_names_are_refused(data_dir: Path, name: str) -> None:
    with open_store(data_dir) as store, pytest.raises(tokens.InvalidTokenName):
        tokens.create_token(store, name, operator="it")


def test_revoking_an_unknown_token_says_how_to_list_them(data_dir: Path) -> None:
    with open_store(data_dir) as store, pytest.raises(tokens.UnknownToken, match="token list"):
        tokens.revoke_token(store, "nobody", operator="it")
