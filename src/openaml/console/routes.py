"""build_console(service, port): the web console's routes, mounted by the app at /console.

Reads and writes only through the service's API methods, each call validated as an API request
(`api`), plus stored reports, logs, model artifacts and result objects (see `reports`). Pages
are server-rendered Jinja2 with inline SVG charts; the only scripts are static files (the
threshold slider, the delete confirmation), as the Content-Security-Policy of `guard` demands.
Every POST passes `guard` (CSRF token, same origin, size). Blocking service calls run in
Starlette's thread pool.
"""

from __future__ import annotations

import math
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson
from jinja2 import Environment, FileSystemLoader, Undefined, select_autoescape
from markupsafe import Markup, escape
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route, Router
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Scope

from openaml.console import charts, create
from openaml.console.csrf import CsrfTokens, load_secret
from openaml.console.forms import parse_form
from openaml.console.guard import SAFE_METHODS, UPLOAD_PATH, ConsoleGuard
from openaml.console.kinds import ACTIVE, COMPARATORS, KINDS, Kind
from openaml.console.pages import ACTIONS, Pages
from openaml.console.port import ConsolePort
from openaml.console.wizards import Wizards
from openaml.errors import ServiceError
from openaml.storage.uris import StorageError, parse_s3_uri

HERE = Path(__file__).parent
LOCATION_PREFIXES = ("s3://", "http://", "https://")
UPLOAD_FORM_PATH = "/create/upload"  # the upload form's POST without JavaScript


def make_environment() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"),
                      autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = format_number
    env.filters["when"] = format_time
    env.filters["pretty_json"] = pretty_json
    env.globals.update(kinds=KINDS, charts=charts, active=ACTIVE)
    return env


def format_number(value: Any, digits: int = 4) -> str:
    """Numbers for people: integers with thousands separators, floats to `digits` significant;
    locations (s3://, http://) may wrap after each slash, not inside a name."""
    if value is None or value == "" or isinstance(value, Undefined) or (isinstance(value, float) and math.isnan(value)):
        return "not available"  # NaN: e.g. the passes before the last of a model trained by an early version
    if isinstance(value, str) and value.startswith(LOCATION_PREFIXES):
        scheme, _, path = value.partition("://")
        return Markup("<wbr>").join([escape(scheme + "://"), *(escape(part) for part in _after_slashes(path))])
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() and abs(value) < 1e15 else f"{value:.{digits}g}"
    return str(value)


def _after_slashes(path: str) -> list[str]:
    """`path` cut after each slash ("a/b/c" -> "a/", "b/", "c")."""
    parts = path.split("/")
    return [part + "/" for part in parts[:-1]] + [parts[-1]]


def format_time(value: Any) -> str:
    if value is None or isinstance(value, Undefined):
        return ""
    try:
        return str(value.strftime("%Y-%m-%d %H:%M:%S UTC"))
    except AttributeError:
        return str(value)


def pretty_json(value: Any) -> str:
    """JSON indented for reading; text that is not JSON, or nested too deep for orjson (1024
    levels to read, 254 to write), is shown as it is."""
    try:
        document = orjson.loads(value) if isinstance(value, str) else value
        return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode()
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        return value if isinstance(value, str) else str(value)


def build_console(service: Any, port: ConsolePort, upload_bytes: int = 2 << 30) -> ASGIApp:
    """The console as an ASGI app; mount it with `Mount("/console", build_console(service, port))`:
    `service` answers the API operations, `port` the rest; `upload_bytes` bounds an uploaded
    file (Settings.console_upload_bytes). Its CSRF secret is kept in the port's data
    directory (see `csrf`)."""
    env = make_environment()
    pages = Pages(service, port)
    wizards = Wizards(pages.api, port)
    tokens = CsrfTokens(load_secret(port.data_dir))
    details: dict[str, tuple[str, Callable[..., dict[str, Any]]]] = {
        "datasources": ("datasource.html", pages.datasource), "models": ("model.html", pages.model),
        "evaluations": ("evaluation.html", pages.evaluation),
        "batchpredictions": ("batch.html", pages.batch_prediction)}

    def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        """The page, carrying the CSRF token in its forms (and in a cookie, set when missing)."""
        base = _base(request)
        token, fresh = tokens.for_page(request.cookies)
        context.setdefault("notice", tokens.notice(request.query_params.get("notice"),
                                                   request.query_params.get("sig")))
        body = env.get_template(template).render(base=base, request=request, csrf_token=token, **context)
        response = HTMLResponse(body, status_code=status_code)
        if fresh:
            response.set_cookie(tokens.cookie, token, path=base or "/", httponly=True, samesite="lax")
        return response

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
            return render(request, "list.html", status_code=exc.http_status, kind=kind, rows=[],
                          error=_message(exc), query=dict(request.query_params), comparators=COMPARATORS)
        return render(request, "list.html", **context)

    async def refused(request: Request, path: str, error: ServiceError,
                      typed: dict[str, Mapping[str, str]] | None = None) -> Response:
        """A refused action: the entity page it came from with the message, under the error's
        status, its forms holding what was `typed` (by action: a refused rename or tag)."""
        segment, _, entity_id = urllib.parse.urlsplit(path).path.strip("/").partition("/")
        if segment in details and entity_id and "/" not in entity_id:
            template, build = details[segment]
            try:
                context = await run_in_threadpool(build, {"entity_id": entity_id}, {})
            except ServiceError:
                pass
            else:
                return render(request, template, status_code=error.http_status, alert=_message(error),
                              typed=typed or {}, **context)
        return render(request, "error.html", status_code=error.http_status, error=_message(error))

    async def action(request: Request) -> Response:
        """POST rename / delete / threshold; a redirect carrying a notice, or the page with the error."""
        kind = KINDS.get(request.path_params["kind"])
        entity_id, verb = request.path_params["entity_id"], request.path_params["verb"]
        if kind is None or verb not in ACTIONS:
            return render(request, "error.html", status_code=404, error="No such action")
        form = await _form(request)
        entity_page = f"/{kind.segment}/{entity_id}"
        back = _local_path(form.get("next"), _base(request))
        try:
            notice = await run_in_threadpool(pages.act, kind, entity_id, verb, form)
        except ServiceError as exc:
            return await refused(request, back or entity_page, exc,
                                 typed={verb: form} if verb in ("rename", "tag-add") else None)
        return noticed(request, back or (f"/{kind.segment}" if verb == "delete" else entity_page), notice)

    async def create_from_model(request: Request) -> Response:
        """POST an evaluation or batch prediction of the model: its page once created, else the
        model page with the refusal beside the field it concerns."""
        model_id, what = request.path_params["entity_id"], request.path_params["what"]
        make = {"evaluate": (create.create_evaluation, "evaluations"),
                "batch-predict": (create.create_batch_prediction, "batchpredictions")}.get(what)
        if make is None:
            return render(request, "error.html", status_code=404, error="No such action")
        form = await _form(request)
        try:
            new_id = await run_in_threadpool(make[0], pages.api, model_id, form)
        except create.FieldErrors as exc:
            try:
                context = await run_in_threadpool(pages.model, {"entity_id": model_id}, {})
            except ServiceError as missing:  # the model is gone (or never was)
                return render(request, "error.html", status_code=missing.http_status, error=missing)
            # a DELETED or FAILED model's page draws no create form to show the refusal beside
            drawn = context["entity"].get("Status") not in ("DELETED", "FAILED")
            return render(request, "model.html", status_code=400, errors={what: exc.errors}, values={what: form},
                          alert=None if drawn else "; ".join(exc.errors.values()), **context)
        return noticed(request, f"/{make[1]}/{new_id}", f"Created {new_id}")

    async def compare(request: Request) -> Response:
        context = await run_in_threadpool(pages.compare, request.query_params)
        return render(request, "compare.html", **context)

    async def browse(request: Request) -> Response:
        context = await run_in_threadpool(wizards.browse, request.query_params)
        return render(request, "browse.html", **context)

    async def new_datasource(request: Request) -> Response:
        """GET: the wizard (with `location`, its guessed schema); POST: CreateDataSourceFromS3."""
        if request.method == "GET":
            context = await run_in_threadpool(wizards.datasource_form, request.query_params)
            return render(request, "create-datasource.html", **context)
        form = await _form(request)
        try:
            new_id = await run_in_threadpool(create.create_datasource, pages.api, form)
        except create.FieldErrors as exc:
            context = await run_in_threadpool(wizards.datasource_form, {"location": form.get("location", "")})
            context.update(errors=exc.errors, values=form, guess=create.guess_from_form(form) or context["guess"])
            return render(request, "create-datasource.html", status_code=400, **context)
        return noticed(request, f"/datasources/{new_id}", f"Created {new_id}")

    async def new_model(request: Request) -> Response:
        """GET: the wizard (with `datasource`, its type and recipe); POST: the model, and with
        "evaluate" its 70/30 datasources and evaluation."""
        if request.method == "GET":
            context = await run_in_threadpool(wizards.model_form, request.query_params)
            return render(request, "create-model.html", **context)
        form = await _form(request)
        try:
            model_id, evaluation_id = await run_in_threadpool(create.create_model, pages.api, form)
        except create.FieldErrors as exc:
            context = await run_in_threadpool(wizards.model_form, {"datasource": form.get("datasource", "")})
            context.update(errors=exc.errors, values=form, recipe=form.get("recipe", context["recipe"]))
            return render(request, "create-model.html", status_code=400, **context)
        made = f"Created {model_id}" + (f" and its evaluation {evaluation_id}" if evaluation_id else "")
        return noticed(request, f"/models/{model_id}", made)

    async def check_recipe(request: Request) -> Response:
        form = await _form(request)
        return _json(await run_in_threadpool(wizards.check_recipe, form.get("datasource", ""), form.get("recipe", "")))

    async def upload(request: Request) -> Response:
        """PUT a file (the body, streamed, at most `upload_bytes`) into the object store at ?uri=;
        an object already there is replaced only with ?overwrite=1 (409 otherwise)."""
        uri = request.query_params.get("uri", "")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > upload_bytes:
            return _json({"error": f"The file is larger than {upload_bytes:,} bytes"}, 413)
        try:
            if parse_s3_uri(uri).is_prefix:
                raise StorageError(f"{uri}: names a folder, not an object")
            if request.query_params.get("overwrite") != "1" and await run_in_threadpool(port.exists, uri):
                return _json({"error": f"{uri} exists already", "exists": True}, 409)
            writer = await run_in_threadpool(port.open_upload, uri)
        except StorageError as exc:
            return _json({"error": str(exc)}, 400)
        size, kept = 0, False
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > upload_bytes:
                    return _json({"error": f"The file is larger than {upload_bytes:,} bytes"}, 413)
                await run_in_threadpool(writer.write, chunk)
            await run_in_threadpool(writer.close)
            kept = True
        except ClientDisconnect:  # the browser went away: nothing is kept
            return _json({"error": "The upload was interrupted"}, 400)
        except (StorageError, OSError) as exc:
            return _json({"error": f"The object store did not keep the file: {exc}"}, 502)
        finally:
            if not kept:
                await run_in_threadpool(getattr(writer, "abort", writer.close))
        return _json({"uri": uri, "size": size})

    async def upload_without_script(request: Request) -> Response:
        """POST of the upload form, which only a browser without JavaScript sends (upload.js
        PUTs the file itself): the wizard, saying what to do instead."""
        form = await _form(request)
        context = await run_in_threadpool(wizards.datasource_form, {})
        context["errors"]["upload"] = (
            "Uploading a file needs JavaScript, which is off in this browser: turn it on and upload again, or copy "
            "the file into the object store another way (such as aws s3 cp) and type its location above.")
        context["upload_folder"] = form.get("folder") or context["upload_folder"]
        return render(request, "create-datasource.html", status_code=400, **context)

    async def elsewhere(request: Request) -> Response:
        """Any other address or method. The address of a form's POST, loaded again (the page a
        refused action left in the address bar), goes to the page of its entity; anything else
        is the console's page of the error, not bare text."""
        parts = request.path_params["path"].strip("/").split("/")
        if request.method in SAFE_METHODS:
            if len(parts) >= 3 and parts[0] in details and (parts[2] in ACTIONS or parts[2] == "create"):
                return RedirectResponse(f"{_base(request)}/{parts[0]}/{urllib.parse.quote(parts[1])}", 303)
            return render(request, "error.html", status_code=404,
                          error="No such page: follow a link from the console's pages instead.")
        return render(request, "error.html", status_code=405,
                      error=f"This address takes no {request.method}: open the console's page and use its forms.")

    def noticed(request: Request, path: str, notice: str) -> Response:
        """A redirect to the console's `path`, carrying `notice` with its signature."""
        signed = urllib.parse.urlencode({"notice": notice, "sig": tokens.sign_notice(notice)})
        return RedirectResponse(f"{_base(request)}{path}{'&' if '?' in path else '?'}{signed}", status_code=303)

    async def predict(request: Request) -> Response:
        form = await _form(request) if request.method == "POST" else {}
        try:
            context = await run_in_threadpool(pages.predict, request.path_params["entity_id"], form)
        except ServiceError as exc:
            return render(request, "error.html", status_code=exc.http_status, error=exc)
        return render(request, "predict.html", **context)

    async def job_log(request: Request) -> Response:
        """The log of an entity's job, as the job wrote it."""
        kind = KINDS.get(request.path_params["kind"])
        if kind is None:
            return render(request, "error.html", status_code=404, error="No such page")
        entity_id = request.path_params["entity_id"]
        try:
            entity = await run_in_threadpool(pages.api, kind.get_op, {kind.id_member: entity_id})
            text = await run_in_threadpool(port.job_log, kind.resource, entity_id)
        except ServiceError as exc:
            return render(request, "error.html", status_code=exc.http_status, error=exc)
        if request.query_params.get("raw") == "1":  # live.js follows a running job's log
            return PlainTextResponse(text or "", headers={"Cache-Control": "no-store"})
        return render(request, "log.html", kind=kind, entity=entity, entity_id=entity_id, log=text,
                      refresh=entity.get("Status") in ACTIVE)

    async def statuses(request: Request) -> Response:
        """The statuses a live page asks for (?e=segment/ID, repeated), as JSON."""
        return _json(await run_in_threadpool(pages.statuses, request.query_params.getlist("e")))

    async def download(request: Request) -> Response:
        entity_id = request.path_params["entity_id"]
        try:
            index = int(request.query_params.get("file", "0"))
            uri, name = await run_in_threadpool(pages.result_file, entity_id, index)
        except (ServiceError, ValueError, IndexError):
            return HTMLResponse("No such result file", status_code=404)
        stream = await run_in_threadpool(port.result_stream, uri)

        def chunks() -> Any:
            with stream:
                while block := stream.read(1 << 16):
                    yield block

        return StreamingResponse(chunks(), media_type="application/gzip",
                                 headers={"Content-Disposition": f'attachment; filename="{name}"'})

    router = Router(routes=[
        Route("/", overview, methods=["GET"]),
        Route("/status", statuses, methods=["GET"]),
        Route("/browse", browse, methods=["GET"]),
        Route("/compare", compare, methods=["GET"]),
        Route("/create/datasource", new_datasource, methods=["GET", "POST"]),
        Route("/create/model", new_model, methods=["GET", "POST"]),
        Route("/check/recipe", check_recipe, methods=["POST"]),
        Route(UPLOAD_PATH, upload, methods=["PUT"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        *(Route(f"/{segment}/{{entity_id}}", page(template, build), methods=["GET"])
          for segment, (template, build) in details.items()),
        Route("/models/{entity_id}/predict", predict, methods=["GET", "POST"]),
        Route("/models/{entity_id}/create/{what}", create_from_model, methods=["POST"]),
        Route("/batchpredictions/{entity_id}/download", download, methods=["GET"]),
        Route("/{kind}", listing, methods=["GET"]),
        Route("/{kind}/{entity_id}/log", job_log, methods=["GET"]),
        Route("/{kind}/{entity_id}/{verb}", action, methods=["POST"]),
        Route(UPLOAD_FORM_PATH, upload_without_script, methods=["POST"]),
        Route("/{path:path}", elsewhere, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
    ])

    def refusal_page(scope: Scope, message: str, status_code: int) -> Response:
        """The guard's refusal of a form post, as a console page."""
        return render(Request(scope), "error.html", status_code=status_code, error=message)

    return ConsoleGuard(router, tokens, refusal_page)


async def _form(request: Request) -> dict[str, str]:
    """The POST's form; ConsoleGuard has bounded its size and checked its CSRF token."""
    return parse_form(await request.body())


def _base(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _local_path(url: str | None, base: str) -> str | None:
    """A `next` URL under the console, as a path below `base`; None for anything else."""
    if not url or not url.startswith(base + "/") or "\\" in url:
        return None
    rest = url[len(base):]
    parts = urllib.parse.urlsplit(rest)
    return rest if not parts.scheme and not parts.netloc and not rest.startswith("//") else None


def _json(document: Any, status: int = 200) -> Response:
    """A JSON answer to a page's script: never cached."""
    return Response(orjson.dumps(document), status_code=status, media_type="application/json",
                    headers={"Cache-Control": "no-store"})


def _message(error: ServiceError) -> str:
    return f"{error.error_type}: {error}"


__all__ = ["build_console", "Kind"]
