"""Real-time endpoints: CreateRealtimeEndpoint, DeleteRealtimeEndpoint and Predict."""

from __future__ import annotations

import re
from typing import Any

from openaml.errors import InvalidInputException, PredictorNotMountedException
from openaml.ml.features.tokens import RecordTooLarge
from openaml.ml.prediction import UnscorableRecord
from openaml.service import common
from openaml.service.context import RequestContext, ServiceContext
from openaml.settings import Settings
from openaml.store import EndpointStatus, EntityKind, EntityRecord, Status

KIND = EntityKind.MLMODEL
NO_ENDPOINT = {"EndpointStatus": EndpointStatus.NONE.value, "PeakRequestsPerSecond": 0}
MAX_RECORD_BYTES = 100 * 1024
DEFAULT_RATE_LIMIT = Settings.predict_rate_limit  # requests per second and endpoint
EXPLAIN_HEADER = "x-openaml-explain"  # beyond Amazon ML: Predict adds this many contributions
MAX_EXPLAINED = 100


def explained(header: str | None) -> int:
    """The contributions an X-OpenAML-Explain header asks for (0 without the header)."""
    if header is None:
        return 0
    found = re.fullmatch(r"\s*([0-9]{1,3})\s*", header)
    if found is None or not 1 <= int(found.group(1)) <= MAX_EXPLAINED:
        raise InvalidInputException(f"X-OpenAML-Explain must be a whole number of contributions from 1 to "
                                    f"{MAX_EXPLAINED}, not {header[:40]!r}")
    return int(found.group(1))


def too_large(record: dict[str, str]) -> bool:
    """Whether a record's names and values take more than MAX_RECORD_BYTES in UTF-8, as a CSV
    line's bytes are counted (a count of characters let a non-ASCII record three times as large
    through Predict, which a batch prediction of the same record refused)."""
    names, values = "".join(record), "".join(record.values())
    if 4 * (len(names) + len(values)) <= MAX_RECORD_BYTES:  # at most 4 bytes a character
        return False
    size = len(names.encode("utf-8", "surrogatepass")) + len(values.encode("utf-8", "surrogatepass"))
    return size > MAX_RECORD_BYTES


def endpoint_info(ctx: ServiceContext, record: EntityRecord) -> dict[str, Any]:
    status = record.endpoint_status or EndpointStatus.NONE
    if status is EndpointStatus.NONE or record.status is Status.DELETED:
        return dict(NO_ENDPOINT)
    return common.compact({
        "EndpointStatus": status.value,
        "EndpointUrl": ctx.settings.base_url,
        # the configured limit, and the default one where limiting is off (§4.3)
        "PeakRequestsPerSecond": ctx.settings.predict_rate_limit or DEFAULT_RATE_LIMIT,
        "CreatedAt": common.timestamp(record.endpoint_created_at),
    })


class EndpointOperations:
    ctx: ServiceContext

    def create_realtime_endpoint(self, context: RequestContext, MLModelId: str) -> dict[str, Any]:
        record = common.get_existing(self.ctx, KIND, MLModelId)
        if record.status is not Status.COMPLETED:
            raise InvalidInputException(
                f"MLModel {MLModelId} is {record.status.value}; a real-time endpoint needs a "
                "COMPLETED model"
            )
        if record.endpoint_status not in (EndpointStatus.UPDATING, EndpointStatus.READY):
            now = self.ctx.clock()
            self.ctx.store.update(
                KIND, MLModelId,
                {"endpoint_status": EndpointStatus.UPDATING, "endpoint_created_at": now,
                 "last_updated_at": now},
                only_if=[Status.COMPLETED],
            )
            self.ctx.predictors.mount_async(MLModelId)
            record = common.get_existing(self.ctx, KIND, MLModelId)
        return {"MLModelId": MLModelId, "RealtimeEndpointInfo": endpoint_info(self.ctx, record)}

    def delete_realtime_endpoint(self, context: RequestContext, MLModelId: str) -> dict[str, Any]:
        record = common.get_existing(self.ctx, KIND, MLModelId)
        self.ctx.predictors.unmount(MLModelId)
        if record.endpoint_status not in (None, EndpointStatus.NONE):
            self.ctx.store.update(
                KIND, MLModelId,
                {"endpoint_status": EndpointStatus.NONE, "endpoint_created_at": None,
                 "last_updated_at": self.ctx.clock()},
            )
        return {"MLModelId": MLModelId, "RealtimeEndpointInfo": dict(NO_ENDPOINT)}

    def predict(self, context: RequestContext,
                MLModelId: str, Record: dict[str, str], PredictEndpoint: str) -> dict[str, Any]:
        explain = explained(context.explain)
        predictor = self.ctx.predictors.get(MLModelId)
        if predictor is None:
            record = common.get_existing(self.ctx, KIND, MLModelId)
            if record.endpoint_status is EndpointStatus.READY and record.status is Status.COMPLETED:
                predictor = self.ctx.predictors.mount_now(MLModelId)  # made by another process
        if predictor is None:
            raise PredictorNotMountedException(
                f"MLModel {MLModelId} has no READY real-time endpoint "
                f"(endpoint status {(record.endpoint_status or EndpointStatus.NONE).value})"
            )
        if too_large(Record):
            raise InvalidInputException("Record is larger than 100 KB")
        try:
            return {"Prediction": predictor.predict(Record, explain)}
        except RecordTooLarge as exc:
            raise InvalidInputException(f"Record is too large for the model's recipe: {exc}") from None
        except UnscorableRecord as exc:
            raise InvalidInputException(str(exc)) from None
