"""Running the office app: uvicorn on the PC's loopback address unless told otherwise."""

from __future__ import annotations

import ipaddress

import uvicorn

from web.app import create_app
from web.pages import AppSettings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def is_loopback(host: str) -> bool:
    """True for an address only this computer can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_server(settings: AppSettings, host: str, port: int) -> uvicorn.Server:
    """The uvicorn server for the app. Its access log is off: addresses carry pupil IDs
    (``/pupils/P0001``) and the audit log already says who did what."""
    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        server_header=False,
        timeout_keep_alive=5,
    )
    return uvicorn.Server(config)
