"""The machinelearning 2014-12-12 service model as loaded by botocore: the single source of truth
for operations, shapes and constraints.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import botocore.session
from botocore import xform_name
from botocore.model import OperationModel, ServiceModel

SERVICE_NAME = "machinelearning"


@dataclass(frozen=True, eq=False)
class ServiceSpec:
    """Operation lookup by wire name and by snake_case name, plus the X-Amz-Target prefix."""

    model: ServiceModel
    _by_name: dict[str, OperationModel] = field(repr=False)
    _snake: dict[str, str] = field(repr=False)

    @classmethod
    def from_model(cls, model: ServiceModel) -> ServiceSpec:
        ops = {name: model.operation_model(name) for name in model.operation_names}
        return cls(model, ops, {name: xform_name(name) for name in ops})

    @staticmethod
    @functools.lru_cache(maxsize=1)
    def load() -> ServiceSpec:
        """The model shipped with the installed botocore (loaded once per process)."""
        session = botocore.session.get_session()
        return ServiceSpec.from_model(session.get_service_model(SERVICE_NAME))

    @property
    def target_prefix(self) -> str:
        return str(self.model.metadata["targetPrefix"])

    @property
    def operation_names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    def operation(self, name: str) -> OperationModel:
        """The operation named `name` (PascalCase, as in X-Amz-Target); KeyError if unknown."""
        return self._by_name[name]

    def has_operation(self, name: str) -> bool:
        return name in self._by_name

    def snake_name(self, name: str) -> str:
        """botocore's snake_case name of an operation, e.g. CreateMLModel -> create_ml_model."""
        return self._snake[name]
