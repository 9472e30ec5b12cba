"""photoconsent's image core: load, find metadata, detect, match, redact, encode.

No database and nothing else of the project: every function takes pixels, bytes, boxes and
plain data (a gallery of encodings, a set of permitted pupils) and returns plain data.
See docs/architecture.md for the packages above it.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("photoconsent")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
