"""OpenAML: a self-hosted service that speaks the Amazon Machine Learning API."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("openaml")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
