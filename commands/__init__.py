"""photoconsent's CLI commands, one module per area; ``cli.main`` registers them."""

from pipeline import __version__

__all__ = ["__version__"]
