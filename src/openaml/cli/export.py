"""`openaml export-model ID --format onnx`: a trained model's artifact as ONNX (ml.onnx_export)."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import click

from openaml.cli.paths import NonEmptyPath
from openaml.jobs.models import MODEL_FILE, read_model
from openaml.ml.errors import InputError
from openaml.ml.onnx_export import export_onnx
from openaml.settings import Settings
from openaml.storage import Artifacts, ArtifactStore, ObjectArtifactStore, open_object_store


@click.command("export-model")
@click.argument("model_id")
@click.option("--format", "export_format", type=click.Choice(["onnx"]), default="onnx", show_default=True,
              help="What to write: ONNX (the 'onnx' extra).")
@click.option("--out", type=NonEmptyPath(path_type=Path, dir_okay=False), default=None,
              help="The file to write (default MODEL_ID.onnx here); an existing one only with --force.")
@click.option("--force", is_flag=True, help="Replace the --out file when it exists.")
@click.option("--data-dir", type=NonEmptyPath(path_type=Path), default=None,
              help="The server's data dir (default ./openaml-data), where its artifacts are.")
@click.option("--artifacts-uri", default=None, help="The server's --artifacts-uri, when it has one.")
@click.option("--s3-endpoint-url", default=None, help="The server's --s3-endpoint-url, with --artifacts-uri.")
def export_model(model_id: str, export_format: str, out: Path | None, force: bool, **options: object) -> None:
    """Write the ML model MODEL_ID (one that completed its training, DELETED since or not:
    its artifact is kept) as ONNX: inputs are the attributes its recipe reads, outputs its
    scores (see the README). Options win over their OPENAML_* variables, as in `serve`."""
    target = out or Path(f"{model_id}.onnx")
    if target.exists() and not force:
        raise click.ClickException(f"{target} exists: give --force to replace it, or another --out")
    try:
        settings = Settings.from_env(os.environ, **options)
        artifacts, where = open_artifacts(settings, model_id)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        model = read_model(artifacts, model_id).model
    except FileNotFoundError:
        raise click.ClickException(f"no trained model {model_id}: {where} does not exist"
                                   f"{missing_data_dir(settings)}") from None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise click.ClickException(f"the artifact of {model_id} ({where}) cannot be read: {exc}") from None
    try:
        data = export_onnx(model)
    except InputError as exc:  # NotExportable, or trees without LightGBM here
        raise click.ClickException(str(exc)) from None
    try:
        target.write_bytes(data)
    except OSError as exc:
        raise click.ClickException(f"cannot write {target}: {exc}") from None
    click.echo(f"wrote {target} ({len(data):,} bytes, {export_format}): {model.model_type.value} "
               f"{model.algorithm} model")


def open_artifacts(settings: Settings, model_id: str) -> tuple[Artifacts, str]:
    """The server's artifacts, and where the model's artifact would be (a path or an s3:// URI)."""
    if settings.artifacts_uri:
        stored = ObjectArtifactStore(open_object_store(settings.s3_endpoint_url, settings.objects_root),
                                     settings.artifacts_uri)
        return stored, stored.uri("MLModel", model_id, MODEL_FILE)
    local = ArtifactStore(settings.artifacts_root)
    return local, str(local.path_for("MLModel", model_id, MODEL_FILE))


def missing_data_dir(settings: Settings) -> str:
    """A hint when the data dir looked in is not there (the default depends on the current folder)."""
    if settings.artifacts_uri or settings.data_dir.is_dir():
        return ""
    return f" (the data dir {settings.data_dir} does not exist: give the server's --data-dir or OPENAML_DATA_DIR)"
