"""OpenAML: a self-hosted service that speaks the Amazon Machine Learning API."""


def __getattr__(name: str) -> str:
    """`__version__`, read from the installed package's metadata when first asked for: importing
    importlib.metadata here took the first tenth of a second of every `openaml` command, before
    its Ctrl-C handler (openaml/cli/__init__.py) was in place."""
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("openaml")
    except PackageNotFoundError:  # running from a source tree that is not installed
        found = "0.0.0"
    globals()["__version__"] = found
    return found
