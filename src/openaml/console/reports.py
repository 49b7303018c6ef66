"""What the console reads through its port (port.py): stored reports, training progress,
loaded models, result files.

Everything here is defensive: a report that is missing, unreadable or of another shape gives
None (the page then says "not available"), never an exception.
"""

from __future__ import annotations

import gzip
import json
from typing import Any

from openaml.console.port import ConsolePort
from openaml.jobs.models import LoadedModel
from openaml.ml.metrics.report import EvaluationReport
from openaml.ml.training.progress import TrainingProgress
from openaml.storage import folder_uri, join_uri


def read_json(port: ConsolePort, kind: str, entity_id: str) -> dict[str, Any] | None:
    """The report the entity's job stored (ConsolePort.report) as a dict, or None."""
    try:
        document = port.report(kind, entity_id)
    except Exception:  # noqa: BLE001 - any unreadable report is "not available"
        return None
    return document if isinstance(document, dict) else None


def training_progress(port: ConsolePort, model_id: str) -> TrainingProgress | None:
    """The model's training progress as its job stored it, or None."""
    try:
        return port.training_progress(model_id)
    except Exception:  # noqa: BLE001 - the page shows "none yet"
        return None


def read_model(port: ConsolePort, model_id: str) -> LoadedModel | None:
    """The model as Predict and the jobs have it loaded (the one shared copy), or None."""
    try:
        return port.loaded_model(model_id)
    except Exception:  # noqa: BLE001
        return None


def result_files(port: ConsolePort, prediction: dict[str, Any]) -> list[tuple[str, str]]:
    """(input URI, result URI) pairs from the batch prediction's manifest, in input order."""
    output, prediction_id = prediction.get("OutputUri"), prediction.get("BatchPredictionId")
    if not output or not prediction_id:
        return []
    try:
        manifest = join_uri(folder_uri(output), f"batch-prediction/{prediction_id}.manifest")
        with port.result_stream(manifest) as stream:
            pairs = json.loads(stream.read())
        return [(str(k), str(v)) for k, v in pairs.items()]
    except Exception:  # noqa: BLE001
        return []


def preview_rows(port: ConsolePort, uri: str, rows: int = 10) -> list[str]:
    """The first lines (header included) of a gzip result file."""
    lines: list[str] = []
    try:
        with port.result_stream(uri) as raw, gzip.open(raw, "rt", encoding="utf-8") as text:
            for line in text:
                lines.append(line.rstrip("\r\n"))
                if len(lines) > rows:
                    break
    except Exception:  # noqa: BLE001
        pass
    return lines


def evaluation_report(port: ConsolePort, evaluation_id: str) -> EvaluationReport | None:
    """The evaluation's report, or None (not written yet, or unreadable)."""
    document = read_json(port, "Evaluation", evaluation_id)
    try:
        return EvaluationReport.from_json(document) if document is not None else None
    except ValueError:
        return None
