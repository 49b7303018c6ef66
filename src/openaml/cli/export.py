"""`openaml export-model ID --format onnx`: a trained model's artifact as ONNX (ml.onnx_export)."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import click

from openaml.jobs.models import read_model
from openaml.ml.errors import InputError
from openaml.ml.onnx_export import export_onnx
from openaml.settings import Settings
from openaml.storage import Artifacts, ArtifactStore, ObjectArtifactStore, open_object_store


@click.command("export-model")
@click.argument("model_id")
@click.option("--format", "export_format", type=click.Choice(["onnx"]), default="onnx", show_default=True,
              help="What to write: ONNX (the 'onnx' extra).")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="The file to write (default MODEL_ID.onnx here).")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="The server's data dir (default ./openaml-data), where its artifacts are.")
@click.option("--artifacts-uri", default=None, help="The server's --artifacts-uri, when it has one.")
@click.option("--s3-endpoint-url", default=None, help="The server's --s3-endpoint-url, with --artifacts-uri.")
def export_model(model_id: str, export_format: str, out: Path | None, **options: object) -> None:
    """Write the ML model MODEL_ID (one that completed its training, DELETED since or not:
    its artifact is kept) as ONNX: inputs are the attributes its recipe reads, outputs its
    scores (see the README)."""
    settings = Settings.from_env(os.environ, **options)
    artifacts: Artifacts = (
        ObjectArtifactStore(open_object_store(settings.s3_endpoint_url, settings.objects_root), settings.artifacts_uri)
        if settings.artifacts_uri else ArtifactStore(settings.artifacts_root))
    try:
        model = read_model(artifacts, model_id).model
    except FileNotFoundError:
        raise click.ClickException(f"no trained model {model_id} in the artifacts") from None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise click.ClickException(f"the artifact of {model_id} cannot be read: {exc}") from None
    try:
        data = export_onnx(model)
    except InputError as exc:  # NotExportable, or trees without LightGBM here
        raise click.ClickException(str(exc)) from None
    target = out or Path(f"{model_id}.onnx")
    try:
        target.write_bytes(data)
    except OSError as exc:
        raise click.ClickException(f"cannot write {target}: {exc}") from None
    click.echo(f"wrote {target} ({len(data):,} bytes, {export_format}): {model.model_type.value} "
               f"{model.algorithm} model")
