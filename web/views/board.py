"""Medical board: choose room, class and orientation; preview; download the PDF; status.

The board holds special-category data: the PDF is written privately into the app's work
area only for its download and removed once it has been sent; making one is audited by
`board.generate` under the signed-in person, and so is a preview.
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import date
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.background import BackgroundTask
from starlette.datastructures import FormData

from board.generate import generate
from board.html import render_html
from board.model import BoardFilter, BoardOptions, Orientation
from board.selection import build_board
from board.status import board_status
from consent import audit
from consent.errors import ConsentError
from consent.medical.records import Room
from pipeline.errors import PipelineError
from web.pages import posted, render, require, settings_of, store_for
from web.permissions import Permission

router = APIRouter()
# The board's own page policy (board/html.py): inline styles, data: images, no script.
PREVIEW_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'none'"


def _classes(request: Request) -> list[str]:
    with store_for(request) as store:
        rows = store.conn.execute(
            "SELECT DISTINCT class_name FROM pupils WHERE left_on IS NULL ORDER BY class_name"
        ).fetchall()
    return [r[0] for r in rows]


def _page(request: Request, session, status_code: int = 200, **context) -> Response:  # type: ignore[no-untyped-def]
    states, unreadable = [], None
    try:
        with store_for(request) as store:
            states = board_status(store, on=date.today())
    except ConsentError as exc:
        unreadable = str(exc)
    return render(
        request,
        "board.html",
        session,
        status_code=status_code,
        title="Medical board",
        rooms=list(Room),
        classes=_classes(request),
        orientations=list(Orientation),
        states=states,
        unreadable=unreadable,
        **context,
    )


@router.get("/board", response_class=HTMLResponse)
async def board_page(request: Request) -> Response:
    return _page(request, require(request, Permission.MEDICAL))


def _options(form: FormData, operator: str) -> BoardOptions:
    room = Room(str(form.get("room", Room.STAFF_ROOM.value)))
    classes = frozenset(str(c) for c in form.getlist("classes") if str(c))
    orientation = Orientation(str(form.get("orientation", Orientation.PORTRAIT.value)))
    return BoardOptions(
        filter=BoardFilter(room=room, classes=classes),
        operator=operator,
        orientation=orientation,
    )


@router.post("/board/preview", response_class=HTMLResponse)
async def board_preview(request: Request) -> Response:
    session, form = await posted(request, Permission.MEDICAL)
    try:
        options = _options(form, session.operator)
        with store_for(request) as store:
            board = build_board(store, options)
            with store.transaction() as conn:
                audit.append(
                    conn,
                    store.key,
                    action="board_preview",
                    operator=session.operator,
                    details={"room": options.filter.room.value, "cards": len(board.cards)},
                )
    except ValueError:
        return _page(request, session, 400, problem="Choose a room and an orientation.")
    except (ConsentError, PipelineError) as exc:
        return _page(request, session, 400, problem=str(exc))
    return HTMLResponse(render_html(board), headers={"Content-Security-Policy": PREVIEW_CSP})


@router.post("/board/make", response_class=HTMLResponse)
async def board_make(request: Request) -> Response:
    session, form = await posted(request, Permission.MEDICAL)
    token = secrets.token_hex(8)
    folder = settings_of(request).work / "boards"
    folder.mkdir(mode=0o700, exist_ok=True)
    pdf = folder / f"{token}.pdf"
    try:
        options = replace(_options(form, session.operator), pdf=pdf)
        with store_for(request) as store:
            result = generate(store, options)
    except ValueError:
        return _page(request, session, 400, problem="Choose a room and an orientation.")
    except (ConsentError, PipelineError) as exc:
        return _page(request, session, 400, problem=str(exc))
    return _page(
        request,
        session,
        made=token,
        made_cards=len(result.board.cards),
        made_room=options.filter.room.title,
    )


@router.get("/board/download/{token}")
async def board_download(request: Request, token: str) -> Response:
    require(request, Permission.MEDICAL)
    if not token.isalnum():
        return Response(status_code=404)
    path: Path = settings_of(request).work / "boards" / f"{token}.pdf"
    if not path.is_file():
        return Response(status_code=404)
    return FileResponse(
        path,
        media_type="application/pdf",
        filename="medical-board-CONFIDENTIAL.pdf",
        background=BackgroundTask(path.unlink, missing_ok=True),
    )
