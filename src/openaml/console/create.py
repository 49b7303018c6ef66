"""The console's creation flows: each ends in the API call a boto3 user would make, through the
same validation (`api.ServiceApi`), and a refusal comes back as the message of the form field
it concerns (FieldErrors), with what the user typed kept.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from typing import Any

from openaml.console.api import ServiceApi
from openaml.errors import ServiceError
from openaml.ml.data import RearrangementError, parse_rearrangement
from openaml.ml.errors import InputError
from openaml.ml.recipes import RecipeError, parse_recipe
from openaml.ml.schema import Schema, SchemaError, parse_schema
from openaml.ml.schema.guess import MAX_SCHEMA_LENGTH
from openaml.ml.schema.model import MAX_ATTRIBUTES
from openaml.ml.training import ParameterError, check_target, parse_parameters

CHOICES = 100  # datasources a picker lists
CHOICE_PAGES = 5  # pages of DescribeDataSources a picker reads to find them
UNUSABLE = ("FAILED", "DELETED")  # a Create call refuses a datasource of these statuses


class FieldErrors(Exception):
    """Messages by form field ("form": the whole form), to show beside the fields."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def new_id(prefix: str) -> str:
    """A fresh entity ID for a form's default ("ev-3f9a1c2e")."""
    return f"{prefix}-{secrets.token_hex(4)}"


def datasource_choices(api: ServiceApi) -> list[dict[str, Any]]:
    """The datasources a picker lists: the newest CHOICES usable ones (neither FAILED nor
    DELETED), read a page at a time over at most CHOICE_PAGES pages; an older one is picked by
    typing its ID (`picked_datasource`)."""
    found: list[dict[str, Any]] = []
    query: dict[str, Any] = {"SortOrder": "dsc", "Limit": 100}
    for _ in range(CHOICE_PAGES):
        page = api("DescribeDataSources", query)
        found += [d for d in page.get("Results", []) if d.get("Status") not in UNUSABLE]
        if len(found) >= CHOICES or not page.get("NextToken"):
            break
        query["NextToken"] = page["NextToken"]
    return found[:CHOICES]


def picked_datasource(form: Mapping[str, str]) -> str:
    """The datasource a picker chose: the ID typed beside its list, or the one listed; both,
    when they differ, are refused (a refused ID stays typed, and a choice from the list made
    after it would silently lose to it)."""
    typed, listed = form.get("datasource_id", "").strip(), form.get("datasource", "")
    if typed and listed and typed != listed:
        raise FieldErrors({"datasource": f"Choose {listed} from the list or type {typed}, not both: empty the "
                                         "one not meant."})
    return typed or listed


def required_datasource(form: Mapping[str, str]) -> str:
    """`picked_datasource`, which a form that scores records must have: the pickers choose none
    by themselves (the newest datasource is rarely the one to score)."""
    picked = picked_datasource(form)
    if not picked:
        raise FieldErrors({"datasource": "Choose a datasource from the list, or type its ID."})
    return picked


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
              "EvaluationDataSourceId": required_datasource(form),
              "EvaluationName": form.get("name") or None}
    _call(api, "CreateEvaluation", params, {"EvaluationDataSourceId": "datasource", "DataSource": "datasource",
                                            "EvaluationId": "id", "EvaluationName": "name"})
    return evaluation_id


def create_batch_prediction(api: ServiceApi, model_id: str, form: Mapping[str, str]) -> str:
    """CreateBatchPrediction of the model on the form's datasource into its output location."""
    prediction_id = form.get("id") or new_id("bp")
    params = {"BatchPredictionId": prediction_id, "MLModelId": model_id,
              "BatchPredictionDataSourceId": required_datasource(form), "OutputUri": form.get("output", ""),
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


# -- datasources ------------------------------------------------------------------------------

TYPES = ("NUMERIC", "CATEGORICAL", "BINARY", "TEXT")
TABLE_ATTRIBUTES = 100  # up to this many attributes, the schema is a table of fields; else JSON
EVALUATION_SHARE = 30  # percent of the records an automatic evaluation holds out (Amazon ML's)


def guessed_attributes(schema_text: str) -> dict[str, Any]:
    """The guessed schema as the wizard's form shows it: attributes (name, type), header, and
    the JSON itself (the form for wide data)."""
    document = json.loads(schema_text)
    attributes = [(a["attributeName"], a["attributeType"]) for a in document["attributes"]]
    return {"attributes": attributes, "header": bool(document.get("dataFileContainsHeader")),
            "json": schema_text if len(attributes) > TABLE_ATTRIBUTES else "",
            "target": document.get("targetAttributeName") or "", "rowid": document.get("rowId") or ""}


def guess_from_form(form: Mapping[str, str]) -> dict[str, Any] | None:
    """The wizard's schema as the user left it (to show it again beside a refusal); None when
    the form has none."""
    if form.get("schema_json"):
        try:
            return guessed_attributes(form["schema_json"]) | {"json": form["schema_json"]}  # kept as typed
        except (ValueError, KeyError, TypeError, RecursionError):
            return {"attributes": [], "header": False, "json": form["schema_json"], "target": "", "rowid": ""}
    attributes, n = [], 0
    while f"attr.{n}.name" in form:
        attributes.append((form[f"attr.{n}.name"], form.get(f"attr.{n}.type", "CATEGORICAL")))
        n += 1
    if not attributes:
        return None
    return {"attributes": attributes, "header": bool(form.get("header")), "json": "",
            "target": form.get("target", ""), "rowid": form.get("rowid", "")}


def schema_from_form(form: Mapping[str, str]) -> str:
    """The DataSchema the wizard's form describes: its JSON field as it is (wide data), or its
    table (attr.N.name, attr.N.type, target, rowid, exclude.N, header)."""
    if form.get("schema_json"):
        return fitted_schema(form["schema_json"])
    attributes, excluded, n = [], [], 0
    while f"attr.{n}.name" in form:
        name = form[f"attr.{n}.name"]
        attributes.append({"attributeName": name, "attributeType": form.get(f"attr.{n}.type", "CATEGORICAL")})
        if form.get(f"exclude.{n}"):
            excluded.append(name)
        n += 1
    return fitted_schema(json.dumps({"version": "1.0", "rowId": form.get("rowid") or None,
                                     "targetAttributeName": form.get("target") or None, "dataFormat": "CSV",
                                     "dataFileContainsHeader": bool(form.get("header")), "attributes": attributes,
                                     "excludedAttributeNames": excluded}))


def fitted_schema(text: str) -> str:
    """The schema JSON as given, or written compactly where it is longer than the API takes
    (pretty-printed wide data); refused by the "schema" field where even that is too long."""
    if len(text) <= MAX_SCHEMA_LENGTH:
        return text
    try:
        text = json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)
    except (ValueError, RecursionError):
        pass  # not JSON: too long all the same
    if len(text) > MAX_SCHEMA_LENGTH:
        raise FieldErrors({"schema": schema_too_long(len(text))})
    return text


def schema_too_long(length: int) -> str:
    """Why a schema of `length` characters cannot be sent, and what to do."""
    return (f"The schema is {length:,} characters even written compactly, and the API takes at most "
            f"{MAX_SCHEMA_LENGTH:,}: use data with fewer columns (a schema holds at most {MAX_ATTRIBUTES:,}) or "
            "shorter column names.")


def split_from_form(form: Mapping[str, str]) -> str | None:
    """The DataRearrangement the form chooses: none (every record), or a range of percent in
    file order or drawn at random with a seed."""
    if form.get("split", "all") == "all":
        return None
    splitting: dict[str, Any] = {"percentBegin": _percent(form.get("begin"), "begin"),
                                 "percentEnd": _percent(form.get("end"), "end")}
    if form.get("strategy") == "random":
        splitting |= {"strategy": "random", "strategyParams": {"randomSeed": form.get("seed") or "openaml"}}
    return json.dumps({"splitting": splitting})


def create_datasource(api: ServiceApi, form: Mapping[str, str]) -> str:
    """CreateDataSourceFromS3 of the wizard's form; the new datasource's ID."""
    datasource_id = form.get("id") or new_id("ds")
    spec: dict[str, Any] = {"DataLocationS3": form.get("location", ""), "DataSchema": schema_from_form(form)}
    split = split_from_form(form)
    if split is not None:
        spec["DataRearrangement"] = split
    _call(api, "CreateDataSourceFromS3", {
        "DataSourceId": datasource_id, "DataSourceName": form.get("name") or None, "DataSpec": spec,
        "ComputeStatistics": bool(form.get("statistics"))}, {
        "DataRearrangement": "split", "DataSchema": "schema", "schema": "schema", "attribute": "schema",
        "DataLocationS3": "location", "s3://": "location", "DataSourceId": "id", "DataSourceName": "name"})
    return datasource_id


def _percent(raw: str | None, field: str) -> float:
    try:
        return float(raw or "")
    except ValueError:
        raise FieldErrors({"split": f"The {field} of the split is not a number: {raw!r}"}) from None


# -- models -----------------------------------------------------------------------------------

PARAMETERS = (  # (key, console default (Amazon ML's console), what it is); an empty field is not sent
    ("sgd.maxPasses", "10", "passes over the data, 1-10,000; training may stop earlier"),
    ("sgd.shuffleType", "auto", "auto (shuffle the records) or none"),
    ("sgd.l2RegularizationAmount", "1e-6", "L2 amount, 0 or more (not with L1)"),
    ("sgd.l1RegularizationAmount", "0", "L1 amount, 0 or more (not with L2)"),
    ("sgd.maxMLModelSizeInBytes", "104857600", "model size cap, 100,000 to 2,147,483,648 bytes"),
    # beyond Amazon ML (the README's "Boosted trees"): empty unless asked for
    ("openaml.algorithm", "", "empty or sgd: Amazon ML's linear model; gbdt: boosted trees, with the gbdt fields"),
    ("gbdt.rounds", "", "boosting rounds, 1-10,000 (empty: 100)"),
    ("gbdt.learningRate", "", "shrinkage of each tree, above 0 and at most 1 (empty: 0.1)"),
    ("gbdt.leaves", "", "leaves per tree, 2-131,072 (empty: 31)"),
    ("gbdt.minRecordsInLeaf", "", "the fewest training records in a leaf (empty: 20)"),
    ("gbdt.l2Regularization", "", "L2 penalty on the leaves' values (empty: 0)"),
    ("gbdt.maxBins", "", "bins a column's values are sorted into, 4-1,024 (empty: auto)"),
    ("gbdt.earlyStoppingRounds", "", "stop once this many rounds bettered no held-out loss (empty: 0, off)"),
    ("gbdt.validationPercent", "", "training records held out for early stopping, 1-50 (empty: 10)"),
    ("openaml.classWeights", "", "BINARY and MULTICLASS: balanced, or a JSON object of weights by class"),
)
SUGGESTED_TYPE = {"BINARY": "BINARY", "NUMERIC": "REGRESSION", "CATEGORICAL": "MULTICLASS"}
MAX_ID = 64  # characters of an entity ID (the API's pattern)
MAX_NAME = 1024  # characters of an entity's name: a part's is its source's, cut to leave room for " (evaluation)"
DERIVED_SUFFIX = "-train"  # the longest suffix of the IDs the held-out evaluation derives


def create_model(api: ServiceApi, form: Mapping[str, str]) -> tuple[str, str | None]:
    """CreateMLModel of the wizard's form, trained on its datasource, or, with "evaluate", on
    the first 70 % of that datasource's records, with a datasource of the other 30 % and an
    evaluation on it (as Amazon ML's wizard did). Returns the model's ID and the
    evaluation's. What CreateMLModel would refuse (parameters, recipe, ID, target, the
    datasource's status) is checked before anything is made; a refusal of any call comes back
    by field, and what this submission made before it is deleted again."""
    model_id = form.get("id") or new_id("ml")
    source_id = form.get("datasource", "")
    parameters = {key: form[key] for key, _, _ in PARAMETERS if form.get(key, "").strip()}  # blank: not sent
    evaluate = bool(form.get("evaluate"))
    training_id, evaluation_id = (f"{model_id}-train", f"{model_id}-ev") if evaluate else (source_id, None)
    request = {"MLModelId": model_id, "MLModelName": form.get("name") or None, "MLModelType": form.get("type", ""),
               "TrainingDataSourceId": training_id, "Recipe": form.get("recipe") or None,
               "Parameters": parameters or None}
    source = _call(api, "GetDataSource", {"DataSourceId": source_id, "Verbose": True}, MODEL_MEMBERS)
    _check_model(api, request, source, evaluate)
    made: list[tuple[str, dict[str, str]]] = []  # (Delete operation, its parameters), in the order made
    try:
        if evaluate:
            _create_held_out(api, source, form.get("strategy", ""), model_id, made)
        _create(api, "CreateMLModel", request, MODEL_MEMBERS, made)
        if evaluation_id is not None:
            _create(api, "CreateEvaluation", {
                "EvaluationId": evaluation_id, "MLModelId": model_id, "EvaluationDataSourceId": f"{model_id}-eval",
                "EvaluationName": f"{form.get('name') or model_id} on the held-out {EVALUATION_SHARE} %"},
                MODEL_MEMBERS, made)
    except FieldErrors as exc:
        raise _undone(api, made, exc) from None
    return model_id, evaluation_id


MODEL_MEMBERS = {"MLModelId": "id", "MLModelName": "name", "MLModelType": "type", "Recipe": "recipe",
                 "recipe": "recipe", "Parameters": "parameters", "sgd.": "parameters", "gbdt.": "parameters",
                 "openaml.": "parameters", "TrainingDataSourceId": "datasource", "DataSource": "datasource"}
# Create operation -> (its Get, its Delete, the ID member): how the wizard undoes what it made
UNDO = {"CreateDataSourceFromS3": ("GetDataSource", "DeleteDataSource", "DataSourceId"),
        "CreateMLModel": ("GetMLModel", "DeleteMLModel", "MLModelId"),
        "CreateEvaluation": ("GetEvaluation", "DeleteEvaluation", "EvaluationId")}


def _create_held_out(api: ServiceApi, source: Mapping[str, Any], strategy: str, model_id: str,
                     made: list[tuple[str, dict[str, str]]]) -> None:
    """The datasources of the first 70 % (training) and the other 30 % (evaluation)."""
    source_id = source.get("DataSourceId", "")
    training, held = _held_out_splits(source.get("DataRearrangement"), strategy, model_id)
    for part_id, split, part in ((f"{model_id}-train", training, "training"), (f"{model_id}-eval", held, "evaluation")):
        _create(api, "CreateDataSourceFromS3", {
            "DataSourceId": part_id, "DataSourceName": f"{(source.get('Name') or source_id)[:MAX_NAME - 13]} ({part})",
            "DataSpec": {"DataLocationS3": source.get("DataLocationS3", ""),
                         "DataSchema": source.get("DataSourceSchema", ""), "DataRearrangement": split},
            "ComputeStatistics": True}, {**MODEL_MEMBERS, part_id: "id"}, made)


def _create(api: ServiceApi, operation: str, params: dict[str, Any], members: Mapping[str, str],
            made: list[tuple[str, dict[str, str]]]) -> None:
    """A Create call; an entity it makes anew (not one a retry of this submission finds) is
    noted in `made`."""
    get, delete, member = UNDO[operation]
    key = {member: params[member]}
    try:
        api(get, key)
        existed = True
    except ServiceError:
        existed = False
    _call(api, operation, params, members)
    if not existed:
        made.append((delete, key))


def _undone(api: ServiceApi, made: list[tuple[str, dict[str, str]]], refusal: FieldErrors) -> FieldErrors:
    """The refusal, once what the submission made is deleted again (newest first), saying so."""
    for operation, key in reversed(made):
        try:
            api(operation, key)
        except ServiceError:  # gone already: nothing left to undo
            pass
    if not made:
        return refusal
    ids = ", ".join(next(iter(key.values())) for _, key in made)
    field, message = next(iter(refusal.errors.items()))
    return FieldErrors({**refusal.errors, field: f"{message} (Nothing was kept: {ids}, made for this model "
                                                 "before the refusal, were deleted again.)"})


def _check_model(api: ServiceApi, request: dict[str, Any], source: Mapping[str, Any], evaluate: bool) -> None:
    """What CreateMLModel would refuse in the form, found before the wizard makes anything."""
    longest = MAX_ID - len(DERIVED_SUFFIX)
    if evaluate and len(request["MLModelId"]) > longest:
        raise FieldErrors({"id": f"At most {longest} characters with the held-out evaluation: its datasources "
                                 f"are named after the model ('{request['MLModelId']}{DERIVED_SUFFIX}')"})
    try:
        api.validated("CreateMLModel", request)
    except ServiceError as exc:
        raise field_error(exc, MODEL_MEMBERS) from None
    schema = _training_schema(source, evaluate)
    try:
        check_target(request["MLModelType"], schema)
    except InputError as exc:
        raise FieldErrors({"type": f"InvalidInputException: {exc}: choose {suggested_type(schema) or 'another type'}, "
                                   "which the target's type suggests, or another datasource"}) from None
    try:
        parse_parameters(request["Parameters"], request["MLModelType"])
    except ParameterError as exc:
        raise FieldErrors({"parameters": f"InvalidInputException: {exc}"}) from None
    if request["Recipe"]:
        try:
            parse_recipe(request["Recipe"], schema)
        except RecipeError as exc:
            raise FieldErrors({"recipe": f"InvalidInputException: {exc}"}) from None


def _training_schema(source: Mapping[str, Any], evaluate: bool) -> Schema:
    """The schema of a datasource a model may train on (or its parts, with `evaluate`): usable,
    with statistics (the 70/30 parts compute theirs), and a target; else why not, by field."""
    source_id = source.get("DataSourceId", "")
    refusal = usable_problem(source)
    if refusal is None and not evaluate and not source.get("ComputeStatistics"):
        refusal = (f"Training datasource {source_id} was created without ComputeStatistics; training needs "
                   f"its statistics: keep the {EVALUATION_SHARE} % evaluation checked (its datasources compute "
                   "them), or create the datasource again with statistics")
    try:
        schema = parse_schema(source.get("DataSourceSchema") or "")
    except SchemaError as exc:
        raise FieldErrors({"datasource": f"The datasource's schema cannot be read: {exc}"}) from None
    if refusal is None and schema.target is None:
        refusal = (f"The schema of datasource {source_id} names no target: a model needs one. Create a datasource "
                   "whose schema names the attribute to predict as its target.")
    if refusal is not None:
        raise FieldErrors({"datasource": f"InvalidInputException: {refusal}"})
    return schema


def suggested_type(schema: Schema) -> str:
    """The model type the schema's target suggests ("" without a target)."""
    target_type = schema.type_of(schema.target) if schema.target else None
    return SUGGESTED_TYPE.get(target_type.value, "") if target_type else ""


def usable_problem(source: Mapping[str, Any]) -> str | None:
    """Why a datasource cannot be used by a Create call (FAILED or DELETED, as the API says it), or None."""
    status = source.get("Status")
    if status not in UNUSABLE:
        return None
    return f"Datasource {source.get('DataSourceId', '')} is {status} and cannot be used: choose another datasource"


def _held_out_splits(source_split: str | None, strategy: str, seed: str) -> tuple[str, str]:
    """The DataRearrangements of the training and held-out parts: the first 70 % and the last
    30 % of the records the datasource itself selects (its range, order and seed); of all
    records, in file order or drawn at random (seeded by the model) as the form chooses."""
    try:
        split = parse_rearrangement(source_split)
    except RearrangementError as exc:
        raise FieldErrors({"evaluate": f"The datasource's split cannot be read: {exc}"}) from None
    if split.complement and not split.selects_all:
        raise FieldErrors({"evaluate": "The datasource keeps the records outside a range: hold out 30 % of a "
                                       "datasource of one range, or train on this one as it is."})
    begin, end = (0.0, 100.0) if split.selects_all else (float(split.begin), float(split.end))
    if split.selects_all:
        order = {"strategy": "random", "strategyParams": {"randomSeed": seed}} if strategy == "random" else {}
    else:
        order = ({"strategy": "random", "strategyParams": {"randomSeed": split.seed}}
                 if split.strategy == "random" else {})
    cut = round(begin + (end - begin) * (100 - EVALUATION_SHARE) / 100, 6)
    training, held = (json.dumps({"splitting": {"percentBegin": lo, "percentEnd": hi, **order}})
                      for lo, hi in ((begin, cut), (cut, end)))
    return training, held
