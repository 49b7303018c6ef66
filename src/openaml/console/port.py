"""What the console reads besides the API operations, as one typed port.

The console calls operations through the API's validation (api.ServiceApi); everything else it
shows (stored reports, training progress, loaded models, result files) comes through this
port, which the application implements (service/console_port.py) and tests may fake.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO, Protocol

from openaml.jobs.models import LoadedModel
from openaml.ml.training.progress import TrainingProgress
from openaml.service.context import RequestContext
from openaml.storage.objects import Level


class ConsolePort(Protocol):
    @property
    def data_dir(self) -> Path:
        """Where the console keeps its CSRF secret."""
        ...

    @property
    def request_context(self) -> RequestContext:
        """The context of the operations the console calls (who made them)."""
        ...

    def report(self, kind: str, entity_id: str) -> Any:
        """The JSON report the entity's job stored (a datasource's ingest report, with its
        statistics; an evaluation's report), parsed; raises when there is none."""
        ...

    def training_progress(self, model_id: str) -> TrainingProgress | None:
        ...

    def loaded_model(self, model_id: str) -> LoadedModel:
        """The model as Predict and the jobs have it loaded (one shared copy); raises when
        it cannot be loaded."""
        ...

    def result_stream(self, uri: str) -> BinaryIO:
        """An object of the object store (batch prediction results and manifests)."""
        ...

    def job_log(self, kind: str, entity_id: str) -> str | None:
        """The end (at most LOG_BYTES) of the log of the entity's job, or None when there is none."""
        ...

    def buckets(self) -> list[str]:
        """The object store's buckets."""
        ...

    def level(self, folder_uri: str, limit: int) -> Level:
        """The folders and objects right below an s3:// folder (StorageError for a bad URI)."""
        ...

    def sample(self, uri: str) -> bytes:
        """The first lines (a few MB, decompressed) of the first data file a location names."""
        ...

    def exists(self, uri: str) -> bool:
        """Whether an object is stored at `uri`."""
        ...

    def open_upload(self, uri: str) -> BinaryIO:
        """A writer whose bytes become the object at `uri` when it is closed without error;
        StorageError at once where the object could not be kept (an S3 bucket that does not
        exist: a local store makes its bucket's folder)."""
        ...
