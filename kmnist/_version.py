"""The package version, in a module of its own so that every part can read it
without importing the package's public API (and with it, a cycle)."""

__version__ = "0.1.0"
