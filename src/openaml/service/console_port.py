"""The application's side of the console's port (console/port.py)."""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any, BinaryIO

from openaml.jobs.models import LoadedModel
from openaml.jobs.record_info import read_progress
from openaml.jobs.tasks import LOG_FILE, REPORT_FILES
from openaml.ml.errors import InputError
from openaml.ml.training.progress import TrainingProgress
from openaml.service.context import RequestContext, ServiceContext
from openaml.storage.local import LocalObjectStore
from openaml.storage.objects import Level, first_data_file
from openaml.storage.uris import StorageError, parse_s3_uri
from openaml.store import EntityKind

LOG_BYTES = 256 << 10  # of a job log shown in the console (its end)
SAMPLE_BYTES = 4 << 20  # of a data file read to guess its schema (decompressed: at most 4 times that)


class ServicePort:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    @property
    def data_dir(self) -> Path:
        return Path(self.ctx.settings.data_dir)

    @property
    def request_context(self) -> RequestContext:
        return self.ctx.request_context(None)

    def report(self, kind: str, entity_id: str) -> Any:
        return self.ctx.artifacts.read_json(kind, entity_id, REPORT_FILES[EntityKind(kind)])

    def training_progress(self, model_id: str) -> TrainingProgress | None:
        record = self.ctx.store.get(EntityKind.MLMODEL, model_id)
        return read_progress(record) if record is not None else None

    def loaded_model(self, model_id: str) -> LoadedModel:
        return self.ctx.models.get(model_id)

    def result_stream(self, uri: str) -> BinaryIO:
        return self.ctx.objects.open_read(uri)

    def job_log(self, kind: str, entity_id: str) -> str | None:
        try:
            with self.ctx.artifacts.open_read(kind, entity_id, LOG_FILE) as stream:
                size = stream.seek(0, 2)
                stream.seek(max(0, size - LOG_BYTES))
                text = stream.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return None
        except StorageError as exc:  # the object store holding the artifacts fails
            return f"(The log cannot be read now: {exc})"
        return text if size <= LOG_BYTES else "…" + text.partition("\n")[2]

    def buckets(self) -> list[str]:
        return self.ctx.objects.buckets()

    def level(self, folder_uri: str, limit: int) -> Level:
        return self.ctx.objects.list_level(folder_uri, limit)

    def sample(self, uri: str) -> bytes:
        first = first_data_file(self.ctx.objects, uri)
        with self.ctx.objects.open_read(first.uri) as stream:
            data = stream.read(SAMPLE_BYTES)
        if data[:2] == b"\x1f\x8b":  # the start of a gzip file: as much as it gives
            try:
                data = _gunzipped(data, 4 * SAMPLE_BYTES)
            except zlib.error as exc:
                raise InputError(f"{first.uri} starts as gzip but cannot be decompressed: {exc}") from None
        if len(data) < SAMPLE_BYTES:
            return data
        if b"\n" not in data:
            raise InputError(f"The first line of {first.uri} is longer than {SAMPLE_BYTES:,} bytes")
        return data[:data.rfind(b"\n") + 1]

    def exists(self, uri: str) -> bool:
        return self.ctx.objects.stat(uri) is not None

    def open_upload(self, uri: str) -> BinaryIO:
        bucket = parse_s3_uri(uri).bucket
        if not isinstance(self.ctx.objects, LocalObjectStore) and bucket not in self.ctx.objects.buckets():
            raise StorageError(f"{uri}: the bucket {bucket} does not exist")
        return self.ctx.objects.open_write(uri)


def _gunzipped(data: bytes, limit: int) -> bytes:
    """Up to `limit` bytes decompressed from the start of a gzip file, across its members (a
    batch prediction by partition writes its header and each partition's lines as members)."""
    out = b""
    while data and len(out) < limit:
        member = zlib.decompressobj(wbits=47)
        out += member.decompress(data, limit - len(out))
        if not member.eof:  # the sample ends inside this member, or the limit was reached
            break
        data = member.unused_data
    return out
