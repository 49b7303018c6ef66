"""Datasources as a client sees them: file layouts, splits, failure thresholds and statistics."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from functools import partial
from typing import Any

import httpx
import numpy as np
import pytest

from openaml.app import Application
from openaml.server.embedded import running_server
from tests.api.conftest import make_client, wait_for

SCHEMA = {
    "version": "1.0", "targetAttributeName": "y", "rowId": "id", "dataFormat": "CSV",
    "dataFileContainsHeader": True,
    "attributes": [{"attributeName": "id", "attributeType": "CATEGORICAL"},
                   {"attributeName": "x", "attributeType": "NUMERIC"},
                   {"attributeName": "flag", "attributeType": "BINARY"},
                   {"attributeName": "note", "attributeType": "TEXT"},
                   {"attributeName": "y", "attributeType": "CATEGORICAL"}],
}


def rows(n: int, start: int = 0) -> list[str]:
    rng = np.random.default_rng(start)
    flags = ["yes", "No", " t ", "0", "maybe"]
    return [f'r{start + i},{rng.normal():.4f},{flags[i % 5]},"a, b {i % 3}",{"abc"[i % 3]}'
            for i in range(n)]


def report(server: Application, ds_id: str) -> dict[str, Any]:
    answer = httpx.get(f"{server.settings.base_url}/reports/DataSource/{ds_id}", timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def create(ml: Any, ds_id: str, location: str, schema: dict[str, Any] = SCHEMA,
           rearrangement: str | None = None, statistics: bool = True) -> dict[str, Any]:
    spec = {"DataLocationS3": location, "DataSchema": json.dumps(schema)}
    if rearrangement:
        spec["DataRearrangement"] = rearrangement
    ml.create_data_source_from_s3(DataSourceId=ds_id, DataSpec=spec, ComputeStatistics=statistics)
    return wait_for(lambda: ml.get_data_source(DataSourceId=ds_id))


def test_prefix_of_plain_and_gzip_files(server: Application, ml: Any, uid: Callable[[str], str],
                                        put_object: Callable[[str, bytes], str]) -> None:
    folder = f"s3://datasets/{uid('prefix')}/"
    header = "id,x,flag,note,y\n"
    first = (header + "\n".join(rows(30)) + "\n").encode()
    second = gzip.compress((header + "\n".join(rows(20, 30)) + "\r\n").encode())
    put_object(folder + "a.csv", first)
    put_object(folder + "b.csv.gz", second)
    put_object(folder + "ignored.schema", b"{}")
    done = create(ml, uid("ds"), folder)
    assert done["Status"] == "COMPLETED", done.get("Message")
    assert done["NumberOfFiles"] == 2
    assert done["DataSizeInBytes"] == len(first) + len(second)
    document = report(server, done["DataSourceId"])
    assert document["recordsRead"] == 50 and document["selectedRecords"] == 50
    stats = document["statistics"]["attributes"]
    xs = np.array([float(r.split(",")[1]) for r in rows(30) + rows(20, 30)])
    assert stats["x"]["count"] == 50
    assert stats["x"]["mean"] == pytest.approx(xs.mean(), abs=1e-9)
    assert stats["x"]["min"] == pytest.approx(xs.min()) and stats["x"]["max"] == pytest.approx(xs.max())
    assert stats["flag"]["invalidCount"] == 10  # "maybe" is not one of the binary words
    assert stats["flag"]["trueCount"] == 20 and stats["flag"]["falseCount"] == 20
    assert document["statistics"]["target"]["classCounts"] == {"a": 17, "b": 17, "c": 16}


@pytest.mark.parametrize("name", ["DATA.CSV.GZ", "data.csv.gzip", "data.csv"])
@pytest.mark.parametrize("target", [True, False])
def test_gzip_content_without_a_gz_name_fails_clearly(name: str, target: bool, ml: Any, uid: Callable[[str], str],
                                                      put_object: Callable[[str, bytes], str]) -> None:
    """Only names ending in .gz are decompressed (data.md); gzip bytes under another name once
    read as garbage records: a datasource without a target (a batch prediction's) COMPLETED
    with one record of binary junk, one with a target failed on "no valid value". Now both
    fail, saying why; so does a split (whose record count reads the file beside the records)."""
    body = gzip.compress(("id,x,flag,note,y\n" + "\n".join(rows(40)) + "\n").encode())
    uri = put_object(f"s3://datasets/{uid('gz')}/{name}", body)
    schema = SCHEMA if target else {k: v for k, v in SCHEMA.items() if k != "targetAttributeName"}
    for rearrangement in (None, json.dumps({"splitting": {"percentBegin": 0, "percentEnd": 70}})):
        failed = create(ml, uid("ds"), uri, schema, rearrangement)
        assert failed["Status"] == "FAILED"
        assert failed["Message"] == (f"Cannot read {uri}: its content is gzip-compressed, not text: only objects whose "
                                     "name ends in .gz (lower case) are decompressed, once; rename it to end in .gz")


@pytest.mark.parametrize("header", [True, False])
def test_lines_ended_by_a_lone_cr_fail_saying_so(header: bool, ml: Any, uid: Callable[[str], str],
                                                 put_object: Callable[[str, bytes], str]) -> None:
    """A CSV saved with classic Mac OS line ends (CR alone) is one line by the rules: it
    failed as "The input files contain no records" (its one line the header), or with one
    record of a wrong field count; the message now names the line ends."""
    body = ("id,x,flag,note,y\r" if header else "") + "\r".join(rows(50)) + "\r"
    uri = put_object(f"s3://datasets/{uid('mac')}.csv", body.encode())
    failed = create(ml, uid("ds"), uri, {**SCHEMA, "dataFileContainsHeader": header})
    assert failed["Status"] == "FAILED"
    assert failed["Message"] == (f"Cannot read {uri}: its lines end with a CR alone (as classic Mac OS wrote them), "
                                 "and only LF or CR LF end a line, so the whole file is one line; save it with LF "
                                 "or CR LF line ends")


@pytest.mark.parametrize("split", [None, json.dumps({"splitting": {"percentBegin": 0, "percentEnd": 70}})])
def test_a_semicolon_separated_file_with_decimal_commas_fails_saying_so(
        split: str | None, ml: Any, uid: Callable[[str], str], put_object: Callable[[str, bytes], str]) -> None:
    """A spreadsheet's "CSV" of a locale with decimal commas (semicolons between fields) failed
    with "found 2 fields" and no word on why; the message now says what separates the lines."""
    lines = ["id;x;flag;note;y", *(f"r{i};{i},{i % 10};yes;a b;{'abc'[i % 3]}" for i in range(30))]
    uri = put_object(f"s3://datasets/{uid('semicolons')}.csv", ("\n".join(lines) + "\n").encode())
    failed = create(ml, uid("ds"), uri, SCHEMA, split)
    assert failed["Status"] == "FAILED"
    assert "found 2 on line 2" in failed["Message"]
    assert ("The line and its header hold 4 semicolons, which would make the schema's 5 fields: the file may be "
            "separated by semicolons (with decimal commas, perhaps), and a datasource reads comma-separated values"
            in failed["Message"])


def test_no_header(ml: Any, uid: Callable[[str], str], put_object: Callable[[str, bytes], str],
                   server: Application) -> None:
    uri = put_object(f"s3://datasets/{uid('plain')}.csv", ("\n".join(rows(12)) + "\n").encode())
    done = create(ml, uid("ds"), uri, {**SCHEMA, "dataFileContainsHeader": False})
    assert done["Status"] == "COMPLETED", done.get("Message")
    assert report(server, done["DataSourceId"])["recordsRead"] == 12


@pytest.mark.parametrize("strategy", ["sequential", "random"])
def test_split_and_complement_partition_the_rows(
    strategy: str, server: Application, ml: Any, uid: Callable[[str], str],
    put_object: Callable[[str, bytes], str],
) -> None:
    uri = put_object(f"s3://datasets/{uid('split')}.csv",
                     ("id,x,flag,note,y\n" + "\n".join(rows(101)) + "\n").encode())
    split = {"percentBegin": 0, "percentEnd": 70, "strategy": strategy,
             "strategyParams": {"randomSeed": "k"}}
    counts = []
    for piece in (split, {**split, "complement": True},
                  {**split, "percentBegin": 70, "percentEnd": 100}):
        done = create(ml, uid("ds"), uri, rearrangement=json.dumps({"splitting": piece}))
        assert done["Status"] == "COMPLETED", done.get("Message")
        counts.append(report(server, done["DataSourceId"])["selectedRecords"])
    assert counts[0] + counts[1] == 101
    if strategy == "sequential":
        assert counts == [71, 30, 30]
    else:
        assert counts[1] == counts[2]  # the complement of [0, 70) is [70, 100)


def test_datasources_of_one_file_created_together_share_one_read(
    server: Application, ml: Any, uid: Callable[[str], str],
    put_object: Callable[[str, bytes], str],
) -> None:
    uri = put_object(f"s3://datasets/{uid('together')}.csv",
                     ("id,x,flag,note,y\n" + "\n".join(rows(500)) + "\n").encode())
    pieces = [json.dumps({"splitting": {"percentBegin": 0, "percentEnd": 70}}),
              json.dumps({"splitting": {"percentBegin": 70, "percentEnd": 100}})]
    alone = [report(server, create(ml, uid("alone"), uri, rearrangement=p)["DataSourceId"])
             for p in pieces]
    together = [uid("together") for _ in pieces]
    for ds_id, piece in zip(together, pieces):  # both created before either starts
        ml.create_data_source_from_s3(
            DataSourceId=ds_id, ComputeStatistics=True,
            DataSpec={"DataLocationS3": uri, "DataSchema": json.dumps(SCHEMA),
                      "DataRearrangement": piece})
    for ds_id, expected in zip(together, alone):
        assert wait_for(lambda i=ds_id: ml.get_data_source(DataSourceId=i))["Status"] == "COMPLETED"
        assert report(server, ds_id) == expected  # counts and statistics as if read alone
    logs = [httpx.get(f"{server.settings.base_url}/logs/DataSource/{i}", timeout=10).text
            for i in together]
    assert all("the data were read once for 2 datasources" in log for log in logs), logs


def test_jobs_sharing_work_do_not_wait_for_ones_that_cannot_start(
    server: Application, ml: Any, uid: Callable[[str], str],
    put_object: Callable[[str, bytes], str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A job that leads a shared read (or scoring pass) waits for the jobs of its data that are
    about to start, not for those that cannot while the engine's workers hold all the jobs
    they may (2 workers: 4 jobs). With a gathering time of a minute, 8 datasources of one file
    and then 8 evaluations of one model and datasource end within seconds (200 datasources of
    one file once took 3 times as long as 200 files, each read waiting its gathering time)."""
    for shared in (server.tasks.shared_reads, server.tasks.shared_scoring):
        monkeypatch.setattr(shared, "gather_seconds", 60.0)
    uri = put_object(f"s3://datasets/{uid('many')}.csv",
                     ("id,x,flag,note,y\n" + "\n".join(rows(200)) + "\n").encode())
    sources = [uid("many") for _ in range(8)]
    for ds_id in sources:
        ml.create_data_source_from_s3(DataSourceId=ds_id, ComputeStatistics=True,
                                      DataSpec={"DataLocationS3": uri, "DataSchema": json.dumps(SCHEMA)})
    for ds_id in sources:
        assert wait_for(lambda i=ds_id: ml.get_data_source(DataSourceId=i), 30)["Status"] == "COMPLETED"
    model_id = uid("many-model")
    ml.create_ml_model(MLModelId=model_id, MLModelType="MULTICLASS", TrainingDataSourceId=sources[0])
    assert wait_for(lambda: ml.get_ml_model(MLModelId=model_id))["Status"] == "COMPLETED"
    evaluations = [uid("many-ev") for _ in range(8)]
    for ev_id in evaluations:
        ml.create_evaluation(EvaluationId=ev_id, MLModelId=model_id, EvaluationDataSourceId=sources[1])
    for ev_id in evaluations:
        assert wait_for(lambda i=ev_id: ml.get_evaluation(EvaluationId=i), 30)["Status"] == "COMPLETED"


def test_failure_thresholds(ml: Any, uid: Callable[[str], str],
                            put_object: Callable[[str, bytes], str]) -> None:
    bad = "\n".join(["only,two"] * 10_001)
    uri = put_object(f"s3://datasets/{uid('rejected')}.csv",
                     ("id,x,flag,note,y\n" + "\n".join(rows(5)) + "\n" + bad + "\n").encode())
    failed = create(ml, uid("ds"), uri)
    assert failed["Status"] == "FAILED"
    assert "10,000" in failed["Message"] or "10000" in failed["Message"]

    at_limit = "\n".join(["only,two"] * 10_000)
    uri = put_object(f"s3://datasets/{uid('limit')}.csv",
                     ("id,x,flag,note,y\n" + "\n".join(rows(5)) + "\n" + at_limit + "\n").encode())
    assert create(ml, uid("ds"), uri)["Status"] == "COMPLETED"

    empty_range = json.dumps({"splitting": {"percentBegin": 40, "percentEnd": 40}})
    uri = put_object(f"s3://datasets/{uid('none')}.csv", ("id,x,flag,note,y\n" + rows(3)[0] + "\n").encode())
    nothing = create(ml, uid("ds"), uri, rearrangement=empty_range)
    assert nothing["Status"] == "FAILED" and nothing["Message"]

    no_target = "\n".join(f"r{i},1.0,yes,text," for i in range(4))
    uri = put_object(f"s3://datasets/{uid('notarget')}.csv", ("id,x,flag,note,y\n" + no_target + "\n").encode())
    assert create(ml, uid("ds"), uri)["Status"] == "FAILED"
    assert create(ml, uid("ds"), uri, statistics=False)["Status"] == "COMPLETED"


def test_mnist_sample_as_a_datasource(server: Application, ml: Any, mnist_dir: Any,
                                      uid: Callable[[str], str], put_object: Callable[[str, bytes], str]) -> None:
    uri = put_object(f"s3://datasets/{uid('mnist')}/train.csv.gz", (mnist_dir / "train.csv.gz").read_bytes())
    schema = json.loads((mnist_dir.parent / "train.schema.json").read_text())
    done = create(ml, uid("ds"), uri, schema,
                  json.dumps({"splitting": {"percentBegin": 0, "percentEnd": 70}}))
    assert done["Status"] == "COMPLETED", done.get("Message")
    document = report(server, done["DataSourceId"])
    assert document["recordsRead"] == 7000 and document["selectedRecords"] == 4900
    assert sum(document["statistics"]["target"]["classCounts"].values()) == 4900


def test_the_server_can_read_every_block_by_the_general_path(tmp_path) -> None:
    """OPENAML_CSV_FAST_PATHS=false (Settings.csv_fast_paths): the job reads its blocks by
    the general path alone, and its records are those the fast paths give."""
    data = ("id,x,flag,note,y\n" + "\n".join(rows(50)) + "\n").encode()
    found = {}
    for fast in (True, False):
        with running_server(data_dir=tmp_path / str(fast), csv_fast_paths=fast) as app:
            app.context.objects.write_bytes("s3://paths/data.csv", data)
            ml = make_client(app.settings.base_url)
            ml.create_data_source_from_s3(DataSourceId="ds", ComputeStatistics=True, DataSpec={
                "DataLocationS3": "s3://paths/data.csv", "DataSchema": json.dumps(SCHEMA)})
            assert wait_for(lambda ml=ml: ml.get_data_source(DataSourceId="ds"))["Status"] == "COMPLETED"
            log = app.context.artifacts.path_for("DataSource", "ds", "job.log").read_text()
            found[fast] = report(app, "ds")
        assert ("blocks read by path: general 1" in log) is not fast, log
    assert {k: v for k, v in found[True].items() if k != "blocksByPath"} == {
        k: v for k, v in found[False].items() if k != "blocksByPath"}


def test_every_input_file_of_a_batch_prediction_has_a_result_of_its_own(
        server: Application, ml: Any, uid: Callable[[str], str], put_object: Callable[[str, bytes], str]) -> None:
    """a.csv, x_a.csv and x/a.csv in one folder: x/a.csv's last segment is taken, so it is
    named by its key relative to the folder, x_a.csv, which another file has: it gets
    x_a-2.csv. It once got the key relative to the bucket, which could be another file's too:
    two files shared a result, one file's records lost, the job COMPLETED."""
    folder = f"s3://datasets/{uid('names')}/"
    header = "id,x,flag,note,y\n"
    counts = {"a.csv": 10, "x_a.csv": 20, "x/a.csv": 30}
    for k, (name, n) in enumerate(counts.items()):
        put_object(folder + name, (header + "\n".join(rows(n, 100 * k)) + "\n").encode())
    source = create(ml, uid("ds"), folder)
    model = uid("ml")
    ml.create_ml_model(MLModelId=model, MLModelType="MULTICLASS", TrainingDataSourceId=source["DataSourceId"])
    batch, output = uid("bp"), f"s3://outputs/{uid('out')}/"
    ml.create_batch_prediction(BatchPredictionId=batch, MLModelId=model, OutputUri=output,
                               BatchPredictionDataSourceId=source["DataSourceId"])
    done = wait_for(lambda: ml.get_batch_prediction(BatchPredictionId=batch))
    assert done["Status"] == "COMPLETED" and done["TotalRecordCount"] == 60
    manifest = json.loads(server.context.objects.read_bytes(f"{output}batch-prediction/{batch}.manifest"))
    results = f"{output}batch-prediction/result/{batch}-"
    assert manifest == {folder + "a.csv": results + "a.csv.gz", folder + "x_a.csv": results + "x_a.csv.gz",
                        folder + "x/a.csv": results + "x_a-2.csv.gz"}
    for name, n in counts.items():
        lines = gzip.decompress(server.context.objects.read_bytes(manifest[folder + name])).decode().splitlines()
        assert len(lines) == n + 1, name


@pytest.mark.parametrize("where", ["folder", "input file"])
def test_a_batch_prediction_whose_result_name_is_too_long_for_the_embedded_store_says_why(
        ml: Any, uid: Callable[[str], str], put_object: Callable[[str, bytes], str], where: str) -> None:
    """A part of the result's key over 255 bytes (a long OutputUri folder, or a long input file
    name behind the batch prediction's id) FAILED the job with "Internal error (OSError)"."""
    long = "f" * 240
    name = f"{long}.csv" if where == "input file" else "data.csv"
    folder = f"s3://datasets/{uid('long')}/"
    put_object(folder + name, ("id,x,flag,note,y\n" + "\n".join(rows(40)) + "\n").encode())
    source = create(ml, uid("ds"), folder + name)["DataSourceId"]
    model = uid("ml")
    ml.create_ml_model(MLModelId=model, MLModelType="MULTICLASS", TrainingDataSourceId=source)
    batch = uid("bp") + "b" * 30
    output = f"s3://outputs/{'o' * 300}/" if where == "folder" else f"s3://outputs/{uid('out')}/"
    ml.create_batch_prediction(BatchPredictionId=batch, MLModelId=model, OutputUri=output,
                               BatchPredictionDataSourceId=source)
    done = wait_for(lambda: ml.get_batch_prediction(BatchPredictionId=batch))
    assert done["Status"] == "FAILED"
    assert "bytes long, and this embedded store keeps each part as a file or folder name, of at most 255 bytes" \
        in done["Message"], done["Message"]


def test_an_evaluation_of_the_training_records_says_so_in_its_log_and_report(
        server: Application, ml: Any, uid: Callable[[str], str], put_object: Callable[[str, bytes], str]) -> None:
    """evaluation-and-prediction.md §1.4: the alerts are lines of the evaluation's log as well as
    in its report (the log held none), and evaluating on the training datasource, or on another
    of the same data and split, is one of them (it was never raised); a held-out split is not."""
    data = ("id,x,flag,note,y\n" + "\n".join(rows(300)) + "\n").encode()
    uri = put_object(f"s3://datasets/{uid('alerts')}.csv", data)
    split = json.dumps({"splitting": {"percentBegin": 0, "percentEnd": 70}})
    training = create(ml, uid("ds"), uri, rearrangement=split)["DataSourceId"]
    again = create(ml, uid("ds"), uri, rearrangement=split)["DataSourceId"]
    held = create(ml, uid("ds"), uri, rearrangement=split.replace("0, \"percentEnd\": 70",
                                                                  "70, \"percentEnd\": 100"))["DataSourceId"]
    model = uid("ml")
    ml.create_ml_model(MLModelId=model, MLModelType="MULTICLASS", TrainingDataSourceId=training)
    logged = {}
    for source in (training, again, held):
        evaluation = uid("ev")
        ml.create_evaluation(EvaluationId=evaluation, MLModelId=model, EvaluationDataSourceId=source)
        assert wait_for(partial(ml.get_evaluation, EvaluationId=evaluation))["Status"] == "COMPLETED"
        log = httpx.get(f"{server.settings.base_url}/logs/Evaluation/{evaluation}", timeout=10).text
        document = httpx.get(f"{server.settings.base_url}/reports/Evaluation/{evaluation}", timeout=10).json()
        assert all(f"alert: {alert}" in log for alert in document["alerts"])
        logged[source] = "holds the model's training records" in log
    assert logged == {training: True, again: True, held: False}
