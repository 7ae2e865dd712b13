"""gradlab's version, defined once (pyproject.toml reads it; every table records it)."""

__version__ = "0.2.0"
