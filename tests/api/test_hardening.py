"""Requests that must neither fail with a 500 nor reach the service: foreign Host names, huge
or endless bodies, out-of-range filters, forged page tokens, deep nesting; work kept off the
event loop; what a crash leaves behind cleaned at start-up."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

import openaml.server.aws_json as aws_json
from openaml.app import Application
from openaml.server.embedded import running_server
from tests.api.conftest import error_code
from tests.api.test_auth import post_chunked
from tests.api.test_wire import HEADERS

TARGET = "AmazonML_20141212."


def post(url: str, operation: str, body: bytes, **headers: str) -> httpx.Response:
    return httpx.post(url + "/", content=body, timeout=60, headers={
        **HEADERS, "X-Amz-Target": TARGET + operation, **headers})


@pytest.mark.parametrize("host", ["rebind.evil.example", "127.example.com", "localhost.evil.example"])
def test_foreign_host_names_are_refused_without_keys(server: Application, host: str) -> None:
    """DNS rebinding: a page of another site resolves its own name to 127.0.0.1."""
    url = server.settings.base_url
    port = url.rsplit(":", 1)[1]
    api = post(url, "DescribeMLModels", b"{}", Host=f"{host}:{port}")
    assert api.status_code == 403
    assert api.json()["__type"] == "AccessDeniedException"
    console = httpx.post(url + "/console/models/x/rename", data={"name": "pwned"},
                         headers={"Host": f"{host}:{port}", "Origin": f"http://{host}:{port}"})
    assert console.status_code == 403
    for path in ("/console/", "/health", "/logs/MLModel/x"):
        assert httpx.get(url + path, headers={"Host": host}).status_code == 403


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "127.1.2.3"])
def test_loopback_host_names_are_served(server: Application, host: str) -> None:
    port = server.settings.base_url.rsplit(":", 1)[1]
    answer = post(server.settings.base_url, "DescribeMLModels", b"{}", Host=f"{host}:{port}")
    assert answer.status_code == 200, answer.text


def test_pages_of_other_origins_are_refused(server: Application) -> None:
    answer = post(server.settings.base_url, "DescribeMLModels", b"{}", Origin="https://evil.example")
    assert answer.status_code == 403
    same = post(server.settings.base_url, "DescribeMLModels", b"{}", Origin=server.settings.base_url)
    assert same.status_code == 200


def test_the_advertised_host_is_served(tmp_path: Path) -> None:
    with running_server(data_dir=tmp_path, advertise_url="http://ml.internal.example:9000") as app:
        answer = post(f"http://127.0.0.1:{app.settings.port}", "DescribeMLModels", b"{}",
                      Host="ml.internal.example:9000")
        assert answer.status_code == 200, answer.text


def test_the_api_answers_at_the_advertised_path(tmp_path: Path) -> None:
    """Behind an --advertise-url with a path the API answers there too (AWS's JavaScript SDK
    posts Predict to EndpointUrl's path), and refuses a foreign host there as on '/'."""
    with running_server(data_dir=tmp_path, advertise_url="http://ml.internal.example:9000/aml") as app:
        url = f"http://127.0.0.1:{app.settings.port}"
        answer = httpx.post(url + "/aml", content=b"{}", timeout=60, headers={
            **HEADERS, "X-Amz-Target": TARGET + "DescribeMLModels", "Host": "ml.internal.example:9000"})
        assert answer.status_code == 200 and answer.json()["Results"] == [], answer.text
        foreign = httpx.post(url + "/aml", content=b"{}", timeout=60, headers={
            **HEADERS, "X-Amz-Target": TARGET + "DescribeMLModels", "Host": "rebind.evil.example"})
        assert foreign.status_code == 403 and foreign.json()["__type"] == "AccessDeniedException"


def test_chunked_bodies_are_cut_at_the_limit(tmp_path: Path) -> None:
    with running_server(data_dir=tmp_path, max_body_bytes=1 << 20) as app:
        signed = {k: v for k, v in HEADERS.items() if k != "Content-Type"}
        status, sent = post_chunked(app.settings.base_url, 256 << 20, signed)
        assert status == 413
        assert sent < 64 << 20
        assert httpx.get(app.settings.base_url + "/health").status_code == 200


@pytest.mark.parametrize("value", ["1e400", "1e300", "-1e19", "nan", "inf", "-inf", "1e12",
                                   "99999-01-01T00:00:00Z", "0001-01-01"])
@pytest.mark.parametrize("comparator", ["GT", "LT", "EQ", "NE", "GE", "LE"])
def test_time_filters_out_of_range_are_invalid_input(ml: Any, value: str, comparator: str) -> None:
    with pytest.raises(ClientError) as err:
        ml.describe_ml_models(FilterVariable="CreatedAt", **{comparator: value})
    assert error_code(err) == "InvalidInputException"


def test_time_filters_at_the_ends_of_the_range_work(ml: Any) -> None:
    for value in ("-62135596800", "253402300799", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"):
        ml.describe_evaluations(FilterVariable="LastUpdatedAt", GE=value)


def _token(state: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state).encode()).decode()


def _query_hash(ml: Any, **query: Any) -> str:
    """The hash part of a real token of this query (two entities, a page of one)."""
    page = ml.describe_data_sources(Limit=1, **query)
    return json.loads(base64.urlsafe_b64decode(page["NextToken"]))[3]


@pytest.mark.parametrize("state", [
    [[1, 2], 1, "x"], [{"a": 1}, 1, "x"], ["a", 10**30, "x"], ["a", 1, ["x"]], ["a", 1, {"x": 1}],
    ["a", 1.5, "x"], ["a", 1, "bad id!"], ["a", 1, "x" * 65], [None, 1, "x"], [10**30, 1, "x"],
    ["\ud800", 1, "x"], ["a\udfff", 1, "x"],
])
def test_forged_page_tokens_are_invalid_input(ml: Any, put_object: Any, state: list[Any]) -> None:
    for name in ("tok-a", "tok-b"):
        try:
            ml.create_data_source_from_s3(DataSourceId=name, DataSpec={
                "DataLocationS3": "s3://tokens/none.csv",
                "DataSchema": '{"attributes":[{"attributeName":"a","attributeType":"NUMERIC"}]}'})
        except ClientError:
            pass  # made by an earlier case
    for variable in ("Name", "CreatedAt"):
        forged = _token([*state, _query_hash(ml, FilterVariable=variable)])
        with pytest.raises(ClientError) as err:
            ml.describe_data_sources(FilterVariable=variable, NextToken=forged, Limit=1)
        assert error_code(err) == "InvalidInputException"


@pytest.mark.parametrize("token", ["%%%", "x" * 70000, base64.urlsafe_b64encode(b"[" * 5000).decode(),
                                   base64.urlsafe_b64encode(b"\xff\xfe").decode()])
def test_garbled_page_tokens_are_invalid_input(ml: Any, token: str) -> None:
    with pytest.raises(ClientError) as err:
        ml.describe_ml_models(NextToken=token)
    assert error_code(err) == "InvalidInputException"


def _deep(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("body", [
    {"ResourceId": "x", "ResourceType": "MLModel", "Tags": [{"Key": _deep(600)}]},
    {"ResourceId": "x", "ResourceType": "MLModel", "Tags": _deep(600)},
    {"ResourceId": "x", "ResourceType": "MLModel", "Tags": [_deep(600)] * 101},
    {"ResourceId": "x", "ResourceType": "MLModel", "Tags": [{"Key": "", "Value": "v"}] * 200000},
])
def test_deep_or_huge_values_are_refused_cleanly(server: Application, body: dict[str, Any]) -> None:
    answer = post(server.settings.base_url, "AddTags", json.dumps(body).encode())
    assert answer.status_code == 400, answer.text
    assert answer.json()["__type"] in ("SerializationException", "InvalidInputException",
                                       "InvalidTagException")
    assert len(answer.json()["message"]) <= 2048


def test_json_nested_deeper_than_the_parser_allows(server: Application) -> None:
    body = b'{"ResourceId": "x", "Tags": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    answer = post(server.settings.base_url, "AddTags", body)
    assert answer.status_code == 400
    assert answer.json()["__type"] == "SerializationException"


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False  # a worker thread
    return True


def test_validation_and_operations_run_off_the_event_loop(
    server: Application, ml: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a small Predict body is parsed on the loop, and it is served there only when its
    endpoint is mounted (no store read, no model load)."""
    parsed_on_loop: list[str] = []
    called_on_loop: list[str] = []
    real_parse, real_call = aws_json.parse_request, aws_json._call

    def parse(operation: Any, body: bytes) -> Any:
        if _on_event_loop():
            parsed_on_loop.append(operation.name)
        return real_parse(operation, body)

    def call(handler: Any, params: Any, caller: str) -> Any:
        if _on_event_loop():
            called_on_loop.append(handler.__name__)
        return real_call(handler, params, caller)

    monkeypatch.setattr(aws_json, "parse_request", parse)
    monkeypatch.setattr(aws_json, "_call", call)
    ml.describe_ml_models()
    with pytest.raises(ClientError):
        ml.add_tags(ResourceId="none", ResourceType="MLModel", Tags=[{"Key": "k"}])
    with pytest.raises(ClientError) as err:
        ml.predict(MLModelId="none", Record={}, PredictEndpoint=server.settings.base_url)
    assert error_code(err) == "ResourceNotFoundException"
    assert parsed_on_loop == ["Predict"]
    assert called_on_loop == []


def test_other_requests_are_served_while_a_huge_one_is_validated(
    server: Application, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 6 MB AddTags of 200,000 tags: while it is validated (made to take 2 s more here),
    the health check is answered."""
    validating, validated = threading.Event(), threading.Event()
    real_parse = aws_json.parse_request

    def slow_parse(operation: Any, body: bytes) -> Any:
        if operation.name != "AddTags":
            return real_parse(operation, body)
        validating.set()
        try:
            time.sleep(2)
            return real_parse(operation, body)
        finally:
            validated.set()

    monkeypatch.setattr(aws_json, "parse_request", slow_parse)
    body = json.dumps({"ResourceId": "x", "ResourceType": "MLModel",
                       "Tags": [{"Key": f"k{i}", "Value": "v" * 10} for i in range(200_000)]})
    results: dict[str, Any] = {}
    sender = threading.Thread(target=lambda: results.update(
        big=post(server.settings.base_url, "AddTags", body.encode())))
    sender.start()
    assert validating.wait(30)
    health = httpx.get(server.settings.base_url + "/health", timeout=30)
    answered_during_validation = not validated.is_set()
    sender.join(60)
    assert health.status_code == 200
    assert answered_during_validation
    assert results["big"].status_code == 400
    assert "less than or equal to 100" in results["big"].json()["message"]


def test_files_left_by_an_interrupted_write_are_removed_at_start(tmp_path: Path) -> None:
    leftovers = [tmp_path / "artifacts" / "MLModel" / "m1" / ".tmp-abc123",
                 tmp_path / "s3" / "bucket" / "out" / ".openaml-tmp-xyz"]
    kept = [tmp_path / "artifacts" / "MLModel" / "m1" / "model.bin", tmp_path / "s3" / "bucket" / "out" / "a.csv"]
    for path in leftovers + kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"partial")
    with running_server(data_dir=tmp_path):
        pass
    assert [p.exists() for p in leftovers] == [False, False]
    assert [p.exists() for p in kept] == [True, True]


def test_schema_and_recipe_files_are_read_only_up_to_their_limit(
    server: Application, ml: Any, put_object: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 64 MiB object named as a schema or recipe is refused after reading one schema's worth."""
    huge = b"{" + b" " * (64 << 20) + b"}"
    schema_uri = put_object("s3://limits/huge.schema", huge)
    recipe_uri = put_object("s3://limits/huge.recipe", huge)
    read: list[int] = []
    real_open = server.context.objects.open_read

    def counting_open(uri: str) -> Any:
        stream = real_open(uri)
        real_read = stream.read
        stream_read = lambda size=-1: read.append(len(data := real_read(size))) or data  # noqa: E731
        return _Reader(stream, stream_read)

    monkeypatch.setattr(server.context.objects, "open_read", counting_open)
    with pytest.raises(ClientError) as err:
        ml.create_data_source_from_s3(DataSourceId="huge-schema", DataSpec={
            "DataLocationS3": "s3://limits/data.csv", "DataSchemaLocationS3": schema_uri})
    assert error_code(err) == "InvalidInputException"
    assert "larger than a data schema" in err.value.response["Error"]["Message"]
    put_object("s3://limits/data.csv", b"a,y\n1,0\n2,1\n")
    ml.create_data_source_from_s3(DataSourceId="limits-ds", ComputeStatistics=True, DataSpec={
        "DataLocationS3": "s3://limits/data.csv", "DataSchema": json.dumps({
            "targetAttributeName": "y", "dataFileContainsHeader": True, "attributes": [
                {"attributeName": "a", "attributeType": "NUMERIC"},
                {"attributeName": "y", "attributeType": "BINARY"}]})})
    with pytest.raises(ClientError) as err:
        ml.create_ml_model(MLModelId="huge-recipe", MLModelType="BINARY",
                           TrainingDataSourceId="limits-ds", RecipeUri=recipe_uri)
    assert error_code(err) == "InvalidInputException"
    assert "larger than a recipe" in err.value.response["Error"]["Message"]
    assert read and max(read) <= 1 << 20


@pytest.mark.parametrize("where", ["DataSchema", "DataSchemaLocationS3"])
def test_a_schema_longer_than_the_apis_limit_is_refused_wherever_it_is(ml: Any, put_object: Any,
                                                                       where: str) -> None:
    """The limit is 131,071 characters inline (the service model's) and in S3 alike: a pretty-printed
    schema file of 140,000 characters, under the bound of bytes read, was taken."""
    attributes = [{"attributeName": f"a{i:04d}" + "x" * 50, "attributeType": "CATEGORICAL"} for i in range(1_000)]
    text = json.dumps({"attributes": attributes}, indent=4)  # as pretty-printed by a tool
    assert 131_071 < len(text) < 4 * 131_071
    given = {where: text if where == "DataSchema" else put_object("s3://limits/long.schema", text.encode())}
    with pytest.raises(ClientError) as err:
        ml.create_data_source_from_s3(DataSourceId=f"long-schema-{where.lower()}", DataSpec={
            "DataLocationS3": "s3://limits/data.csv", **given})
    assert error_code(err) in ("InvalidInputException", "ValidationException"), err.value.response
    assert "131,071 characters" in err.value.response["Error"]["Message"] or where == "DataSchema"


class _Reader:
    """A stream whose read() is replaced, closing the real one."""

    def __init__(self, stream: Any, read: Any) -> None:
        self.stream, self.read = stream, read

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stream.close()


@pytest.mark.parametrize("path", ["/health", "/logs/DataSource/limits-ds", "/reports/DataSource/limits-ds"])
def test_routes_that_touch_the_store_or_disk_run_off_the_event_loop(
    server: Application, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    touched_on_loop: list[str] = []
    for part, name in ((server.context.store, "ping"), (server.context.artifacts, "path_for")):
        real = getattr(part, name)

        def watched(*args: Any, _real: Any = real, _name: str = name) -> Any:
            if _on_event_loop():
                touched_on_loop.append(_name)
            return _real(*args)

        monkeypatch.setattr(part, name, watched)
    assert httpx.get(server.settings.base_url + path, timeout=10).status_code in (200, 404)
    assert touched_on_loop == []


@pytest.mark.parametrize("host", ["127.0.0.1", "rebind.evil.example"])
@pytest.mark.parametrize("path", ["/health", "/logs/DataSource/none", "/console/", "/nowhere"])
def test_every_response_forbids_framing_and_sniffing(server: Application, host: str, path: str) -> None:
    port = server.settings.base_url.rsplit(":", 1)[1]
    answer = httpx.get(server.settings.base_url + path, headers={"Host": f"{host}:{port}"})
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]


def test_a_deleted_endpoint_is_not_brought_back_by_a_late_load(server: Application, ml: Any,
                                                               put_object: Any) -> None:
    """The endpoint's load ends after DeleteRealtimeEndpoint: its READY must not be stored."""
    from tests.api.conftest import wait_for
    from tests.api.test_workflow import make_rows, schema, to_csv

    header, rows = make_rows("BINARY", 100, seed=5)
    put_object("s3://late/data.csv", to_csv(header, rows))
    ml.create_data_source_from_s3(DataSourceId="late-ds", ComputeStatistics=True, DataSpec={
        "DataLocationS3": "s3://late/data.csv", "DataSchema": schema("BINARY")})
    ml.create_ml_model(MLModelId="late-m", MLModelType="BINARY", TrainingDataSourceId="late-ds")
    assert wait_for(lambda: ml.get_ml_model(MLModelId="late-m"))["Status"] == "COMPLETED"
    ml.create_realtime_endpoint(MLModelId="late-m")
    ml.delete_realtime_endpoint(MLModelId="late-m")
    server.context.predictors._report("late-m", "READY")  # what a load finishing now reports
    assert ml.get_ml_model(MLModelId="late-m")["EndpointInfo"]["EndpointStatus"] == "NONE"


def test_a_job_log_that_grows_while_it_is_sent_is_served_whole(server: Application) -> None:
    """A running job appends to its log while clients read it."""
    artifacts = server.context.artifacts
    stop = threading.Event()

    def append() -> None:
        # bounded (at most 3 MB, paced): unpaced, a fast writer outgrew the 30 reads on one
        # machine, each reading a longer log, until the test process held 24 GB
        for _ in range(2000):
            if stop.wait(0.001):
                return
            with artifacts.open_append("DataSource", "growing-log", "job.log") as out:
                out.write(b"a line of a running job's log\n" * 50)

    with artifacts.open_append("DataSource", "growing-log", "job.log") as out:
        out.write(b"started\n" * 20000)
    writer = threading.Thread(target=append)
    writer.start()
    try:
        for _ in range(30):
            answer = httpx.get(server.settings.base_url + "/logs/DataSource/growing-log", timeout=10)
            assert answer.status_code == 200 and answer.text.startswith("started\n")
    finally:
        stop.set()
        writer.join()


def test_a_predict_whose_model_makes_tokens_is_served_off_the_event_loop(
    server: Application, ml: Any, put_object: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scoring a record through a TEXT attribute grows with its tokens (a 7 KB record took 2.5 s
    through 40 cartesians, while every other client waited): only a model without any is
    served on the event loop, even for a small record."""
    from tests.api.conftest import wait_for
    from tests.api.test_workflow import make_rows, schema, to_csv

    header, rows = make_rows("BINARY", 100, seed=6)
    put_object("s3://loop/data.csv", to_csv(header, rows))
    ml.create_data_source_from_s3(DataSourceId="loop-ds", ComputeStatistics=True, DataSpec={
        "DataLocationS3": "s3://loop/data.csv", "DataSchema": schema("BINARY")})
    recipes = {"loop-text": '{"outputs": ["ALL_INPUTS", "cartesian(words, words)"]}',
               "loop-plain": '{"outputs": ["c", "quantile_bin(x1, 5)", "x1"]}'}
    for model_id, recipe in recipes.items():
        ml.create_ml_model(MLModelId=model_id, MLModelType="BINARY", TrainingDataSourceId="loop-ds", Recipe=recipe)
    for model_id in recipes:
        assert wait_for(lambda: ml.get_ml_model(MLModelId=model_id))["Status"] == "COMPLETED"  # noqa: B023
        ml.create_realtime_endpoint(MLModelId=model_id)
        deadline = time.monotonic() + 60
        while ml.get_ml_model(MLModelId=model_id)["EndpointInfo"]["EndpointStatus"] != "READY":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    on_loop: list[bool] = []
    real_call = aws_json._call
    monkeypatch.setattr(aws_json, "_call", lambda *args: on_loop.append(_on_event_loop()) or real_call(*args))
    record = {"x1": "0.5", "c": "red", "words": "good great plain"}
    for model_id in recipes:
        ml.predict(MLModelId=model_id, Record=record, PredictEndpoint=server.settings.base_url)
    assert on_loop == [False, True]


def test_a_datasource_whose_copy_would_fill_the_disk_fails_saying_so(
    server: Application, ml: Any, put_object: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from openaml.storage import objects
    from tests.api.conftest import wait_for
    from tests.api.test_workflow import make_rows, schema, to_csv

    header, rows = make_rows("BINARY", 2000, seed=7)
    put_object("s3://disk/data.csv", to_csv(header, rows))
    monkeypatch.setattr(objects, "SPACE_CHECK_BYTES", 1000)
    monkeypatch.setattr(objects, "DISK_RESERVE", shutil.disk_usage(server.settings.data_dir).free + (1 << 30))
    ml.create_data_source_from_s3(DataSourceId="disk-ds", ComputeStatistics=True, DataSpec={
        "DataLocationS3": "s3://disk/data.csv", "DataSchema": schema("BINARY")})
    found = wait_for(lambda: ml.get_data_source(DataSourceId="disk-ds"))
    assert found["Status"] == "FAILED" and "GiB free, less than the" in found["Message"], found.get("Message")


def test_a_closed_server_leaves_nothing_of_its_warm_up_running(tmp_path: Path) -> None:
    """The start-up warm-up ran on after its server closed (seconds of compiled kernels): in a
    process that went on (the tests), a later tracemalloc start crashed it a third of the time.
    A closing server now stops it at its next step and waits for the step under way."""
    with running_server(data_dir=tmp_path):
        pass  # closed at once, while the warm-up runs
    assert not [t for t in threading.enumerate() if t.name == "openaml-warm-up"]
