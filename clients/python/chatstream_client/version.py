"""The installed package's version: pyproject.toml is its one source."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("chatstream-client")
except PackageNotFoundError:  # imported from a checkout that was never installed
    __version__ = "0+unknown"
