"""`openaml`: serve the API, guess a schema, run the MNIST demo, benchmark, compile ahead."""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import replace
from multiprocessing.process import BaseProcess
from pathlib import Path

import click
import uvicorn

from openaml import __version__
from openaml.cli import leave_quietly
from openaml.cli.banner import banner_lines
from openaml.cli.bench import bench
from openaml.cli.demo import demo
from openaml.cli.export import export_model
from openaml.cli.paths import NonEmptyPath
from openaml.extras import MissingExtraError, require_database_driver
from openaml.server.connections import server_config
from openaml.settings import Settings


class Commands(click.Group):
    """The commands, of which Ctrl-C leaves quietly with exit status 130 (128 + SIGINT), as
    while they load (click says "Aborted!" and exits 1)."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo(err=True)  # ends the terminal's ^C line
            raise SystemExit(128 + signal.SIGINT) from None


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="openaml")
def main() -> None:
    """OpenAML: the Amazon Machine Learning API, self-hosted."""
    if signal.getsignal(signal.SIGINT) is leave_quietly:  # loaded: Ctrl-C is click's "Aborted!" again
        signal.signal(signal.SIGINT, signal.default_int_handler)


LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
PR_SET_PDEATHSIG = 1  # prctl(2) option: the signal this process gets when its parent dies


@main.command(epilog="Each option may also be set by its OPENAML_* variable (--data-dir by OPENAML_DATA_DIR); "
                     "an option given on the command line wins over its variable.")
@click.option("--host", default=None, help="Address to bind (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to listen on, 1-65535 (default 8080; 0: a free one).")
@click.option("--data-dir", type=NonEmptyPath(path_type=Path), default=None,
              help="Where the database, objects and artifacts live (default ./openaml-data).")
@click.option("--database-url", default=None,
              help="SQLAlchemy URL of the metadata store (default: SQLite in the data dir).")
@click.option("--s3-endpoint-url", default=None,
              help="Use this S3-compatible server for s3:// URIs ('aws' for AWS itself); "
                   "default: the embedded store DATA_DIR/s3/BUCKET/KEY.")
@click.option("--artifacts-uri", default=None,
              help="Keep the service's own files (datasources, models, logs) in the object store under "
                   "this s3:// folder instead of DATA_DIR/artifacts: for front ends and workers that "
                   "share no file system.")
@click.option("--workers", type=int, default=None, help="Concurrent jobs (default: CPU cores).")
@click.option("--advertise-url", default=None,
              help="Base URL clients reach this server at, http(s)://HOST[:PORT][/PATH] (returned as "
                   "EndpointUrl; the API answers at its path too).")
@click.option("--cors-origins", default=None,
              help="Origins whose web pages may call the API (the browser build of AWS's JavaScript SDK), "
                   "scheme://host[:port], comma-separated; * for any (only with access keys).")
@click.option("--credentials-file", type=NonEmptyPath(path_type=Path, exists=True), default=None,
              help="Access keys to verify SigV4 signatures against.")
@click.option("--databases-file", type=NonEmptyPath(path_type=Path, exists=True), default=None,
              help="TOML file mapping Redshift/RDS identifiers to database URLs.")
@click.option("--predict-rate-limit", type=int, default=None,
              help="Predict requests/s per endpoint (0 disables; default 200).")
@click.option("--http-workers", type=int, default=None,
              help="HTTP processes sharing the port, 1-64 (default 1); one of them runs the jobs.")
@click.option("--executor", type=click.Choice(["local", "dask"]), default=None,
              help="Where jobs run: this process's threads (default) or a Dask cluster.")
@click.option("--dask-scheduler", default=None,
              help="Address of the Dask scheduler for --executor dask, e.g. tcp://10.0.0.5:8786 "
                   "(refused without --executor dask).")
@click.option("--log-level", type=click.Choice(LOG_LEVELS, case_sensitive=False), default="info",
              envvar="OPENAML_LOG_LEVEL", show_default=True)
def serve(log_level: str, **options: object) -> None:
    """Serve the Amazon ML API (and the web console) over HTTP."""
    from sqlalchemy.exc import SQLAlchemyError

    from openaml.app import ConfigurationError, build_app

    try:
        settings = Settings.from_env(os.environ, **options)
    except ValueError as exc:
        raise click.ClickException(f"cannot start: {exc}") from None
    sock = listen(settings)  # before the banner, which says it serves; and an OS-chosen port is known
    settings = replace(settings, port=sock.getsockname()[1])
    try:
        require_database_driver(settings.database_url or "")
        if not settings.s3_endpoint_url:  # the embedded object store: where uploads go
            settings.objects_root.mkdir(parents=True, exist_ok=True)
        app = build_app(settings)
    except (ConfigurationError, MissingExtraError, ValueError, OSError, SQLAlchemyError) as exc:
        sock.close()
        raise click.ClickException(f"cannot start: {_start_problem(settings, exc)}") from None
    for line in banner_lines(settings, app.context.store.url, app.context.objects.describe(),
                             app.unverified):
        click.echo(line)
    config = server_config(app.asgi, host=settings.host, port=settings.port, log_level=log_level,
                           access_log=log_level == "debug")
    helpers = [start_http_process(settings, sock, log_level)
               for _ in range(settings.http_workers - 1)]
    # uvicorn stops on SIGTERM, then raises it again for its default action, which ended the
    # process before the clean-up below (leases given up, the store closed): it unwinds instead
    signal.signal(signal.SIGTERM, _terminated)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        for process in helpers:
            process.terminate()
        for process in helpers:
            process.join(timeout=10)
        app.close()


def _start_problem(settings: Settings, exc: Exception) -> str:
    """What stopped the server starting, naming the option that chose the database or the
    data folder when one of those is what failed."""
    from sqlalchemy.exc import SQLAlchemyError

    if isinstance(exc, SQLAlchemyError):
        cause = str(getattr(exc, "orig", None) or exc).strip().replace("\n", " ")
        where = ("the database of --database-url (OPENAML_DATABASE_URL)"
                 if settings.database_url != settings.default_database_url
                 else f"the SQLite database in --data-dir (OPENAML_DATA_DIR) {settings.data_dir}")
        return f"{where} cannot be used: {cause}"
    if isinstance(exc, OSError) and exc.filename is not None:
        data_dir, failed = settings.data_dir.absolute(), Path(os.fsdecode(exc.filename)).absolute()
        if failed == data_dir or data_dir in failed.parents:
            return f"--data-dir (OPENAML_DATA_DIR) {settings.data_dir} cannot be used: {exc.strerror}: {failed}"
    return str(exc)


def _terminated(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def listen(settings: Settings) -> socket.socket:
    """A socket bound to the settings' host and port (SO_REUSEADDR, as uvicorn binds), or a
    ClickException saying why not."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.host, settings.port))
    except OSError as exc:
        sock.close()
        raise click.ClickException(f"cannot listen on {settings.host}:{settings.port}: "
                                   f"{exc.strerror or exc} (the address is in use or not available)") from None
    sock.set_inheritable(True)
    return sock


def start_http_process(settings: Settings, sock: socket.socket, log_level: str) -> BaseProcess:
    """Another process answering on the same socket; it serves the API but runs no jobs, and
    leaves when this process is gone."""
    process = multiprocessing.get_context("spawn").Process(
        target=_serve_api_only, args=(settings, sock, log_level, os.getpid()), daemon=True)
    process.start()
    return process


def _serve_api_only(settings: Settings, sock: socket.socket, log_level: str, parent: int) -> None:
    from openaml.app import build_app

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which ends this one
    signal.signal(signal.SIGTERM, _terminated)  # as in serve: the clean-up below runs
    die_with_parent(parent)
    app = build_app(settings, run_jobs=False)
    server = uvicorn.Server(server_config(app.asgi, log_level=log_level, access_log=False))
    threading.Thread(target=leave_with_parent, args=(parent, server), daemon=True).start()
    try:
        server.run(sockets=[sock])
    finally:
        app.close()


def die_with_parent(parent: int) -> None:
    """Have Linux send SIGTERM when the process `parent` (which started this one) is gone, and
    leave now if it already is: a helper must never outlive its server."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        raise SystemExit(0)


def leave_with_parent(parent: int, server: uvicorn.Server, interval: float = 0.5) -> None:
    """Stop `server` once `parent` is no longer this process's parent (elsewhere than Linux,
    or where the death signal was refused)."""
    while os.getppid() == parent:
        time.sleep(interval)
    server.should_exit = True


@main.command("guess-schema")
@click.argument("path", type=NonEmptyPath(path_type=Path, exists=True, dir_okay=False))
@click.option("--target", default=None, help="Name of the target attribute.")
@click.option("--row-id", default=None, help="Name of the row identifier attribute.")
def guess_schema_command(path: Path, target: str | None, row_id: str | None) -> None:
    """Print a data schema guessed from a CSV file (plain or gzip, named .gz as the service
    requires); records the service would reject are told on stderr, and a schema it would
    refuse is not printed."""
    from openaml.ml.schema.guess import guess
    from openaml.ml.schema.model import parse_schema

    try:
        guessed = guess(path, target=target, row_id=row_id)
        parse_schema(guessed.schema)
    except ValueError as exc:  # SchemaError: what CreateDataSource* would answer
        raise click.ClickException(f"{path.name}: {exc}") from None
    for warning in guessed.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(guessed.schema)


@main.command("fetch-mnist")
@click.argument("out", type=NonEmptyPath(path_type=Path, file_okay=False))
@click.option("--url-base", default=None, help="Where the four MNIST IDX files are (a public mirror by default).")
def fetch_mnist_command(out: Path, url_base: str | None) -> None:
    """Download MNIST and write it as Kaggle-layout train.csv, test.csv and test_labels.csv."""
    from openaml.datasets import MNIST_URL_BASE, fetch_mnist

    try:
        paths = fetch_mnist(out, url_base or MNIST_URL_BASE)
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"could not fetch MNIST from {url_base or MNIST_URL_BASE}: {exc} "
                                   "(--url-base names another place)") from None
    for name, path in paths.items():
        click.echo(f"{name}: {path}")


@main.command("warm-up")
def warm_up_command() -> None:
    """Compile the ML kernels ahead of the first job (the compiled code is kept on disk for
    later runs): run it once after installing."""
    from openaml.jobs.warmup import warm_up
    from openaml.ml.execution import Execution

    started = time.perf_counter()
    if warm_up(execution=Execution(Settings().job_threads)) is None:
        click.echo("the warm-up failed (above): the first jobs compile what they use", err=True)
        return
    click.echo(f"the ML kernels are compiled and kept for later runs ({time.perf_counter() - started:.1f} s)")


main.add_command(demo)
main.add_command(bench)
main.add_command(export_model)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
