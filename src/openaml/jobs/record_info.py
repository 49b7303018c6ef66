"""A store record's `info`, read and written as typed documents: the one place naming its keys.

Layout (SPEC_VERSION 1):
    spec       the entity's spec (jobs/specs.py), {"version": 1, ...}: written at Create, never changed
    result     what its job found or made: written when the job completes
    training   a model's training progress (TrainingProgress), while and after it trains
    threshold  a BINARY model's score threshold, {"value", "updated_at"}
    secret     a staged datasource's database password, until its job has used it
"""

from __future__ import annotations

from typing import Any, TypeVar

from openaml.jobs.specs import SPEC_VERSION, Document, Result, ScoreThreshold, Spec
from openaml.ml.training.progress import TrainingProgress
from openaml.store import EntityRecord

D = TypeVar("D", bound=Document)
_SPEC, _RESULT, _TRAINING, _THRESHOLD, _SECRET = "spec", "result", "training", "threshold", "secret"


class MissingSpec(LookupError):
    """A record without a spec of the current layout (one of an earlier version not migrated)."""


def is_current(info: dict[str, Any]) -> bool:
    """Whether `info` has the current layout (a spec of SPEC_VERSION)."""
    spec = info.get(_SPEC)
    return isinstance(spec, dict) and spec.get("version") == SPEC_VERSION


def spec_info(spec: Spec) -> dict[str, Any]:
    return {_SPEC: {"version": SPEC_VERSION, **spec.to_json()}}


def read_spec(record: EntityRecord, kind: type[D]) -> D:
    """The record's spec, of `kind`."""
    if record.kind is not kind.KIND:
        raise TypeError(f"{record.kind.value} {record.id} has no {kind.__name__}")
    if not is_current(record.info):
        raise MissingSpec(f"{record.kind.value} {record.id} has no spec of version {SPEC_VERSION}")
    doc = dict(record.info[_SPEC])
    del doc["version"]
    return kind.from_json(doc)


def result_info(result: Result) -> dict[str, Any]:
    return {_RESULT: result.to_json()}


def read_result(record: EntityRecord, kind: type[D]) -> D | None:
    """The result of the record's job, or None before it completed."""
    doc = record.info.get(_RESULT)
    return kind.from_json(doc) if isinstance(doc, dict) and record.kind is kind.KIND else None


def progress_info(progress: TrainingProgress) -> dict[str, Any]:
    return {_TRAINING: progress.to_json()}


def read_progress(record: EntityRecord) -> TrainingProgress | None:
    return TrainingProgress.from_json(record.info.get(_TRAINING))


def threshold_info(threshold: ScoreThreshold) -> dict[str, Any]:
    return {_THRESHOLD: {"value": threshold.value, "updated_at": threshold.updated_at}}


def read_threshold(record: EntityRecord) -> ScoreThreshold:
    """A model's score threshold (the default where none is kept: models other than BINARY)."""
    doc = record.info.get(_THRESHOLD)
    return ScoreThreshold(float(doc["value"]), doc["updated_at"]) if isinstance(doc, dict) else ScoreThreshold()


def secret_info(password: str | None) -> dict[str, Any]:
    """The password a staged datasource's job uses once (None: erased)."""
    return {_SECRET: password}


def read_secret(record: EntityRecord) -> str | None:
    return record.info.get(_SECRET)

