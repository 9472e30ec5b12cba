"""Staff accounts (the DPO's) and the audit log."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from consent import audit
from web import accounts
from web.pages import posted, render, require, sessions_of, store_for
from web.permissions import Permission

router = APIRouter()
AUDIT_PAGE = 200


def _page(request: Request, session, status_code: int = 200, **context) -> Response:  # type: ignore[no-untyped-def]
    with store_for(request) as store:
        listed = accounts.list_accounts(store.conn)
    return render(
        request,
        "accounts.html",
        session,
        status_code=status_code,
        title="Staff accounts",
        accounts=listed,
        roles=list(accounts.Role),
        **context,
    )


@router.get("/accounts", response_class=HTMLResponse)
async def accounts_page(request: Request) -> Response:
    return _page(request, require(request, Permission.ACCOUNTS))


@router.post("/accounts", response_class=HTMLResponse)
async def create(request: Request) -> Response:
    session, form = await posted(request, Permission.ACCOUNTS)
    password, again = str(form.get("password", "")), str(form.get("password_again", ""))
    try:
        role = accounts.Role(str(form.get("role", "")))
    except ValueError:
        return _page(request, session, 400, problem="Choose a role for the account.")
    if password != again:
        return _page(request, session, 400, problem="The two passwords are not the same.")
    try:
        with store_for(request) as store:
            made = accounts.create_account(
                store, str(form.get("username", "")), password, role, operator=session.operator
            )
    except accounts.AccountError as exc:
        return _page(request, session, 400, problem=str(exc))
    return _page(request, session, done=f"Account {made.username} ({made.role.label}) made.")


@router.post("/accounts/{username}/password", response_class=HTMLResponse)
async def reset(request: Request, username: str) -> Response:
    session, form = await posted(request, Permission.ACCOUNTS)
    password, again = str(form.get("password", "")), str(form.get("password_again", ""))
    if password != again:
        return _page(request, session, 400, problem="The two passwords are not the same.")
    try:
        with store_for(request) as store:
            accounts.set_password(store, username, password, operator=session.operator)
    except accounts.AccountError as exc:
        return _page(request, session, 400, problem=str(exc))
    sessions_of(request).end_for(username)
    return _page(request, session, done=f"New password set for {username}; it is unlocked.")


@router.post("/accounts/{username}/switch", response_class=HTMLResponse)
async def switch(request: Request, username: str) -> Response:
    session, form = await posted(request, Permission.ACCOUNTS)
    off = form.get("off") == "1"
    if off and username == session.username:
        return _page(request, session, 400, problem="You cannot switch off your own account.")
    try:
        with store_for(request) as store:
            accounts.set_disabled(store, username, off, operator=session.operator)
    except accounts.AccountError as exc:
        return _page(request, session, 400, problem=str(exc))
    if off:
        sessions_of(request).end_for(username)
    return _page(request, session, done=f"{username} switched {'off' if off else 'on'}.")


@router.get("/audit", response_class=HTMLResponse)
async def audit_log(request: Request, action: str = "") -> Response:
    session = require(request, Permission.AUDIT)
    with store_for(request) as store:
        entries = audit.entries(store, limit=AUDIT_PAGE, action=action or None)
        check = audit.verify(store)
    return render(
        request,
        "audit.html",
        session,
        title="Audit log",
        entries=list(reversed(entries)),
        check=check,
        action=action,
    )
