"""Records kept by earlier versions, given the current layout of their info on start.

Until specs were kept (commit 2c2d7f9 and before), a record's info held loose keys ("schema",
"source", "recipe", "score_threshold", "metrics"...) and jobs read the Create request itself. Each
such record gets its spec, built from those and the request as that version's jobs read them,
and its result, threshold, progress and secret under their keys (jobs/record_info.py). Inputs
that today's checks refuse but those versions took are read as they read them (`_as_then`): a
model trained long ago with "1_000" as a parameter must not keep the upgraded server from
starting.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from openaml.jobs import specs
from openaml.jobs.record_info import (
    is_current,
    progress_info,
    result_info,
    secret_info,
    spec_info,
    threshold_info,
)
from openaml.ml.data import parse_rearrangement
from openaml.ml.model_type import ModelType
from openaml.ml.schema import parse_schema
from openaml.ml.training import parse_parameters
from openaml.ml.training.progress import TrainingProgress
from openaml.service.context import wall_clock_ms
from openaml.store import EntityKind, EntityRecord, Status, Store

log = logging.getLogger(__name__)
T = TypeVar("T")


LAYOUT_FACT = "layout"  # the store fact naming the layout every record is in (SPEC_VERSION)
# The store fact saying when the last start looked at the records (ms): those last updated
# before it, less CLOCK_MARGIN_MS, were in the current layout. An earlier version started on a
# migrated store (a rollback) writes records of its own layout; the next start finds them.
CHECKED_FACT = "layout_checked_at"
CLOCK_MARGIN_MS = 15 * 60 * 1000  # the clocks of the processes that write to one store may differ


class MigrationError(ValueError):
    """The store cannot be brought to the current layout; the message says why."""


def migrate(store: Store, now_ms: Callable[[], int] = wall_clock_ms) -> int:
    """Give every record of an earlier layout the current one; how many were rewritten. Once
    done, the store says so (LAYOUT_FACT) and when (CHECKED_FACT): later starts read only the
    records updated since (an earlier version run on the store meanwhile wrote them in its
    layout). Safe to run by several processes at once: each record is rewritten once, under
    its lock."""
    layout = store.get_fact(LAYOUT_FACT)
    if layout is not None and int(layout) > specs.SPEC_VERSION:
        raise MigrationError(f"The store was written by a newer OpenAML (record layout {layout}; this "
                             f"version reads layout {specs.SPEC_VERSION}): run that version or a newer one")
    checked = store.get_fact(CHECKED_FACT) if layout == str(specs.SPEC_VERSION) else None
    started = now_ms()
    rewritten = 0
    for record in store.updated_since(None if checked is None else int(checked) - CLOCK_MARGIN_MS):
        if not is_current(record.info):
            rewritten += store.rewrite_info(record.kind, record.id, _upgrader(record))
    store.set_fact(LAYOUT_FACT, str(specs.SPEC_VERSION))
    store.set_fact(CHECKED_FACT, str(started))
    if rewritten:
        log.info("%d entities of an earlier version were given the current layout", rewritten)
    return rewritten


def _upgrader(record: EntityRecord) -> Callable[[dict[str, Any]], dict[str, Any] | None]:
    """The rewrite of the record's info, locked and current: None where it is the current layout
    already (another process migrated it meanwhile)."""

    def upgrade(info: dict[str, Any]) -> dict[str, Any] | None:
        if is_current(info):
            return None
        try:
            spec, result = _legacy(record, info)
        except (KeyError, TypeError, ValueError) as exc:
            raise MigrationError(f"{record.kind.value} {record.id}, stored by an earlier version, cannot be "
                                 f"given the current layout: {type(exc).__name__}: {exc}") from exc
        upgraded = spec_info(spec) | (result_info(result) if result is not None else {})
        if info.get("password") and record.status in (Status.PENDING, Status.INPROGRESS):  # its job will run
            upgraded |= secret_info(info["password"])
        if "score_threshold" in info:
            upgraded |= threshold_info(
                specs.ScoreThreshold(float(info["score_threshold"]), info.get("score_threshold_updated_at")))
        progress = TrainingProgress.from_json(info.get("training"))
        if progress is not None:
            upgraded |= progress_info(progress)
        return upgraded

    return upgrade


def _legacy(record: EntityRecord, info: dict[str, Any]) -> tuple[specs.Spec, specs.Result | None]:
    """The spec and result of a record in the layout before specs (the request: its Create's)."""
    request = record.request
    if record.kind is EntityKind.DATASOURCE:
        source = specs.Source(info["source"])
        given = request.get("DataSpec") or request.get("RDSData") or {}
        query = None
        if source is not specs.Source.S3:
            database = given["DatabaseInformation"]
            query = specs.StagedQuery(database.get("ClusterIdentifier") or database["InstanceIdentifier"],
                                database["DatabaseName"], given["DatabaseCredentials"]["Username"],
                                given["SelectSqlQuery"], given["S3StagingLocation"])
        spec: specs.Spec = specs.DataSourceSpec(
            source, record.data_uri or "", parse_schema(info["schema"], stored=True).to_json(),
            _as_then(parse_rearrangement, given.get("DataRearrangement"), _rearrangement_then),
            bool(request.get("ComputeStatistics")),
            query, info.get("data_pipeline_id"))
        done = "data_size_in_bytes" in info
        return spec, specs.DataSourceResult(info["data_size_in_bytes"], info["number_of_files"],
                                      tuple(info.get("files") or ())) if done else None
    if record.kind is EntityKind.MLMODEL:
        model_type = ModelType(record.model_type or "")
        given_parameters = request.get("Parameters") or {}  # shown as the caller wrote them
        parameters = _as_then(lambda given: parse_parameters(given, model_type, seed=specs.model_seed(record.id)),
                              given_parameters, _parameters_then)
        given_recipe = "Recipe" in request or "RecipeUri" in request  # else "recipe" is the result's
        spec = specs.MLModelSpec(
            model_type, record.datasource_id or "", parse_schema(info["schema"], stored=True).to_json(),
            info.get("recipe") if given_recipe else None, parameters, given_parameters)
        done = "size_in_bytes" in info
        return spec, specs.MLModelResult(info["size_in_bytes"], info["recipe"]) if done else None
    if record.kind is EntityKind.EVALUATION:
        metrics = info.get("metrics")
        return (specs.EvaluationSpec(record.model_id or "", record.datasource_id or ""),
                specs.EvaluationResult(metrics) if metrics is not None else None)
    done = "total_record_count" in info
    return (specs.BatchPredictionSpec(record.model_id or "", record.datasource_id or "", request["OutputUri"]),
            specs.BatchPredictionResult(info["total_record_count"], info["invalid_record_count"]) if done else None)


def _as_then(parse: Callable[[Any], T], given: Any, then: Callable[[Any], Any]) -> T:
    """`parse` of an input, or else of it as the versions before specs read it (`then`)."""
    try:
        return parse(given)
    except ValueError:
        return parse(then(given))


def _parameters_then(given: dict[str, str]) -> dict[str, str]:
    """Training parameters as versions before 6ad5dc3 read them: a number that Python's int()
    or float() reads ("1_000", "３") in its usual form."""

    def usual(text: str) -> str:
        for kind in (int, float):
            try:
                return str(kind(text))
            except (TypeError, ValueError):
                continue
        return text

    return {key: usual(value) for key, value in given.items()}


def _rearrangement_then(text: str) -> str:
    """A DataRearrangement as versions before 364a2c0 read it: a strategyParams that is not a
    JSON object left out (its seed was)."""
    document = json.loads(text)
    splitting = document.get("splitting") if isinstance(document, dict) else None
    if isinstance(splitting, dict) and not isinstance(splitting.get("strategyParams", {}), dict):
        del splitting["strategyParams"]
    return json.dumps(document)
