"""The screens of the office app, one router per area."""

from __future__ import annotations

from fastapi import FastAPI


def register_routes(app: FastAPI) -> None:
    from web.views import accounts, board, dpo, enrol, publish, register, review, takedown

    for module in (register, enrol, publish, review, takedown, board, accounts, dpo):
        app.include_router(module.router)
