"""The deployment recipe in docs/web-service.md, checked against the service: the systemd
unit runs a valid `serve` command with room for its connections, the nginx block repeats
`serve`'s limits and strips what it must, and the address the proxy forwards is the one
the service counts refused requests by."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import httpx

from cli import main
from commands.serve import serve
from service.app import DEFAULT_MAX_UPLOAD
from service.guard import KNOWN_PATHS
from service.limits import (
    DEFAULT_BODY_IDLE_TIMEOUT,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_KEEP_ALIVE,
    DEFAULT_REQUEST_TIMEOUT,
)
from service.server import FD_HEADROOM
from tests.support.environment import REPO
from tests.support.service_factories import api_entries, running

DOC = (REPO / "docs" / "web-service.md").read_text(encoding="utf-8")


def block(language: str) -> str:
    (found,) = re.findall(rf"```{language}\n(.*?)```", DOC, flags=re.S)
    return found


NGINX = block("nginx")
UNIT = block("ini")


def directive(name: str) -> str:
    (value,) = re.findall(rf"^\s*{name}\s+([^;]+);", NGINX, flags=re.M)
    return value.strip()


def test_the_unit_runs_a_valid_serve_command_with_room_for_its_connections() -> None:
    (exec_start,) = re.findall(r"^ExecStart=(.*)$", UNIT, flags=re.M)
    argv = shlex.split(exec_start)
    assert Path(argv[0]).name == "photoconsent"
    assert argv[1:3] == ["--data-dir", "/srv/photoconsent"] and argv[3] == "serve"
    # Parsed under the real group (a bare context would cache serve's help option without
    # the group's "-h"); raises on any unknown or invalid option.
    parent = main.make_context("photoconsent", argv[1:4])
    ctx = serve.make_context("serve", argv[4:], parent=parent)
    assert ctx.params["host"] == "127.0.0.1"
    (nofile,) = re.findall(r"^LimitNOFILE=(\d+)$", UNIT, flags=re.M)
    assert int(nofile) >= ctx.params["max_connections"] + FD_HEADROOM
    assert re.search(r"^UMask=0077$", UNIT, flags=re.M)
    assert re.search(r"^ReadWritePaths=/srv/photoconsent$", UNIT, flags=re.M)


def test_the_proxy_repeats_the_services_limits() -> None:
    assert directive("client_max_body_size") == f"{DEFAULT_MAX_UPLOAD // 1024 // 1024}m"
    assert directive("client_header_timeout") == f"{DEFAULT_HEADER_TIMEOUT:g}s"
    assert directive("client_body_timeout") == f"{DEFAULT_BODY_IDLE_TIMEOUT:g}s"
    assert directive("keepalive_timeout") == f"{DEFAULT_KEEP_ALIVE}s"
    # The proxy waits longer than the service's own limit, so the service's 503 arrives.
    assert float(directive("proxy_read_timeout").rstrip("s")) > DEFAULT_REQUEST_TIMEOUT
    assert directive("proxy_request_buffering") == "on"
    assert directive("proxy_pass") == "http://127.0.0.1:8750"


def test_the_proxy_allows_one_address_and_passes_only_the_api() -> None:
    assert re.search(r"^\s*allow\s+[\d.]+;", NGINX, flags=re.M)
    assert directive("deny") == "all"
    (paths,) = re.findall(r"location ~ \^/\((.*?)\)\$", NGINX)
    assert {"/" + p.replace("\\.", ".") for p in paths.split("|")} == set(KNOWN_PATHS)
    assert directive("ssl_protocols") == "TLSv1.2 TLSv1.3"


def test_the_proxy_strips_what_the_service_must_not_trust_or_log() -> None:
    (log_format,) = re.findall(r"log_format photoconsent (.*?);", NGINX, flags=re.S)
    for leaky in ("$request ", "$request_uri", "$args", "$query_string", "$http_authorization"):
        assert leaky not in log_format + " "
    assert "$uri" in log_format
    headers = dict(re.findall(r"proxy_set_header (\S+) (\S+);", NGINX))
    assert headers["X-Forwarded-For"] == "$remote_addr"  # replaces a forged one
    assert headers["Forwarded"] == headers["X-Real-IP"] == headers["Cookie"] == '""'
    assert "$proxy_add_x_forwarded_for" not in NGINX


def test_the_forwarded_address_is_what_the_service_counts(data_dir: Path, token: str) -> None:
    forwarded = "203.0.113.10"
    with running(data_dir, token) as srv:
        # As the proxy on the same machine sends it.
        response = httpx.post(srv.url + "/check", headers={"X-Forwarded-For": forwarded})

    assert response.status_code == 401
    (counted,) = api_entries(data_dir, "api_unauthenticated")
    assert counted.details["by_source"] == {forwarded: 1}
