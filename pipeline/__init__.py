"""photoconsent's image pipeline: load, detect, match, redact, write, and the publish job."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("photoconsent")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
