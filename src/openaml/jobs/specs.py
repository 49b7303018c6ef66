"""What an entity is to be, fixed at Create (its spec), and what its job found (its result), typed.

The service builds a spec once, from the validated request; the jobs, the service's answers and
the console read it back. Each document is kept as JSON (to_json, from_json) in the store
record's `info`, under the keys jobs/record_info.py names, a spec with its layout's version: a
spec never changes; a result is written when the job completes.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from fractions import Fraction
from functools import lru_cache
from typing import Any, ClassVar, Protocol, Self

from openaml.ml.data import Rearrangement
from openaml.ml.model_type import ModelType
from openaml.ml.schema import Schema, parse_schema
from openaml.ml.training import SGDParams
from openaml.store import EntityKind

SPEC_VERSION = 1  # of the layout below; an older record is migrated on start (service/migration.py)


class Source(StrEnum):
    """Where a datasource's rows come from: S3 objects, or a query copied to CSV by its job."""

    S3 = "s3"
    REDSHIFT = "redshift"
    RDS = "rds"


class _Flat:
    """A document whose JSON form is its fields, as they are."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Self:
        return cls(**doc)


@dataclass(frozen=True)
class StagedQuery:
    """A Redshift or RDS datasource's query; its job copies the result to CSV under staging_uri."""

    identifier: str  # the cluster (Redshift) or instance (RDS) that databases config names
    database_name: str
    user_name: str
    query: str
    staging_uri: str


@dataclass(frozen=True)
class DataSourceSpec:
    """A datasource: where its rows come from, how they are read and split, and whether
    statistics are computed."""

    KIND: ClassVar[EntityKind] = EntityKind.DATASOURCE

    source: Source
    data_uri: str  # the objects read (for a staged query: where its job writes them)
    schema_json: str  # the schema, validated and normalized (Schema.to_json): `schema` parses it
    rearrangement: Rearrangement
    compute_statistics: bool
    query: StagedQuery | None = None
    data_pipeline_id: str | None = None  # RDS only: an id shown as RDSMetadata.DataPipelineId

    @property
    def staged(self) -> bool:
        return self.query is not None

    @property
    def schema(self) -> Schema:
        """The schema the data are read with: a staged query's parts have no header, whatever
        the given schema says (data.md §10.1; its first row was skipped as one)."""
        schema = _schema(self.schema_json)
        return replace(schema, header=False) if self.staged and schema.header else schema

    def to_json(self) -> dict[str, Any]:
        r = self.rearrangement
        return {"source": self.source.value, "data_uri": self.data_uri, "schema": self.schema_json,
                "rearrangement": {"begin": str(r.begin), "end": str(r.end), "complement": r.complement,
                                  "strategy": r.strategy, "seed": r.seed},
                "compute_statistics": self.compute_statistics,
                "query": None if self.query is None else asdict(self.query),
                "data_pipeline_id": self.data_pipeline_id}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Self:
        r = doc["rearrangement"]
        return cls(Source(doc["source"]), doc["data_uri"], doc["schema"],
                   Rearrangement(Fraction(r["begin"]), Fraction(r["end"]), r["complement"], r["strategy"],
                                 r["seed"]),
                   doc["compute_statistics"], None if doc["query"] is None else StagedQuery(**doc["query"]),
                   doc["data_pipeline_id"])


@dataclass(frozen=True)
class MLModelSpec:
    """A model: its type, training datasource, the schema it learns from, recipe and SGD
    parameters (their seed from the model id)."""

    KIND: ClassVar[EntityKind] = EntityKind.MLMODEL

    model_type: ModelType
    datasource_id: str
    schema_json: str  # the training datasource's (DataSourceSpec.schema_json): `schema` parses it
    recipe: str | None  # the caller's (validated against the schema); None: the default recipe
    parameters: SGDParams
    given_parameters: dict[str, str] = field(default_factory=dict)  # the caller's strings, shown

    @property
    def schema(self) -> Schema:
        return _schema(self.schema_json)

    def to_json(self) -> dict[str, Any]:
        return {"model_type": self.model_type.value, "datasource_id": self.datasource_id,
                "schema": self.schema_json, "recipe": self.recipe,
                "parameters": _parameters_doc(self.parameters), "given_parameters": dict(self.given_parameters)}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Self:
        return cls(ModelType(doc["model_type"]), doc["datasource_id"], doc["schema"],
                   doc["recipe"], SGDParams.from_dict(doc["parameters"]), dict(doc["given_parameters"]))


@dataclass(frozen=True)
class EvaluationSpec(_Flat):
    """An evaluation: the model scored, on the datasource's records."""

    KIND: ClassVar[EntityKind] = EntityKind.EVALUATION

    model_id: str
    datasource_id: str


@dataclass(frozen=True)
class BatchPredictionSpec(_Flat):
    """A batch prediction: the model, the datasource scored, and where the results go."""

    KIND: ClassVar[EntityKind] = EntityKind.BATCH_PREDICTION

    model_id: str
    datasource_id: str
    output_uri: str


@dataclass(frozen=True)
class ScoreThreshold:
    """A BINARY model's threshold on P(1) for the predicted label, and when UpdateMLModel set it
    (epoch ms; None while it is the default)."""

    DEFAULT: ClassVar[float] = 0.5

    value: float = DEFAULT
    updated_at: int | None = None


@dataclass(frozen=True)
class DataSourceResult:
    """What a datasource's job read."""

    KIND: ClassVar[EntityKind] = EntityKind.DATASOURCE

    data_size_in_bytes: int
    number_of_files: int
    files: tuple[str, ...]  # the objects read, in order: a batch prediction's result per file

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "files": list(self.files)}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Self:
        return cls(doc["data_size_in_bytes"], doc["number_of_files"], tuple(doc["files"]))


@dataclass(frozen=True)
class MLModelResult(_Flat):
    """What a model's training made."""

    KIND: ClassVar[EntityKind] = EntityKind.MLMODEL

    size_in_bytes: int
    recipe: str  # the one trained with: the caller's or the default recipe made for the data


@dataclass(frozen=True)
class EvaluationResult(_Flat):
    """An evaluation's metrics."""

    KIND: ClassVar[EntityKind] = EntityKind.EVALUATION

    metrics: dict[str, str]  # PerformanceMetrics.Properties


@dataclass(frozen=True)
class BatchPredictionResult(_Flat):
    """What a batch prediction scored."""

    KIND: ClassVar[EntityKind] = EntityKind.BATCH_PREDICTION

    total_record_count: int
    invalid_record_count: int


class Document(Protocol):
    """A spec or a result: typed, and its JSON form."""

    KIND: ClassVar[EntityKind]

    def to_json(self) -> dict[str, Any]: ...

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Self: ...


Spec = DataSourceSpec | MLModelSpec | EvaluationSpec | BatchPredictionSpec
Result = DataSourceResult | MLModelResult | EvaluationResult | BatchPredictionResult


def model_seed(model_id: str) -> int:
    """A deterministic training seed from the model id: same id and data, same model."""
    return int.from_bytes(hashlib.sha256(model_id.encode()).digest()[:4], "big")


@lru_cache(maxsize=256)
def _schema(text: str) -> Schema:
    """A stored (valid, normalized) schema, parsed once for all the specs that hold it (a
    process reads it for every job, Create and Predict check)."""
    return parse_schema(text, stored=True)


def _parameters_doc(parameters: SGDParams) -> dict[str, Any]:
    """A training's parameters as stored: `trees`, `class_weights` and `optimizer` only when
    not their defaults, so that a worker of the version before them still reads the specs that
    do without (a rolling update)."""
    doc = asdict(parameters)
    for later, default in (("trees", None), ("class_weights", None), ("optimizer", SGDParams.optimizer)):
        if doc[later] == default:
            del doc[later]
    return doc
