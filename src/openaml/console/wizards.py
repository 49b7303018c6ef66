"""What the creation pages show: the object store's browser, the datasource wizard (a location,
its schema guessed from a sample and editable, a split) and the model wizard (a datasource, the
type its target suggests, the default recipe, parameters). Submitting them is `create`'s.
"""

from __future__ import annotations

import codecs
import io
import zlib
from collections.abc import Mapping
from typing import Any

from openaml.console import create
from openaml.console.api import ServiceApi
from openaml.console.port import ConsolePort
from openaml.errors import ServiceError
from openaml.ml.data.separators import sample_advice
from openaml.ml.data.statistics_document import DatasetStatistics
from openaml.ml.errors import InputError
from openaml.ml.recipes import RecipeError, default_recipe, parse_recipe
from openaml.ml.schema import SchemaError, parse_schema
from openaml.ml.schema.guess import guess_schema
from openaml.storage.uris import StorageError, parse_s3_uri

BROWSE_ENTRIES = 1000  # folders and files a browser page lists (together)
UPLOAD_FOLDER = "s3://openaml-uploads/"


class Wizards:
    def __init__(self, api: ServiceApi, port: ConsolePort) -> None:
        self.api, self.port = api, port

    def browse(self, query: Mapping[str, str]) -> dict[str, Any]:
        """The buckets, or the folders and files directly under `uri` (an s3:// prefix)."""
        uri = query.get("uri", "")
        context: dict[str, Any] = {"uri": uri, "buckets": [], "folders": [], "files": [], "error": None,
                                   "more": False}
        try:
            if not uri:
                context["buckets"] = self.port.buckets()
                return context
            location = parse_s3_uri(uri if uri.endswith("/") or "/" in uri[5:] else uri + "/")
            prefix = f"s3://{location.bucket}/{location.key}"
            if location.key and not location.key.endswith("/"):
                prefix += "/"
            context["uri"] = prefix
            level = self.port.level(prefix, BROWSE_ENTRIES)
            context.update(folders=level.folders, files=level.objects, more=level.truncated, parent=_parent(prefix))
        except (StorageError, ServiceError) as exc:
            context["error"] = str(exc)
        return context

    def datasource_form(self, query: Mapping[str, str]) -> dict[str, Any]:
        """The wizard for `location`: its schema guessed from a sample (or why not)."""
        location = query.get("location", "").strip()
        context: dict[str, Any] = {"location": location, "guess": None, "errors": {}, "values": {},
                                   "new_id": create.new_id("ds"), "upload_folder": UPLOAD_FOLDER,
                                   "types": create.TYPES, "table_limit": create.TABLE_ATTRIBUTES, "hint": None}
        if not location:
            return context
        try:
            sample = self.port.sample(location)
        except (StorageError, InputError, ValueError) as exc:
            context["errors"]["location"] = f"The data at {location} cannot be read: {exc}"
            return context
        try:
            schema = guess_schema(io.BytesIO(sample))
        except (InputError, ValueError) as exc:
            context["errors"]["location"] = f"The data at {location} cannot be read: {exc}"
            context["hint"] = sample_hint(sample)
            return context
        try:
            parse_schema(schema)
        except SchemaError as exc:  # more columns than a schema takes
            context["errors"]["location"] = (f"The data at {location} cannot be a datasource as they are: {exc}. "
                                             "Use a file with fewer columns.")
            return context
        context["guess"] = create.guessed_attributes(schema)
        context["hint"] = sample_hint(sample)
        return context

    def model_form(self, query: Mapping[str, str]) -> dict[str, Any]:
        """The wizard for a datasource (listed, or its ID typed): the model type its target
        suggests and the default recipe of its schema and statistics; a datasource no model can
        train on (FAILED, DELETED, no target) is said so, without the form."""
        context: dict[str, Any] = {"datasources": create.datasource_choices(self.api), "datasource": None, "errors": {},
                                   "values": {}, "new_id": create.new_id("ml"), "parameters": create.PARAMETERS,
                                   "recipe": "", "suggested": "", "share": create.EVALUATION_SHARE,
                                   "choices": create.CHOICES, "usable": False,
                                   "typed_id": query.get("datasource_id", "").strip()}
        try:
            source_id = create.picked_datasource(query)
        except create.FieldErrors as exc:
            context["errors"] = exc.errors
            return context
        if not source_id:
            return context
        try:
            source = self.api("GetDataSource", {"DataSourceId": source_id, "Verbose": True})
        except ServiceError as exc:
            context["errors"]["datasource"] = f"{exc.error_type}: {exc}"
            return context
        context["datasource"] = source
        try:
            schema = parse_schema(source.get("DataSourceSchema") or "")
        except SchemaError as exc:
            context["errors"]["datasource"] = f"The datasource's schema cannot be read: {exc}"
            return context
        context["suggested"] = create.suggested_type(schema)
        problem = create.usable_problem(source) or (
            None if schema.target else "The datasource's schema names no target: a model needs one. Choose another "
                                       "datasource, or create one whose schema names the attribute to predict.")
        if problem is not None:
            context["errors"]["datasource"] = problem
            return context
        context.update(usable=True, recipe=default_recipe(schema, self._statistics(source_id)))
        return context

    def check_recipe(self, source_id: str, recipe: str) -> dict[str, Any]:
        """Whether the recipe parses against the datasource's schema, as CreateMLModel checks it."""
        try:
            source = self.api("GetDataSource", {"DataSourceId": source_id, "Verbose": True})
            parse_recipe(recipe, parse_schema(source.get("DataSourceSchema") or ""))
        except (ServiceError, RecipeError, SchemaError) as exc:
            return {"ok": False, "error": str(exc)}
        return {"ok": True}

    def _statistics(self, source_id: str) -> DatasetStatistics | None:
        try:
            stored = self.port.report("DataSource", source_id).get("statistics")
        except Exception:  # noqa: BLE001 - not ingested yet: the recipe leaves NUMERIC inputs raw
            return None
        return DatasetStatistics.from_json(stored) if stored else None


SAMPLE_TEXT = 1 << 20  # bytes of the sample's start whose lines sample_hint reads


def sample_hint(sample: bytes) -> str | None:
    """What in the sample suggests the guess misread it (other bytes than UTF-8 text, another
    separator than the comma), as advice; None when nothing does."""
    text = _decompressed(sample)
    head = text[:4096]
    if sum(byte < 32 and byte not in b"\t\n\r" for byte in head) > len(head) / 20:
        return ("This does not look like text (it holds many control bytes): a datasource reads CSV files, "
                "comma-separated UTF-8 text. Choose a CSV file.")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(text, final=False)  # a character cut at the end is fine
    except UnicodeDecodeError:
        return ("This is not UTF-8 text, so some names and values read wrong (as \ufffd): save the file as UTF-8 "
                "(for example from a spreadsheet's \"CSV UTF-8\") and upload it again.")
    advice = sample_advice(text[:SAMPLE_TEXT].decode("utf-8", "replace"))
    return None if advice is None else advice + ", and upload it again."


def _decompressed(sample: bytes) -> bytes:
    """The sample, its gzip undone as far as it goes."""
    if sample[:2] != b"\x1f\x8b":
        return sample
    try:
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(sample, 1 << 20)
    except zlib.error:
        return sample


def _parent(prefix: str) -> str:
    """The folder above an s3:// prefix ("" above a bucket: the list of buckets)."""
    path = prefix[len("s3://"):].rstrip("/")
    return "" if "/" not in path else "s3://" + path.rsplit("/", 1)[0] + "/"
