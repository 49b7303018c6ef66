"""The data behind each console page, gathered through the service's API operations.

Every operation is called through `api.ServiceApi`, so its parameters are validated as an API
request's. Each method returns a template context; ServiceErrors (unknown ID, bad filter,
invalid name) propagate and are shown by the router with their HTTP status.
"""

from __future__ import annotations

import csv
import io
import json
import math
import threading
import urllib.parse
from collections.abc import Mapping
from typing import Any

import orjson
from markupsafe import Markup

from openaml.console import charts, create, explain, forms, insights, performance, reports
from openaml.console.api import ServiceApi
from openaml.console.kinds import ACTIVE, COMPARATORS, KINDS, Kind
from openaml.console.port import ConsolePort
from openaml.errors import InvalidInputException, ServiceError
from openaml.jobs.models import LoadedModel
from openaml.ml.data.statistics_document import DatasetStatistics
from openaml.ml.errors import InputError
from openaml.ml.metrics.report import THRESHOLD_STEPS, BinaryDetails, MulticlassDetails, RegressionDetails
from openaml.ml.prediction.explanations import contributions, output_index, output_names
from openaml.ml.training.progress import TrainingProgress

OVERVIEW_ROWS = 10
FORM_FIELDS = 60  # above this many inputs, the prediction form asks for pasted CSV/JSON
ACTIONS = ("rename", "delete", "threshold", "endpoint-create", "endpoint-delete", "tag-add", "tag-delete")
LIVE_ENDPOINT = ("READY", "UPDATING")  # endpoint states that serve (or are about to) requests
PAGE_SEPARATOR = "."  # between the NextTokens of a listing's `pages` (URL-safe base64 has no dot)
MAX_PAGES = 50  # tokens a listing's link keeps: pages further back are reached from the first
MAX_WATCHED = 100  # entities one live status request asks about (a list page's rows)
MAX_COMPARED = 6  # models side by side


class Pages:
    def __init__(self, service: Any, port: ConsolePort) -> None:
        self.port = port
        self.api = ServiceApi(service, port.request_context)
        self._models: dict[tuple[str, Any], LoadedModel] = {}  # recent ones kept loaded
        self._lock = threading.Lock()

    # -- lists ------------------------------------------------------------------------------

    def overview(self) -> dict[str, Any]:
        sections = []
        for kind in KINDS.values():
            result = self.api(kind.describe_op, {"SortOrder": "dsc", "Limit": OVERVIEW_ROWS})
            sections.append((kind, self._rows(kind, result.get("Results", []))))
        busy = any(r["Status"] in ACTIVE for _, rows in sections for r in rows)
        return {"sections": sections, "refresh": busy}

    def listing(self, kind: Kind, query: Mapping[str, str]) -> dict[str, Any]:
        """A page of the kind's entities, filtered and sorted as the query says. The Describe
        operations page forward only (NextToken); `pages` carries the tokens of the pages
        from the second to this one, so that the next page and the one before keep the query
        (filter, order, limit) and can be linked."""
        order, comparator = query.get("order") or "dsc", query.get("cmp") or "Prefix"
        if order not in ("asc", "dsc") or comparator not in COMPARATORS:  # a made-up link: said, not ignored
            raise InvalidInputException(f"The list's order must be asc or dsc, and its comparator one of "
                                        f"{', '.join(COMPARATORS)}; not {order[:20]!r} and {comparator[:20]!r}")
        params: dict[str, Any] = {"SortOrder": order, "Limit": _int(query.get("limit"), 50, 1, 100)}
        variable, value = query.get("var"), query.get("value", "")
        if variable:
            params["FilterVariable"] = variable
            if value:
                params[comparator] = value
        trail = [t for t in query.get("pages", "").split(PAGE_SEPARATOR) if t][-MAX_PAGES:]
        if not trail and query.get("token"):  # a link of an earlier version
            trail = [query["token"]]
        if trail:
            params["NextToken"] = trail[-1]
        result = self.api(kind.describe_op, params)
        rows = self._rows(kind, result.get("Results", []))
        kept = {k: query[k] for k in ("var", "cmp", "value", "order", "limit") if query.get(k)}

        def link(pages: list[str], number: int) -> str:
            """The page after `pages`' tokens, numbered (the trail keeps MAX_PAGES tokens)."""
            return "?" + urllib.parse.urlencode({**kept, **({"pages": PAGE_SEPARATOR.join(pages), "p": number}
                                                            if pages else {})})

        next_token = result.get("NextToken")
        number = _int(query.get("p"), len(trail) + 1, 1, 10**9) if trail else 1
        return {"kind": kind, "rows": rows,
                "next_url": link([*trail, next_token], number + 1) if next_token else None,
                "previous_url": link(trail[:-1], number - 1) if trail else None, "page_number": number,
                "query": dict(query), "comparators": COMPARATORS,
                "refresh": any(r["Status"] in ACTIVE for r in rows)}

    def statuses(self, entities: list[str]) -> dict[str, dict[str, Any]]:
        """For live pages: the status (and message) of each "segment/ID" in `entities`, at most
        MAX_WATCHED, and a model's training progress; unknown or unreadable ones are left out."""
        found: dict[str, dict[str, Any]] = {}
        for entity in dict.fromkeys(entities[:MAX_WATCHED]):
            segment, _, entity_id = entity.partition("/")
            kind = KINDS.get(segment)
            if kind is None or not entity_id:
                continue
            try:
                item = self.api(kind.get_op, {kind.id_member: entity_id})
            except ServiceError:
                continue
            state: dict[str, Any] = {"status": item.get("Status"), "message": item.get("Message")}
            if segment == "models":
                state["progress"] = _pass_progress(reports.training_progress(self.port, entity_id))
            found[entity] = state
        return found

    def _rows(self, kind: Kind, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
        rows = []
        for item in results:
            entity_id = item[kind.id_member]
            rows.append({**item, "Id": entity_id, "Tags": self._tags(kind, entity_id)})
        return rows

    def act(self, kind: Kind, entity_id: str, verb: str, form: Mapping[str, str]) -> str:
        """One of ACTIONS; the notice to show. A form without the value is an absent member."""
        if verb == "delete":
            self.api(kind.delete_op, {kind.id_member: entity_id})
            return f"Deleted {entity_id}"
        if verb == "rename":
            name = form.get("name")
            self.api(kind.update_op, {kind.id_member: entity_id, kind.name_member: name})
            return f"Renamed {entity_id}" if name and name.strip() else f"Name of {entity_id} cleared"
        if verb == "tag-add":
            key = form.get("key", "")
            self.api("AddTags", {"Tags": [{"Key": key, "Value": form.get("value", "")}],
                                 "ResourceId": entity_id, "ResourceType": kind.resource})
            return f"Tag {key} added to {entity_id}"
        if verb == "tag-delete":
            key = form.get("key", "")
            self.api("DeleteTags", {"TagKeys": [key], "ResourceId": entity_id, "ResourceType": kind.resource})
            return f"Tag {key} removed from {entity_id}"
        if verb == "endpoint-create":
            info = self.api("CreateRealtimeEndpoint", {"MLModelId": entity_id}).get("RealtimeEndpointInfo") or {}
            return f"Real-time endpoint of {entity_id} requested: {info.get('EndpointStatus', 'UPDATING')}"
        if verb == "endpoint-delete":
            self.api("DeleteRealtimeEndpoint", {"MLModelId": entity_id})
            return f"Real-time endpoint of {entity_id} deleted"
        threshold = _finite_number(form.get("threshold", ""), "score threshold")
        self.api("UpdateMLModel", {"MLModelId": entity_id, "ScoreThreshold": threshold})
        return f"Score threshold of {entity_id} saved: {threshold:g}"

    # -- datasource -------------------------------------------------------------------------

    def datasource(self, path: Mapping[str, str], query: Mapping[str, str]) -> dict[str, Any]:
        entity_id = path["entity_id"]
        ds = self.api("GetDataSource", {"DataSourceId": entity_id, "Verbose": True})
        ingest = reports.read_json(self.port, "DataSource", entity_id)
        stored = (ingest or {}).get("statistics")
        statistics = DatasetStatistics.from_json(stored) if stored else None
        search, kind = query.get("q", ""), query.get("type", "")
        sort = query.get("sort", "") if query.get("sort", "") in insights.SORTS else ""
        descending = query.get("dir") == "desc"
        rows, matching, pages = insights.attribute_rows(statistics, search, kind, _int(query.get("page"), 1, 1, 10**6),
                                                        sort, descending, query.get("attr", ""))
        table_query = {k: v for k, v in (("q", search), ("type", kind), ("sort", sort),
                                         ("dir", "desc" if descending else "")) if v}
        schema = _schema_attributes(ds.get("DataSourceSchema"))  # GetDataSource's member
        return {"entity": ds, "kind": KINDS["datasources"], "entity_id": entity_id,
                "summary": insights.summary(ds, ingest, statistics),
                "has_statistics": statistics is not None, "ingest": ingest,
                "target_chart": insights.target_chart(statistics), "attributes": rows,
                "matching": matching, "pages": pages, "page": _int(query.get("page"), 1, 1, pages),
                "search": search, "type": kind, "sort": sort, "descending": descending,
                "table_link": lambda **changes: "?" + urllib.parse.urlencode(
                    {k: v for k, v in (table_query | changes).items() if v}),
                "schema": schema, "schema_text": ds.get("DataSourceSchema"),
                "rejected_by_reason": (ingest or {}).get("rejectedByReason") or {},
                "tags": self._tags(KINDS["datasources"], entity_id),
                "refresh": ds.get("Status") in ACTIVE}

    # -- model ------------------------------------------------------------------------------

    def model(self, path: Mapping[str, str], query: Mapping[str, str]) -> dict[str, Any]:
        entity_id = path["entity_id"]
        m = self.api("GetMLModel", {"MLModelId": entity_id, "Verbose": True})
        progress = reports.training_progress(self.port, entity_id)
        passes = list(enumerate(progress.losses, 1)) if progress else []
        known = [(k, loss) for k, loss in passes if math.isfinite(loss)]
        loss_chart = (charts.line_svg([k for k, _ in known], [[loss for _, loss in known]], "Training loss per pass",
                                      x_label="pass", y_label="loss", log=True) if known else None)
        validation = _validation_view(progress, m.get("MLModelType")) if progress else None
        loaded = self.load_model(m)
        try:
            weights = explain.top_weights(loaded.model) if loaded is not None else []
        except InputError:  # boosted trees where LightGBM is not installed: no importance to show
            weights = []
        weight_charts = [(w["output"], w["bias"],
                          charts.bar_svg([f for f, _ in w["features"]], [v for _, v in w["features"]],
                                         "Feature importance" if w["bias"] is None
                                         else f"Largest weights for {w['output']}"))
                         for w in weights]
        evaluations = self.api("DescribeEvaluations", {"FilterVariable": "MLModelId", "EQ": entity_id,
                                                       "SortOrder": "dsc"}).get("Results", [])
        return {"entity": m, "kind": KINDS["models"], "entity_id": entity_id, "passes": passes,
                "pass_progress": _pass_progress(progress),
                "loss_chart": loss_chart, "validation": validation, "weight_charts": weight_charts,
                "evaluations": evaluations, "tags": self._tags(KINDS["models"], entity_id),
                "endpoint": m.get("EndpointInfo") or {}, "datasources": create.datasource_choices(self.api),
                "choices": create.CHOICES,
                "new_ids": {"evaluate": create.new_id("ev"), "batch-predict": create.new_id("bp")},
                "live_endpoint": (m.get("EndpointInfo") or {}).get("EndpointStatus") in LIVE_ENDPOINT,
                "refresh": m.get("Status") in ACTIVE}

    def compare(self, query: Any) -> dict[str, Any]:
        """Models side by side (?m=ID, repeated, at most MAX_COMPARED): type, data, size,
        training time and passes, final loss, parameters, every evaluation's metric and the
        latest one's recall of each class (a model with class weights beside one without)."""
        models = []
        asked = list(dict.fromkeys(query.getlist("m")))
        for model_id in asked[:MAX_COMPARED]:
            try:
                m = self.api("GetMLModel", {"MLModelId": model_id})
            except ServiceError as exc:
                models.append({"MLModelId": model_id, "error": f"{exc.error_type}: {exc}"})
                continue
            progress = reports.training_progress(self.port, model_id)
            evaluations = self.api("DescribeEvaluations", {"FilterVariable": "MLModelId", "EQ": model_id,
                                                           "SortOrder": "dsc"}).get("Results", [])
            metrics = [(e["EvaluationId"], e.get("EvaluationDataSourceId"), *next(iter(
                ((e.get("PerformanceMetrics") or {}).get("Properties") or {}).items()), (None, None)))
                for e in evaluations if e.get("Status") == "COMPLETED"]
            latest = reports.evaluation_report(self.port, metrics[0][0]) if metrics else None
            models.append({**m, "passes": len(progress.losses) if progress else None,
                           "recalls": performance.class_recalls(latest.details) if latest else [],
                           "final_loss": progress.losses[-1] if progress and progress.losses else None,
                           "seconds": (m["ComputeTime"] / 1000 if m.get("ComputeTime") is not None else None),
                           "metrics": [(ev, ds, name, performance.as_float(value)) for ev, ds, name, value in metrics]})
        keys = sorted({k for m in models for k in (m.get("TrainingParameters") or {})})
        return {"models": models, "parameter_keys": keys, "refresh": False,
                "asked": len(asked), "max_compared": MAX_COMPARED}

    def load_model(self, m: dict[str, Any]) -> LoadedModel | None:
        """A COMPLETED model, loaded (shared with Predict and the jobs), kept per (ID, last
        update) for the next pages."""
        if m.get("Status") != "COMPLETED":
            return None
        key = (m["MLModelId"], str(m.get("FinishedAt")))
        with self._lock:
            if key in self._models:
                return self._models[key]
        loaded = reports.read_model(self.port, m["MLModelId"])
        if loaded is not None:
            with self._lock:
                if len(self._models) > 8:
                    self._models.clear()
                self._models[key] = loaded
        return loaded

    # -- evaluation -------------------------------------------------------------------------

    def evaluation(self, path: Mapping[str, str], query: Mapping[str, str]) -> dict[str, Any]:
        entity_id = path["entity_id"]
        ev = self.api("GetEvaluation", {"EvaluationId": entity_id})
        try:
            m = self.api("GetMLModel", {"MLModelId": ev["MLModelId"]})
        except Exception:  # noqa: BLE001 - a deleted model still leaves the evaluation readable
            m = {}
        report = reports.evaluation_report(self.port, entity_id)
        model_type = m.get("MLModelType") or (report.model_type if report else "")
        properties = (ev.get("PerformanceMetrics") or {}).get("Properties") or {}
        metric_name, metric = next(iter(properties.items()), (None, None))
        try:
            source = self.api("GetDataSource", {"DataSourceId": ev.get("EvaluationDataSourceId")})
            split = source.get("DataRearrangement")
        except ServiceError:  # a datasource gone (or none named): the evaluation still reads
            split = None
        data = ev.get("InputDataLocationS3")
        context: dict[str, Any] = {
            "data": f"{data}, {insights.describe_split(split)}" if data else None,
            "entity": ev, "kind": KINDS["evaluations"], "entity_id": entity_id, "model": m,
            "model_type": model_type, "report": report, "metric_name": metric_name,
            "metric": performance.as_float(metric),
            "baseline": report.baseline if report else None,
            "alerts": report.alerts if report else [], "tags": self._tags(KINDS["evaluations"], entity_id),
            "refresh": ev.get("Status") in ACTIVE,
            "record_count": report.records_used if report else None,
            "matrix": None, "histograms": None,
        }
        details = report.details if report else None
        if isinstance(details, MulticlassDetails):
            context.update(_multiclass(details))
        elif isinstance(details, BinaryDetails):
            context.update(_binary(details, m.get("ScoreThreshold")))
        elif isinstance(details, RegressionDetails):
            context.update(_regression(details))
        return context

    # -- batch prediction -------------------------------------------------------------------

    def batch_prediction(self, path: Mapping[str, str], query: Mapping[str, str]) -> dict[str, Any]:
        entity_id = path["entity_id"]
        bp = self.api("GetBatchPrediction", {"BatchPredictionId": entity_id})
        files = reports.result_files(self.port, bp) if bp.get("Status") == "COMPLETED" else []
        preview = reports.preview_rows(self.port, files[0][1]) if files else []
        try:
            table = list(csv.reader(io.StringIO("\n".join(preview))))
        except csv.Error:  # a value over csv's field size limit: no preview rather than no page
            table = []
        return {"entity": bp, "kind": KINDS["batchpredictions"], "entity_id": entity_id,
                "files": files, "preview": table, "tags": self._tags(KINDS["batchpredictions"], entity_id),
                "refresh": bp.get("Status") in ACTIVE}

    def result_file(self, entity_id: str, index: int) -> tuple[str, str]:
        """The URI and name of result file number `index` (from 0) of a batch prediction;
        IndexError for a number it has not (a negative one included)."""
        if index < 0:
            raise IndexError(index)
        bp = self.api("GetBatchPrediction", {"BatchPredictionId": entity_id})
        uri = reports.result_files(self.port, bp)[index][1]
        return uri, uri.rsplit("/", 1)[-1]

    # -- try a prediction -------------------------------------------------------------------

    def predict(self, entity_id: str, form: Mapping[str, str]) -> dict[str, Any]:
        """The prediction form, and for a posted form the prediction and its explanation. A
        record the API's Predict would refuse, or that cannot be scored, gives the form again
        with the message and `status_code` 400."""
        m = self.api("GetMLModel", {"MLModelId": entity_id, "Verbose": True})
        loaded = self.load_model(m)
        context: dict[str, Any] = {"entity": m, "kind": KINDS["models"], "entity_id": entity_id,
                                   "fields": [], "values": dict(form), "prediction": None,
                                   "contributions": None, "error": None, "refresh": False}
        if loaded is None:
            context["error"] = "The model artifact is not available (the model is not COMPLETED)."
            return context
        schema = loaded.model.schema
        inputs = [a for a in schema.attributes if a.name != schema.target]
        context["fields"] = [(a.name, a.type.value) for a in inputs] if len(inputs) <= FORM_FIELDS else []
        context["input_names"] = [a.name for a in inputs]
        if not form:
            return context
        threshold = float(m["ScoreThreshold"]) if m.get("ScoreThreshold") is not None else 0.5  # 0 is one
        endpoint = (m.get("EndpointInfo") or {}).get("EndpointUrl") or ""
        try:
            record = forms.record_from_form(form, context["input_names"])
            self.api.validated("Predict", {"MLModelId": entity_id, "Record": record, "PredictEndpoint": endpoint})
            prediction = explain.predict(loaded.scorer, record, threshold)
        except ServiceError as exc:
            context.update(error=str(exc), status_code=exc.http_status)
            return context
        except (ValueError, KeyError) as exc:
            context.update(error=f"The record cannot be scored: {exc}", status_code=400)
            return context
        output = output_index(loaded.model, prediction)
        parts, _, _ = contributions(loaded.scorer, record, output)
        context.update(
            record=record, prediction=prediction, output_name=output_names(loaded.model)[output],
            result=_prediction_view(loaded.model.model_type.value, prediction, threshold,
                                    m.get("ScoreThresholdLastUpdatedAt") is not None),
            warnings=explain.record_warnings(loaded.model, record),
            answer=json.dumps({"Prediction": prediction}, indent=2), contributions=parts,
            contribution_note=_contribution_note(loaded.model),
            contribution_chart=charts.bar_svg([n for n, _ in parts], [v for _, v in parts],
                                              "Feature contributions to the score") if parts else None)
        return context

    def _tags(self, kind: Kind, entity_id: str) -> list[dict[str, str]]:
        try:
            tags = self.api("DescribeTags", {"ResourceId": entity_id, "ResourceType": kind.resource})
        except Exception:  # noqa: BLE001 - tags are decoration; the page still shows
            return []
        return list(tags.get("Tags", []))


def _pass_progress(progress: TrainingProgress | None) -> dict[str, Any] | None:
    """The training's last pass, of how many, in words (the model page, and its live updates)."""
    if progress is None or not progress.losses:
        return None
    planned = progress.chosen_passes or progress.max_passes
    return {"pass": len(progress.losses), "of": planned,
            "text": f"Pass {len(progress.losses)} of {planned}; last training loss {progress.losses[-1]:.4g}"}


def _contribution_note(model: Any) -> str:
    """What the predict page's contributions are (Model.contributions)."""
    parts = "SHAP values of the trees" if model.algorithm == "gbdt" else "Feature value times weight"
    if model.model_type == "REGRESSION":
        return f"{parts}, in the target's units: with the baseline they sum to the predicted value"
    return f"{parts}, before the link function"


def _prediction_view(model_type: str, prediction: dict[str, Any], threshold: float,
                     saved: bool) -> dict[str, Any]:
    """What the prediction page shows first. BINARY: the label and P(class 1) (Predict keys
    its one score by the predicted label, which read as "Score 0: 0.64" when 0.64 is the
    chance of class 1), with the threshold that made the label and where it comes from;
    MULTICLASS: the label and every class's score, highest first; REGRESSION: the value."""
    scores = prediction.get("predictedScores") or {}
    view: dict[str, Any] = {"type": model_type, "label": prediction.get("predictedLabel"),
                            "value": prediction.get("predictedValue")}
    if model_type == "BINARY":
        view.update(probability=next(iter(scores.values()), None), threshold=threshold, saved=saved)
    elif model_type == "MULTICLASS":
        view["scores"] = sorted(scores.items(), key=lambda item: -item[1])
    return view


def _multiclass(details: MulticlassDetails) -> dict[str, Any]:
    classes, matrix = details.classes, details.matrix
    return {"matrix": matrix, "classes": classes,
            "heatmap": charts.heatmap_svg(matrix, classes, classes, "Confusion matrix: rows are true classes, "
                                          "columns predicted classes, cells the share of the row"),
            "per_class": performance.class_metrics(classes, matrix),
            "confusions": performance.top_confusions(classes, matrix)}


def _binary(details: BinaryDetails, threshold: Any) -> dict[str, Any]:
    """The BINARY evaluation's numbers and charts, the score threshold marked on each: the
    ROC and precision-recall curves from the report's exact points (the score histogram's
    bins where an earlier report has none), on [0, 1] axes."""
    edges, positive, negative = details.edges, details.positive, details.negative
    out: dict[str, Any] = {"threshold": float(threshold if threshold is not None else 0.5)}
    t = out["threshold"]
    # as the slider's steps show it (0.50), or whole when off them (0.305: not rounded to 0.31)
    out["threshold_text"] = f"{t:.2f}" if round(t * THRESHOLD_STEPS) == t * THRESHOLD_STEPS else f"{t:g}"
    points = sorted(([float(v) for v in p] for p in details.roc), key=lambda p: -p[2])
    p, n = sum(positive), sum(negative)
    exact = details.counted_at(t)  # the report's own counts (its ROC points are at most 201)
    if exact is not None:
        initial = performance.counts(*exact, p, n)
    elif points:
        initial = performance.threshold_counts_roc(points, p, n, t)
    else:
        initial = performance.threshold_counts(edges, positive, negative, t)
    data = {"edges": edges, "positive": positive, "negative": negative, "roc": points,
            "exact": ({"threshold": details.threshold, "tp": details.confusion["tp"], "fp": details.confusion["fp"]}
                      if details.confusion else None),
            "stepped": details.stepped, "steps": THRESHOLD_STEPS}
    if points:
        roc = sorted((fpr, tpr) for fpr, tpr, _ in points)
        recall, precision = performance.precision_recall(points, p, n)
    else:
        curves = performance.curves_from_histograms(edges, positive, negative)
        roc = list(zip(curves["fpr"], curves["tpr"]))
        recall, precision = curves["recall"], curves["precision"]
    label = f"threshold {t:g}"
    rates = (initial["fpr"], initial["recall"], initial["precision"])
    out.update(
        histograms=(edges, positive, negative), initial=initial,
        slider=Markup(json.dumps(data).replace("<", "\\u003c")),
        score_chart=charts.histogram_svg(edges, [positive, negative], "Scores of records whose true "
                                         "label is 1 and 0", series=("true label 1", "true label 0"),
                                         marker=(t, label)),
        pr_chart=charts.line_svg(recall, [precision], "Precision-recall curve", x_label="recall",
                                 y_label="precision", unit=True, points=False,
                                 marker=_point(rates[1], rates[2], label)),
        roc_chart=charts.line_svg([f for f, _ in roc], [[r for _, r in roc]], "ROC curve",
                                  x_label="false positive rate", y_label="true positive rate",
                                  diagonal=True, points=False,
                                  marker=_point(rates[0], rates[1], label)),
    )
    return out


def _point(x: float | None, y: float | None, label: str) -> tuple[float, float, str] | None:
    """A chart marker at (x, y), or None where a rate is undefined."""
    return (x, y, label) if x is not None and y is not None else None


def _regression(details: RegressionDetails) -> dict[str, Any]:
    """Residuals with their zero marked, and the predicted values against the actual ones as
    dots around the line y = x."""
    out: dict[str, Any] = {}
    if details.counts:
        out["residual_chart"] = charts.histogram_svg(details.edges, details.counts,
                                                     "Residuals (actual minus predicted)", marker=(0.0, "zero"))
    if details.pairs:
        out["scatter_chart"] = charts.scatter_svg([a for a, _ in details.pairs], [p for _, p in details.pairs],
                                                  "Predicted against actual values", x_label="actual",
                                                  y_label="predicted")
    return out


def _schema_attributes(schema_text: Any) -> list[tuple[str, str]]:
    try:  # orjson: bounded in depth, where json.loads can raise RecursionError
        document = orjson.loads(schema_text) if isinstance(schema_text, str) else schema_text
        return [(a["attributeName"], a["attributeType"]) for a in document.get("attributes", [])]
    except (TypeError, ValueError, KeyError, AttributeError):
        return []


def _finite_number(text: str, what: str) -> float:
    """A number typed into a form (JSON, which the API speaks, has no NaN or infinity)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise InvalidInputException(f"The {what} must be a number, not '{text[:40]}'")
    return value


def _int(raw: Any, default: int, lo: int, hi: int) -> int:
    try:
        value = int(raw)
    except (TypeError, ValueError):
        return default
    return min(max(value, lo), hi) if not math.isnan(value) else default


def _validation_view(progress: TrainingProgress, model_type: str | None) -> dict[str, Any] | None:
    """The cross-validation of the number of passes, for the model page: its passes (pass,
    held-out loss, metric), the passes chosen, and its charts; None when there was none."""
    found = progress.validation
    if not found.losses:
        return None
    metric = {"BINARY": "AUC", "MULTICLASS": "macro-average F1"}.get(model_type or "", "") if found.metrics else ""
    rows = [(k, loss, found.metrics[k - 1] if k <= len(found.metrics) else math.nan)
            for k, loss in enumerate(found.losses, 1)]
    charted = [row for row in rows if math.isfinite(row[1]) and (not metric or math.isfinite(row[2]))]
    xs = [k for k, _, _ in charted]
    loss_chart = charts.line_svg(xs, [[loss for _, loss, _ in charted]], "Cross-validated held-out loss per pass",
                                 x_label="pass", y_label="loss") if charted else None
    metric_chart = (charts.line_svg(xs, [[value for _, _, value in charted]], f"Cross-validated {metric} per pass",
                                    x_label="pass", y_label=metric) if metric and charted else None)
    return {"rows": rows, "chosen": progress.chosen_passes, "max_passes": progress.max_passes, "metric": metric,
            "by": metric if found.by_metric else "held-out loss", "loss_chart": loss_chart,
            "metric_chart": metric_chart, "training": bool(progress.losses)}
