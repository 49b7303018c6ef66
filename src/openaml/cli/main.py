"""`openaml`: serve the API, guess a schema, run the MNIST demo, benchmark, compile ahead."""

from __future__ import annotations

import multiprocessing
import os
import socket
import sys
import threading
import time
from multiprocessing.process import BaseProcess
from pathlib import Path

import click
import uvicorn

from openaml import __version__
from openaml.cli.banner import banner_lines
from openaml.cli.bench import bench
from openaml.cli.demo import demo
from openaml.cli.export import export_model
from openaml.extras import MissingExtraError, require_database_driver
from openaml.settings import Settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="openaml")
def main() -> None:
    """OpenAML: the Amazon Machine Learning API, self-hosted."""


@main.command()
@click.option("--host", default=None, help="Address to bind (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to listen on (default 8080).")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
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
              help="Base URL clients reach this server at (returned as EndpointUrl).")
@click.option("--credentials-file", type=click.Path(path_type=Path, exists=True), default=None,
              help="Access keys to verify SigV4 signatures against.")
@click.option("--databases-file", type=click.Path(path_type=Path, exists=True), default=None,
              help="TOML file mapping Redshift/RDS identifiers to database URLs.")
@click.option("--predict-rate-limit", type=int, default=None,
              help="Predict requests/s per endpoint (0 disables; default 200).")
@click.option("--http-workers", type=int, default=None,
              help="HTTP processes sharing the port (default 1); one of them runs the jobs.")
@click.option("--executor", type=click.Choice(["local", "dask"]), default=None,
              help="Where jobs run: this process's threads (default) or a Dask cluster.")
@click.option("--dask-scheduler", default=None,
              help="Address of the Dask scheduler for --executor dask, e.g. tcp://10.0.0.5:8786.")
@click.option("--log-level", default="info", show_default=True)
def serve(log_level: str, **options: object) -> None:
    """Serve the Amazon ML API (and the web console) over HTTP."""
    from sqlalchemy.exc import SQLAlchemyError

    from openaml.app import ConfigurationError, build_app

    try:
        settings = Settings.from_env(os.environ, **options)
        require_database_driver(settings.database_url or "")
        if not settings.s3_endpoint_url:  # the embedded object store: where uploads go
            settings.objects_root.mkdir(parents=True, exist_ok=True)
        app = build_app(settings)
    except (ConfigurationError, MissingExtraError, ValueError, OSError, SQLAlchemyError) as exc:
        raise click.ClickException(f"cannot start: {exc}") from None
    for line in banner_lines(settings, app.context.store.url, app.context.objects.describe(),
                             app.unverified):
        click.echo(line)
    config = uvicorn.Config(app.asgi, host=settings.host, port=settings.port, log_level=log_level,
                            access_log=log_level == "debug")
    try:
        sock = config.bind_socket()
    except (OSError, SystemExit) as exc:  # uvicorn logs the reason and exits
        app.close()
        raise click.ClickException(f"cannot listen on {settings.host}:{settings.port}: the address is in use "
                                   "or not available") from exc
    helpers = [start_http_process(settings, sock, log_level)
               for _ in range(settings.http_workers - 1)]
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        for process in helpers:
            process.terminate()
        for process in helpers:
            process.join(timeout=10)
        app.close()


def start_http_process(settings: Settings, sock: socket.socket, log_level: str) -> BaseProcess:
    """Another process answering on the same socket; it serves the API but runs no jobs."""
    process = multiprocessing.get_context("spawn").Process(
        target=_serve_api_only, args=(settings, sock, log_level), daemon=True)
    process.start()
    return process


def _serve_api_only(settings: Settings, sock: socket.socket, log_level: str) -> None:
    from openaml.app import build_app

    app = build_app(settings, run_jobs=False)
    server = uvicorn.Server(uvicorn.Config(app.asgi, log_level=log_level, access_log=False))
    parent = os.getppid()

    def leave_with_parent() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        server.should_exit = True

    threading.Thread(target=leave_with_parent, daemon=True).start()
    try:
        server.run(sockets=[sock])
    finally:
        app.close()


@main.command("guess-schema")
@click.argument("path", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--target", default=None, help="Name of the target attribute.")
@click.option("--row-id", default=None, help="Name of the row identifier attribute.")
def guess_schema_command(path: Path, target: str | None, row_id: str | None) -> None:
    """Print a data schema guessed from a CSV file (plain or .gz)."""
    from openaml.ml.schema.guess import guess_schema

    try:
        click.echo(guess_schema(path, target=target, row_id=row_id))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


@main.command("fetch-mnist")
@click.argument("out", type=click.Path(path_type=Path, file_okay=False))
@click.option("--url-base", default=None, help="Where the four MNIST IDX files are (a public mirror by default).")
def fetch_mnist_command(out: Path, url_base: str | None) -> None:
    """Download MNIST and write it as Kaggle-layout train.csv, test.csv and test_labels.csv."""
    from openaml.datasets import MNIST_URL_BASE, fetch_mnist

    try:
        paths = fetch_mnist(out, url_base or MNIST_URL_BASE)
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"could not fetch MNIST: {exc}") from None
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
