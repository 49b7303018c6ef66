"""The web console served by `openaml serve` under /console: lists, data insights, model,
evaluation and batch prediction pages, and a try-a-prediction form."""

from openaml.console.routes import build_console

__all__ = ["build_console"]
