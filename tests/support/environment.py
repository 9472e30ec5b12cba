"""Where the tests find the repository, the shared evaluation photos and outside programs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Real photos nobody on the team made (see its MANIFEST.md); never copied into the project.
EVAL_DIR = REPO.parent / "shared" / "eval"


def require_tool(name: str, package: str) -> str:
    """The path of the outside program ``name`` (from Debian's ``package``).

    Missing: skipped when run by hand, a failure under ``make test``, which installs it and
    sets PHOTOCONSENT_REQUIRE_TOOLS=1, so CI can never pass without the second opinion.
    """
    found = shutil.which(name)
    if found:
        return found
    message = f"{name} not found: install the Debian package {package} (make tools)"
    if os.environ.get("PHOTOCONSENT_REQUIRE_TOOLS") == "1":
        pytest.fail(message)
    pytest.skip(message)
