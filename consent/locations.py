"""Where things are: the data directory, its key directory and the per-user config file.

The data directory is found the same way from any folder (first that applies):

1. ``--data-dir`` (the command's option);
2. ``$PHOTOCONSENT_HOME``;
3. the per-user config file ``init`` writes (``config.json`` in the per-user config
   folder platformdirs names: ``~/.config/photoconsent`` on Linux,
   ``~/Library/Application Support/photoconsent`` on macOS,
   ``%LOCALAPPDATA%\\photoconsent`` on Windows; ``$PHOTOCONSENT_CONFIG_DIR`` overrides it);
4. ``./photoconsent-data`` in the current folder (how early versions worked).

The keys (``secret.key``, ``medical.key``) live in a key directory *outside* the data
directory, so a backup of one never holds the other: by default ``keys/<name>-<tag>`` in the
per-user config folder. The data directory records where in its ``key-location`` file (one
line, the absolute path); a data directory without that file keeps its keys inside itself,
as before.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from consent import files
from consent.errors import DataDirError

HOME_ENV = "PHOTOCONSENT_HOME"
CONFIG_DIR_ENV = "PHOTOCONSENT_CONFIG_DIR"
CONFIG_NAME = "config.json"
DEFAULT_DIR = "photoconsent-data"
DB_NAME = "registry.sqlite3"
KEY_LOCATION_NAME = "key-location"


def config_dir() -> Path:
    """The per-user config folder: ``$PHOTOCONSENT_CONFIG_DIR``, else platformdirs'."""
    override = os.environ.get(CONFIG_DIR_ENV)
    if override:
        return Path(override).expanduser().absolute()
    # Imported here: only commands that look for the config need it.
    import platformdirs

    return Path(platformdirs.user_config_dir("photoconsent", appauthor=False, roaming=False))


def config_file() -> Path:
    return config_dir() / CONFIG_NAME


def default_data_dir() -> Path | None:
    """The data directory the config file names, or None (no file, or unreadable)."""
    try:
        value = json.loads(config_file().read_text(encoding="utf-8")).get("data_dir")
    except (OSError, ValueError, AttributeError):
        return None
    return Path(value) if isinstance(value, str) and value else None


def set_default_data_dir(data_dir: Path) -> Path:
    """Record ``data_dir`` as this user's data directory in the config file; return it."""
    path = config_file()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    body = json.dumps({"data_dir": str(Path(data_dir).absolute())}, indent=2) + "\n"
    files.replace_atomic(path, body.encode("utf-8"), mode=files.PRIVATE)
    return path


@dataclass(frozen=True)
class DataDirChoice:
    """The data directory chosen, how (``source``), and every place looked at, in order."""

    path: Path
    source: str
    looked: tuple[str, ...]

    @property
    def db_path(self) -> Path:
        return self.path / DB_NAME

    def missing_message(self) -> str:
        """The "no data directory" error, naming each place looked in."""
        places = "; ".join(self.looked)
        return (
            f"No photoconsent data in {self.path} (chosen by {self.source}). Looked in: "
            f"{places}. Run `photoconsent init` to make a data directory, or give the "
            f"right one with --data-dir or ${HOME_ENV}."
        )


def find_data_dir(option: str | os.PathLike[str] | None) -> DataDirChoice:
    """The data directory by the order in the module docstring (it need not exist)."""
    looked: list[str] = []
    if option:
        path = Path(option).expanduser().absolute()
        return DataDirChoice(path, "--data-dir", (f"--data-dir {path}",))
    looked.append("--data-dir (not given)")
    home = os.environ.get(HOME_ENV)
    if home:
        path = Path(home).expanduser().absolute()
        looked.append(f"${HOME_ENV} = {path}")
        return DataDirChoice(path, f"${HOME_ENV}", tuple(looked))
    looked.append(f"${HOME_ENV} (not set)")
    recorded = default_data_dir()
    if recorded is not None:
        looked.append(f"the config file {config_file()}, which names {recorded}")
        return DataDirChoice(recorded, f"the config file {config_file()}", tuple(looked))
    looked.append(f"the config file {config_file()} (none)")
    path = Path(DEFAULT_DIR).absolute()
    looked.append(f"./{DEFAULT_DIR} in the current folder = {path}")
    return DataDirChoice(path, f"the default ./{DEFAULT_DIR}", tuple(looked))


def default_key_dir(data_dir: Path) -> Path:
    """Where `init` puts a new data directory's keys: per user, one folder per data
    directory (its name and a tag of its full path, so two schools never share keys)."""
    data_dir = Path(data_dir).absolute()
    tag = hashlib.sha256(str(data_dir).encode("utf-8")).hexdigest()[:10]
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in data_dir.name)[:40]
    return config_dir() / "keys" / f"{name or 'data'}-{tag}"


def recorded_key_dir(data_dir: Path) -> Path | None:
    """The key directory the data directory's ``key-location`` file names, or None."""
    try:
        text = (Path(data_dir) / KEY_LOCATION_NAME).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DataDirError(
            f"Cannot read {Path(data_dir) / KEY_LOCATION_NAME}: {exc.strerror}."
        ) from None
    return Path(text) if text else None


def key_dir(data_dir: Path) -> Path:
    """Where this data directory's keys are: the recorded key directory, else inside it."""
    return recorded_key_dir(data_dir) or Path(data_dir)


def record_key_dir(data_dir: Path, directory: Path) -> None:
    """Write the data directory's ``key-location`` file (replacing it in one step)."""
    body = f"{Path(directory).absolute()}\n".encode()
    files.replace_atomic(Path(data_dir) / KEY_LOCATION_NAME, body, mode=files.PRIVATE)
