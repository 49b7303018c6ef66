"""The console's one door to the service: every call is validated against the botocore service
model exactly as an API request is (`protocol.parse`), then handed to the operation's handler.

So a rename, a delete, a score threshold or a list filter typed into the console meets the same
lengths, patterns, enums and ranges as the same call made with boto3, and the same message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openaml.protocol.parse import Violation, compiled_input, validation_error
from openaml.protocol.spec import ServiceSpec
from openaml.service.context import RequestContext


class ServiceApi:
    """`api("UpdateMLModel", {"MLModelId": ..., "ScoreThreshold": 0.7})` -> the handler's result."""

    def __init__(self, service: Any, context: RequestContext) -> None:
        self.service, self.context = service, context
        self.spec = ServiceSpec.load()

    def __call__(self, operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
        checked = self.validated(operation, params)
        handler = getattr(self.service, self.spec.snake_name(operation))
        result: dict[str, Any] = handler(self.context, **checked)
        return result

    def validated(self, operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """The parameters as the API would pass them on (None means absent), or the API's
        SerializationException / InvalidInputException / InvalidTagException."""
        violations: list[Violation] = []
        checked: dict[str, Any] = compiled_input(self.spec.operation(operation))(dict(params), "", violations)
        if violations:
            raise validation_error(violations)
        return checked
