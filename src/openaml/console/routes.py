"""build_console(service): the web console's routes, mounted by the app at /console.

Reads and writes only through the service's API methods (plus stored reports, logs, model
artifacts and result objects, see `reports`). Pages are server-rendered Jinja2 with inline
SVG charts; the only scripts are the threshold slider and the prediction form helpers.
Blocking service calls run in Starlette's thread pool.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, Undefined, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route, Router
from starlette.staticfiles import StaticFiles

from openaml.console import charts
from openaml.console.kinds import ACTIVE, COMPARATORS, KINDS, Kind
from openaml.console.pages import Pages
from openaml.errors import ServiceError

HERE = Path(__file__).parent
MAX_FORM_BYTES = 1 << 20


def make_environment() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"),
                      autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = format_number
    env.filters["when"] = format_time
    env.filters["pretty_json"] = pretty_json
    env.globals.update(kinds=KINDS, charts=charts, active=ACTIVE)
    return env


def format_number(value: Any, digits: int = 4) -> str:
    """Numbers for people: integers with thousands separators, floats to `digits` significant."""
    if value is None or value == "" or isinstance(value, Undefined):
        return "not available"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() and abs(value) < 1e15 else f"{value:.{digits}g}"
    return str(value)


def format_time(value: Any) -> str:
    if value is None or isinstance(value, Undefined):
        return ""
    try:
        return str(value.strftime("%Y-%m-%d %H:%M:%S UTC"))
    except AttributeError:
        return str(value)


def pretty_json(value: Any) -> str:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, indent=2, ensure_ascii=False)


def build_console(service: Any) -> Router:
    """The console as a Router; mount it with `Mount("/console", build_console(service))`."""
    env = make_environment()
    pages = Pages(service)

    def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        base = request.scope.get("root_path", "").rstrip("/")
        body = env.get_template(template).render(base=base, request=request,
                                                 notice=request.query_params.get("notice"), **context)
        return HTMLResponse(body, status_code=status_code)

    def page(template: str, build: Callable[..., dict[str, Any]]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            try:
                context = await run_in_threadpool(build, request.path_params, request.query_params)
            except ServiceError as exc:
                return render(request, "error.html", status_code=exc.http_status, error=exc)
            return render(request, template, **context)
        return endpoint

    async def overview(request: Request) -> Response:
        context = await run_in_threadpool(pages.overview)
        return render(request, "overview.html", **context)

    async def listing(request: Request) -> Response:
        kind = KINDS.get(request.path_params["kind"])
        if kind is None:
            return render(request, "error.html", status_code=404, error="No such page")
        try:
            context = await run_in_threadpool(pages.listing, kind, request.query_params)
        except ServiceError as exc:
            context = {"kind": kind, "rows": [], "next_token": None, "error": exc,
                       "query": dict(request.query_params), "comparators": COMPARATORS}
        return render(request, "list.html", **context)

    async def action(request: Request) -> Response:
        """POST rename / delete / threshold; answers with a redirect carrying a notice."""
        kind = KINDS.get(request.path_params["kind"])
        entity_id, verb = request.path_params["entity_id"], request.path_params["verb"]
        if not _same_origin(request):
            return HTMLResponse("Cross-site form posts are refused.", status_code=403)
        form = await _form(request)
        base = request.scope.get("root_path", "").rstrip("/")
        if kind is None or verb not in ("rename", "delete", "threshold"):
            return render(request, "error.html", status_code=404, error="No such action")
        try:
            notice = await run_in_threadpool(pages.act, kind, entity_id, verb, form)
        except ServiceError as exc:
            notice = f"{type(exc).__name__}: {exc}"
        except ValueError:
            notice = "The value given is not a number"
        target = f"{base}/{kind.segment}" if verb == "delete" else f"{base}/{kind.segment}/{entity_id}"
        if form.get("next", "").startswith(base + "/"):
            target = form["next"]
        separator = "&" if "?" in target else "?"
        return RedirectResponse(f"{target}{separator}notice={urllib.parse.quote(notice)}", status_code=303)

    async def predict(request: Request) -> Response:
        form = await _form(request) if request.method == "POST" else {}
        try:
            context = await run_in_threadpool(pages.predict, request.path_params["entity_id"], form)
        except ServiceError as exc:
            return render(request, "error.html", status_code=exc.http_status, error=exc)
        return render(request, "predict.html", **context)

    async def download(request: Request) -> Response:
        entity_id = request.path_params["entity_id"]
        try:
            index = int(request.query_params.get("file", "0"))
            uri, name = await run_in_threadpool(pages.result_file, entity_id, index)
        except (ServiceError, ValueError, IndexError):
            return HTMLResponse("No such result file", status_code=404)
        stream = await run_in_threadpool(service.ctx.objects.open_read, uri)

        def chunks() -> Any:
            with stream:
                while block := stream.read(1 << 16):
                    yield block

        return StreamingResponse(chunks(), media_type="application/gzip",
                                 headers={"Content-Disposition": f'attachment; filename="{name}"'})

    return Router(routes=[
        Route("/", overview, methods=["GET"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        Route("/datasources/{entity_id}", page("datasource.html", pages.datasource), methods=["GET"]),
        Route("/models/{entity_id}", page("model.html", pages.model), methods=["GET"]),
        Route("/models/{entity_id}/predict", predict, methods=["GET", "POST"]),
        Route("/evaluations/{entity_id}", page("evaluation.html", pages.evaluation), methods=["GET"]),
        Route("/batchpredictions/{entity_id}", page("batch.html", pages.batch_prediction), methods=["GET"]),
        Route("/batchpredictions/{entity_id}/download", download, methods=["GET"]),
        Route("/{kind}", listing, methods=["GET"]),
        Route("/{kind}/{entity_id}/{verb}", action, methods=["POST"]),
    ])


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form body (last value wins); bounded in size."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            break
    pairs = urllib.parse.parse_qsl(body[:MAX_FORM_BYTES].decode("utf-8", errors="replace"),
                                   keep_blank_values=True)
    return dict(pairs)


def _same_origin(request: Request) -> bool:
    """Refuse form posts from other sites (the console has no login of its own)."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin or origin == "null":
        return origin != "null"
    return urllib.parse.urlsplit(origin).netloc == request.headers.get("host", "")


__all__ = ["build_console", "Kind"]
