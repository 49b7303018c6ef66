"""build_app(settings): the one place where the parts are wired together."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import threading
import uuid
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Mount, Route
from starlette.types import ASGIApp

from openaml import __version__
from openaml.cluster import Cluster, connect_cluster, uses_data_folder
from openaml.console import build_console
from openaml.jobs.engine import THREADS_PER_WORKER, JobEngine
from openaml.jobs.record_info import read_threshold
from openaml.jobs.repeated_failures import RepeatedFailures
from openaml.jobs.retention import release_all
from openaml.jobs.tasks import LOG_FILE, REPORT_FILES, Tasks
from openaml.jobs.warmup import warm_up
from openaml.protocol.routing import build_dispatch_table
from openaml.protocol.sigv4 import (
    Authorization,
    admit_request,
    load_credentials,
    load_user_names,
    verify_request,
)
from openaml.protocol.spec import ServiceSpec
from openaml.runtime import open_runtime, prepare_job_process
from openaml.server.aws_json import AwsJsonEndpoint
from openaml.server.cors import ApiCors
from openaml.server.guard import AccessGate, HostGuard, SecurityHeaders, origin_host
from openaml.service import MachineLearningService, ServiceContext
from openaml.service.console_port import ServicePort
from openaml.service.context import RequestContext, wall_clock_ms
from openaml.service.endpoints import EXPLAIN_HEADER
from openaml.service.migration import migrate
from openaml.service.predictors import PredictorRegistry
from openaml.settings import ConfigurationError, Settings
from openaml.storage import ObjectStore, StorageError, join_uri, parse_s3_uri
from openaml.storage.objects import space_left
from openaml.store import EndpointStatus, EntityKind, Status, Store
from openaml.store.leases import FrontEnd, Leases

log = logging.getLogger(__name__)
FOLLOW_SECONDS = 1.0  # how often each process beats and follows the store's endpoints
SERVING_MS = 5_000    # processes seen within this long share an endpoint's rate limit
STALE_TEMP_SECONDS = 3_600  # a temporary file unchanged this long has no writer left
WARM_UP_STOP_SECONDS = 120.0  # the most a closing server waits for its warm-up's step under way (a compilation)


@dataclass
class Application:
    """The assembled service: the ASGI app plus the parts tests and the CLI may need."""

    settings: Settings
    context: ServiceContext
    service: MachineLearningService
    asgi: ASGIApp  # what the HTTP server runs: `web` behind the access checks
    web: Starlette
    tasks: Tasks
    unverified: bool
    cluster: Cluster | None = None  # with --executor dask

    def close(self) -> None:
        self.context.engine.stop()
        if self.cluster is not None:
            self.cluster.close()
        self.context.store.close()


def follow_store(store: Store, predictors: PredictorRegistry, front_end: FrontEnd,
                 stop: threading.Event, interval: float = FOLLOW_SECONDS) -> None:
    """Every `interval`: tell the store that this process serves, take this process's share of
    the endpoints' rate limit among the processes serving now, and keep its mounted endpoints in
    step with the store, where other processes of the service (or other servers on the same
    database) create and delete endpoints."""
    leases = Leases(store)
    registering = RepeatedFailures("registering this process in the store", log)
    following = RepeatedFailures("following real-time endpoints", log)
    while True:
        try:
            now = wall_clock_ms()
            leases.beat(front_end, now)
            predictors.set_processes(len(leases.live(now, SERVING_MS)))
            registering.succeeded()
        except Exception as exc:  # noqa: BLE001 - the next round tries again
            registering.failed(exc)
        if stop.wait(interval):
            return
        try:
            predictors.sync({
                r.id: (r.endpoint_status or EndpointStatus.NONE, read_threshold(r), r.endpoint_created_at)
                for r in store.select_endpoints()
            })
            following.succeeded()
        except Exception as exc:  # noqa: BLE001 - the next round tries again
            following.failed(exc)


def check_artifacts_location(objects: ObjectStore, uri: str) -> None:
    """ConfigurationError unless `uri` is an s3:// folder of `objects` that takes an object (a
    probe is written there, and deleted)."""
    try:
        if not parse_s3_uri(uri).is_prefix:
            raise ConfigurationError(f"The artifacts' location {uri} must be a folder: end it with '/'")
        probe = join_uri(uri, f".openaml-probe-{uuid.uuid4().hex}")
        objects.write_bytes(probe, b"")
        objects.delete(probe)
    except StorageError as exc:
        raise ConfigurationError(f"The artifacts' location {uri} cannot be used: {exc}") from None


def access_keys(settings: Settings) -> dict[str, str]:
    keys = dict(settings.access_keys)
    if settings.credentials_file is not None:
        keys.update(load_credentials(settings.credentials_file))
    return keys


def build_app(settings: Settings, run_jobs: bool = True) -> Application:
    """Assemble the service. `run_jobs=False` serves the API only (extra HTTP processes: one
    process of a server runs the jobs, the others follow the store)."""
    keys = access_keys(settings)
    if not keys and not settings.is_loopback:
        raise ConfigurationError(
            f"Bound to {settings.host}, which is not a loopback address: configure access keys "
            "(--credentials-file or OPENAML_ACCESS_KEYS) so that requests are verified"
        )
    settings.check()  # read ones were checked as they were read; these may be given directly
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    runtime = open_runtime(settings, settings.workers)
    store, objects, artifacts, tasks, execution = (runtime.store, runtime.objects, runtime.artifacts,
                                                   runtime.tasks, runtime.execution)
    migrate(store)  # records of an earlier version, before any reads them
    if settings.artifacts_uri:
        check_artifacts_location(objects, settings.artifacts_uri)
    if run_jobs and store.is_empty() and artifacts.holds_entities():
        log.warning("the store (%s) holds no entity, but %s holds files of earlier ones: was the database "
                    "removed or replaced? Entities created with their ids will overwrite their files: restore "
                    "the database, or move those files away", store.url,
                    settings.artifacts_uri or settings.artifacts_root)
    cluster = connect_cluster(settings) if run_jobs and settings.executor == "dask" else None
    job_workers = max(settings.workers, cluster.threads if cluster is not None else 0)
    executor = ThreadPoolExecutor(max_workers=THREADS_PER_WORKER * max(1, job_workers),
                                  thread_name_prefix="openaml-job")
    side_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="openaml-endpoint")

    # Create calls served by other HTTP processes cannot wake the scheduler: it polls the store.
    poll = 0.1 if settings.http_workers > 1 else 1.0
    front_end = FrontEnd.this_process(runs_jobs=run_jobs)
    job_tasks = cluster.tasks(tasks.datasource_peers) if cluster is not None else tasks.by_kind()
    engine = JobEngine(store, executor, job_tasks, job_workers, wall_clock_ms, runtime.write_log,
                       poll_seconds=poll, front_end=front_end,
                       lease_ms=max(1, round(settings.job_lease_seconds * 1000)))

    def report_endpoint(model_id: str, status: EndpointStatus) -> None:
        """READY or FAILED where that changes the endpoint's status: not once it was deleted
        meanwhile (it stays NONE), and not when a READY one is mounted again (a start-up),
        which changes nothing of the model, its LastUpdatedAt included."""
        store.update(EntityKind.MLMODEL, model_id,
                     {"endpoint_status": status, "last_updated_at": wall_clock_ms()},
                     only_if=[Status.COMPLETED],
                     only_if_endpoint=[s for s in (EndpointStatus.UPDATING, EndpointStatus.READY) if s != status])

    # Each process limits its share of the per-endpoint request rate (follow_store)
    warm = threading.Event()  # set once the start-up warm-up has run (job-running servers)
    predictors = PredictorRegistry(tasks.load_scorer, report_endpoint, settings.predict_rate_limit,
                                   side_executor, settings.endpoint_delay_seconds, settings.http_workers)
    context = ServiceContext(settings, store, objects, artifacts, engine, predictors,
                             tasks.databases, tasks.models)
    service = MachineLearningService(context)
    spec = ServiceSpec.load()
    table = build_dispatch_table(spec, service)
    if table.missing:
        raise ConfigurationError(f"operations without a handler: {', '.join(table.missing)}")

    users = load_user_names(settings.credentials_file) if settings.credentials_file else {}

    def admit(headers: Mapping[str, str]) -> Authorization:
        return admit_request(headers, keys.get if keys else None, now=dt.datetime.now(dt.UTC))

    def authenticate(method: str, url: str, headers: Mapping[str, str], body: bytes,
                     admitted: Authorization) -> RequestContext:
        key = verify_request(method, url, headers, body, keys.get if keys else None,
                             now=dt.datetime.now(dt.UTC), admitted=admitted)
        user = users.get(key)
        return context.request_context(f"arn:aws:iam::{settings.account_id}:user/{user}" if user else None,
                                       headers.get(EXPLAIN_HEADER))

    def served_inline(operation: str, params: dict[str, Any], request: RequestContext) -> bool:
        """Predict on a mounted endpoint needs neither the store nor the disk; one whose model
        makes tokens (a record of 7 KB took 2.5 s through 40 cartesians, while every other
        client waited) or an explained one computes more: a thread of the pool."""
        if operation != "Predict" or request.explain is not None:
            return False
        predictor = predictors.get(params["MLModelId"])
        return predictor is not None and predictor.scorer.quick

    endpoint = AwsJsonEndpoint(spec, table, admit, authenticate, settings.max_body_bytes,
                               served_inline)

    # The routes below are plain functions: Starlette runs them in its thread pool, as they
    # touch the store, the object store or the disk, which must never stall the event loop.
    def health(_: Request) -> Response:
        queue: dict[str, int | None]
        try:
            store_ok, queue = store.ping(), {**engine.queue_depth()}
        except Exception:  # noqa: BLE001 - reported, not raised
            store_ok, queue = False, {"pending": None, "running": None}
        described = objects.describe()
        cluster_state = cluster.state() if cluster is not None else None
        disk_ok = not uses_data_folder(settings) or space_left(settings.data_dir)
        # degraded: a part that jobs or calls need does not answer (calls or jobs then wait or
        # fail), or the data folder's disk has less free than writes keep (they then fail)
        degraded = (not store_ok or described.get("reachable") is False or not disk_ok
                    or (cluster_state is not None and not cluster_state["connected"]))
        return JSONResponse({  # public: states, never paths, addresses or data
            **({"warm": warm.is_set()} if run_jobs else {}),
            "status": "degraded" if degraded else "ok",
            "version": __version__,
            "store": {"ok": store_ok, "kind": store.engine.dialect.name},
            "objects": {"kind": described.get("kind"), "reachable": described.get("reachable")},
            "disk": {"ok": disk_ok},
            "jobs": {**queue, "executor": settings.executor,
                     **({"cluster": cluster_state} if cluster_state is not None else {})},
            "endpoints": len(predictors),
        })

    def stored_file(kind: str, entity_id: str, name: str | None, media_type: str) -> Response | None:
        """An artifact read whole, or None when there is none (503 when the object store
        holding the artifacts fails). Not streamed: a running job's log grows while it is sent,
        which a streamed file's Content-Length cannot follow."""
        try:
            with artifacts.open_read(EntityKind(kind).value, entity_id, name or "") as stream:
                return Response(stream.read(), media_type=media_type)
        except StorageError as exc:
            return PlainTextResponse(f"The service's files cannot be read now: {exc}\n", status_code=503)
        except (ValueError, OSError):
            return None

    def job_log(request: Request) -> Response:
        kind, entity_id = request.path_params["kind"], request.path_params["entity_id"]
        found = stored_file(kind, entity_id, LOG_FILE, "text/plain; charset=utf-8")
        return found or PlainTextResponse("No log for this entity yet.\n", status_code=404)

    def report(request: Request) -> Response:
        """The stored report of an entity (datasource statistics, evaluation details) as JSON."""
        kind, entity_id = request.path_params["kind"], request.path_params["entity_id"]
        found = stored_file(kind, entity_id, REPORT_FILES.get(kind), "application/json")
        return found or JSONResponse({"message": f"No report for {kind} {entity_id}"}, status_code=404)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        stop_sync, stop_warm_up = threading.Event(), threading.Event()
        warming: threading.Thread | None = None
        if run_jobs:
            prepare_job_process()
            # other front ends or Dask workers sharing the folders may be writing: then only stale files go
            now, lease_ms = wall_clock_ms(), engine.lease_ms
            sharing = cluster is not None or any(f.runs_jobs and f.id != front_end.id and not f.gone()
                                                 for f in Leases(store).live(now, lease_ms))
            idle = STALE_TEMP_SECONDS if sharing else None
            removed = artifacts.remove_temporary_files(idle) + objects.remove_temporary_files(idle)
            if removed:
                log.info("removed %d temporary files left by an interrupted run", removed)
            warming = threading.Thread(target=warm_up, args=(warm, execution, stop_warm_up), name="openaml-warm-up",
                                       daemon=True)
            warming.start()
            threading.Thread(target=release_all, args=(store, artifacts), name="openaml-retention",
                             daemon=True).start()
            engine.start()
            for record in store.select_endpoints():
                predictors.mount_async(record.id)
        sync = threading.Thread(target=follow_store, args=(store, predictors, front_end, stop_sync),
                                name="openaml-endpoint-sync", daemon=True)
        sync.start()
        try:
            yield
        finally:
            stop_sync.set()
            stop_warm_up.set()
            await asyncio.to_thread(engine.stop)  # waits for the running jobs to end
            if warming is not None:  # nothing of a closed server runs on: it ends at its next step
                await asyncio.to_thread(warming.join, WARM_UP_STOP_SECONDS)
            if cluster is not None:
                cluster.close()
            executor.shutdown(wait=False, cancel_futures=True)
            side_executor.shutdown(wait=False, cancel_futures=True)

    async def home(_: Request) -> Response:
        return RedirectResponse("/console/")

    async def live(_: Request) -> Response:
        """The process serves: asks nothing of the store, object store or cluster, so that an
        outage of one of those (which /health reports) never reads as a dead front end."""
        return JSONResponse({"status": "live", "version": __version__})

    routes = [
        *(Route(path, endpoint.handle, methods=["POST"]) for path in sorted(settings.api_paths)),
        Route("/", home, methods=["GET"]),
        Mount("/console", build_console(service, ServicePort(context), settings.console_upload_bytes)),
        Route("/health", health, methods=["GET"]),
        Route("/health/live", live, methods=["GET"]),
        Route("/logs/{kind}/{entity_id}", job_log, methods=["GET"]),
        Route("/reports/{kind}/{entity_id}", report, methods=["GET"]),
    ]
    web = Starlette(routes=routes, lifespan=lifespan)
    advertised = [origin_host(settings.advertise_url)] if settings.advertise_url else []
    paths = settings.api_paths
    asgi: ASGIApp = AccessGate(web, keys, paths) if keys else HostGuard(web, advertised, settings.cors_origins, paths)
    asgi = SecurityHeaders(ApiCors(asgi, settings.cors_origins, paths) if settings.cors_origins else asgi)
    return Application(settings, context, service, asgi, web, tasks, unverified=not keys, cluster=cluster)
