"""What the creation pages show: the object store's browser, the datasource wizard (a location,
its schema guessed from a sample and editable, a split) and the model wizard (a datasource, the
type its target suggests, the default recipe, parameters). Submitting them is `create`'s.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from openaml.console import create
from openaml.console.api import ServiceApi
from openaml.console.port import ConsolePort
from openaml.errors import ServiceError
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
                                   "types": create.TYPES, "table_limit": create.TABLE_ATTRIBUTES}
        if not location:
            return context
        try:
            sample = self.port.sample(location)
            context["guess"] = create.guessed_attributes(guess_schema(io.BytesIO(sample)))
        except (StorageError, InputError, ValueError) as exc:
            context["errors"]["location"] = f"The data at {location} cannot be read: {exc}"
        return context

    def model_form(self, query: Mapping[str, str]) -> dict[str, Any]:
        """The wizard for a datasource: the model type its target suggests and the default
        recipe of its schema and statistics."""
        source_id = query.get("datasource", "")
        context: dict[str, Any] = {"datasources": create.datasource_choices(self.api), "datasource": None, "errors": {},
                                   "values": {}, "new_id": create.new_id("ml"), "parameters": create.PARAMETERS,
                                   "recipe": "", "suggested": "", "share": create.EVALUATION_SHARE}
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
        target_type = schema.type_of(schema.target) if schema.target else None
        context["suggested"] = create.SUGGESTED_TYPE.get(target_type.value, "") if target_type else ""
        if target_type is None:
            context["errors"]["datasource"] = "The datasource's schema names no target: a model needs one."
        context["recipe"] = default_recipe(schema, self._statistics(source_id))
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


def _parent(prefix: str) -> str:
    """The folder above an s3:// prefix ("" above a bucket: the list of buckets)."""
    path = prefix[len("s3://"):].rstrip("/")
    return "" if "/" not in path else "s3://" + path.rsplit("/", 1)[0] + "/"
