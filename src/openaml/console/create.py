"""The console's creation flows: each ends in the API call a boto3 user would make, through the
same validation (`api.ServiceApi`), and a refusal comes back as the message of the form field
it concerns (FieldErrors), with what the user typed kept.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from openaml.console.api import ServiceApi
from openaml.errors import ServiceError


class FieldErrors(Exception):
    """Messages by form field ("form": the whole form), to show beside the fields."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def new_id(prefix: str) -> str:
    """A fresh entity ID for a form's default ("ev-3f9a1c2e")."""
    return f"{prefix}-{secrets.token_hex(4)}"


def field_error(error: ServiceError, members: Mapping[str, str]) -> FieldErrors:
    """The API's refusal as the message of the field whose API member (or word, such as
    "DataSource") it names, in any case (`members`: member name -> field, first match wins),
    else of the whole form."""
    message = f"{error.error_type}: {error}"
    text = str(error).lower()
    for member, name in members.items():
        if member.lower() in text:
            return FieldErrors({name: message})
    return FieldErrors({"form": message})


def create_evaluation(api: ServiceApi, model_id: str, form: Mapping[str, str]) -> str:
    """CreateEvaluation of the model on the form's datasource; the new evaluation's ID."""
    evaluation_id = form.get("id") or new_id("ev")
    params = {"EvaluationId": evaluation_id, "MLModelId": model_id,
              "EvaluationDataSourceId": form.get("datasource", ""),
              "EvaluationName": form.get("name") or None}
    _call(api, "CreateEvaluation", params, {"EvaluationDataSourceId": "datasource", "DataSource": "datasource",
                                            "EvaluationId": "id", "EvaluationName": "name"})
    return evaluation_id


def create_batch_prediction(api: ServiceApi, model_id: str, form: Mapping[str, str]) -> str:
    """CreateBatchPrediction of the model on the form's datasource into its output location."""
    prediction_id = form.get("id") or new_id("bp")
    params = {"BatchPredictionId": prediction_id, "MLModelId": model_id,
              "BatchPredictionDataSourceId": form.get("datasource", ""), "OutputUri": form.get("output", ""),
              "BatchPredictionName": form.get("name") or None}
    _call(api, "CreateBatchPrediction", params, {
        "BatchPredictionDataSourceId": "datasource", "DataSource": "datasource", "OutputUri": "output",
        "BatchPredictionId": "id", "BatchPredictionName": "name"})
    return prediction_id


def _call(api: ServiceApi, operation: str, params: dict[str, Any], members: Mapping[str, str]) -> dict[str, Any]:
    try:
        return api(operation, params)
    except ServiceError as exc:
        raise field_error(exc, members) from None
