"""Jobs on a Dask cluster: a scheduler and two memory-limited workers started as a user would
(`python -m dask scheduler`, `python -m dask worker`), and `openaml serve --executor dask`.

The MNIST sample workflow (datasources with statistics, a model, an evaluation and a batch
prediction) gives the same counts, statistics, metric and batch output as in local mode, its
training file read in 4 partitions and the model trained on both workers at once: on one front
end sharing a data folder with the workers, while a worker that trains it is killed
mid-training (Dask runs its task again on the other); and on two front ends with nothing on
a shared disk (data and artifacts in S3, a moto server; metadata in PostgreSQL).
"""

from __future__ import annotations

import gzip
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from openaml import cluster as cluster_module
from openaml.cluster import (
    Cluster,
    probe_folder,
    reads_token,
    uses_data_folder,
    workers_large_enough,
    workers_seeing,
)
from openaml.jobs.engine import RERUN_NOTE
from openaml.ml.errors import InputError
from openaml.settings import ConfigurationError, Settings
from openaml.store import EntityKind, EntityRecord, Status, open_store
from tests.api.conftest import make_client
from tests.conftest import MNIST_DIR, REPO, fresh_postgres_database
from tests.faults.conftest import AWS_ENV
from tests.faults.server import ServerProcess, free_port
from tests.faults.test_front_ends import POSTGRES_URL, lease_holder_pid

distributed = pytest.importorskip("distributed")

BUCKET = "mnist"
WORKERS = 2
START_SECONDS = 60
SETTLE_SECONDS = 240
PARTITION_BYTES = 4 << 20  # the 12 MB training file: 4 partitions on Dask


@contextmanager
def dask_cluster(folder: Path, workers: int = WORKERS) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A Dask scheduler and `workers` worker processes (one thread, 1 GiB each) on 127.0.0.1,
    started as a user would, the workers with the credentials of the tests' S3 server (moto);
    (its address, the scheduler's process)."""
    scheduler_file = folder / "scheduler.json"
    logs = [open(folder / f"{name}.log", "wb") for name in ("scheduler", *(f"worker-{n}" for n in range(workers)))]
    processes = [subprocess.Popen(
        [sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
         "--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(scheduler_file)],
        stdout=logs[0], stderr=subprocess.STDOUT, cwd=folder)]
    try:
        deadline = time.monotonic() + START_SECONDS
        while not scheduler_file.exists():
            assert time.monotonic() < deadline, (folder / "scheduler.log").read_text()
            time.sleep(0.1)
        time.sleep(0.2)  # written whole
        address = json.loads(scheduler_file.read_text())["address"]
        for number in range(workers):
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "dask", "worker", address, "--nthreads", "1", "--memory-limit", "1GiB",
                 "--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0", "--name", f"worker-{number}"],
                stdout=logs[number + 1], stderr=subprocess.STDOUT, cwd=folder, env={**os.environ, **AWS_ENV}))
        with distributed.Client(address, timeout=START_SECONDS) as client:
            client.wait_for_workers(workers, timeout=START_SECONDS)
        yield address, processes[0]
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in logs:
            log.close()


@pytest.fixture(scope="module")
def scheduler_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with dask_cluster(tmp_path_factory.mktemp("dask")) as (address, _):
        yield address


Output = Callable[[], dict[str, bytes]]  # the files under s3://BUCKET/out/ by name


def workflow(servers: Sequence[ServerProcess], output: Output,
             kill_training_worker: str | None = None) -> dict[str, Any]:
    """Run the MNIST sample workflow, its entities created through each of `servers` in turn;
    optionally kill (SIGKILL) the Dask worker that runs the training, at the scheduler
    `kill_training_worker`. What it produced, read through the API and `output`."""
    clients = [make_client(server.url) for server in servers]
    creator = iter(clients * 6)
    schema = (REPO / "examples" / "mnist" / "train.schema.json").read_text()
    batch_schema = (REPO / "examples" / "mnist" / "batch.schema.json").read_text()
    recipe = (REPO / "examples" / "mnist" / "recipe.json").read_text()
    for name, begin, end in (("train", 0, 70), ("eval", 70, 100)):
        next(creator).create_data_source_from_s3(
            DataSourceId=name, DataSpec={
                "DataLocationS3": f"s3://{BUCKET}/train.csv", "DataSchema": schema,
                "DataRearrangement": f'{{"splitting":{{"percentBegin":{begin},"percentEnd":{end}}}}}'},
            ComputeStatistics=True)
    next(creator).create_data_source_from_s3(DataSourceId="unlabeled", DataSpec={
        "DataLocationS3": f"s3://{BUCKET}/test.csv", "DataSchema": batch_schema}, ComputeStatistics=False)
    next(creator).create_ml_model(MLModelId="model", MLModelType="MULTICLASS", TrainingDataSourceId="train",
                                  Recipe=recipe, Parameters={"sgd.maxPasses": "50"})  # lasts while a worker is killed
    next(creator).create_evaluation(EvaluationId="evaluation", MLModelId="model", EvaluationDataSourceId="eval")
    next(creator).create_batch_prediction(BatchPredictionId="batch", MLModelId="model",
                                          BatchPredictionDataSourceId="unlabeled", OutputUri=f"s3://{BUCKET}/out/")
    ml = clients[-1]
    if kill_training_worker:
        assert _wait(ml.get_ml_model, "MLModelId", "model", {"INPROGRESS"}) == "INPROGRESS"
        _kill_worker_running(kill_training_worker, "openaml-MLModel-model-pass-")  # mid-pass
    assert _wait(ml.get_evaluation, "EvaluationId", "evaluation", {"COMPLETED", "FAILED"}) == "COMPLETED"
    assert _wait(ml.get_batch_prediction, "BatchPredictionId", "batch", {"COMPLETED", "FAILED"}) == "COMPLETED"
    files = output()
    server = servers[0]
    return {
        "datasources": {name: {key: ml.get_data_source(DataSourceId=name)[key]
                               for key in ("DataSizeInBytes", "NumberOfFiles", "Status")}
                        for name in ("train", "eval", "unlabeled")},
        "statistics": {name: _report(server, name)["statistics"] for name in ("train", "eval")},
        "f1": float(ml.get_evaluation(EvaluationId="evaluation")["PerformanceMetrics"]["Properties"][
            "MulticlassAvgFScore"]),
        "batch": [gzip.decompress(files[name]) for name in sorted(files) if name.endswith(".gz")],
        "batch_files": sorted(files),
        "manifest": json.loads(files["batch-prediction/batch.manifest"]),
        "model_log": _log(server, "MLModel", "model"),
        "training_data_log": _log(server, "DataSource", "train"),
        "evaluation_log": _log(server, "Evaluation", "evaluation"),
        "batch_log": _log(server, "BatchPrediction", "batch"),
        "left": sorted(name for name in files if ".openaml-" in name),
    }


def folder_output(server: ServerProcess) -> Output:
    """The batch output in the embedded object store of `server`'s data folder."""
    out = server.data_dir / "s3" / BUCKET / "out"
    return lambda: {str(path.relative_to(out)): path.read_bytes() for path in out.rglob("*") if path.is_file()}


def assert_same_statistics(found: Any, expected: Any, key: str = "") -> None:
    """Equal, but for sums taken in another grouping (partitions): to 1e-12 relative."""
    if isinstance(expected, dict):
        assert found.keys() == expected.keys(), key
        for name, value in expected.items():
            assert_same_statistics(found[name], value, name)
    elif isinstance(expected, float):
        assert math.isclose(found, expected, rel_tol=1e-12, abs_tol=1e-12), key
    else:
        assert found == expected, key


def _report(server: ServerProcess, datasource_id: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{server.url}/reports/DataSource/{datasource_id}", timeout=30) as answer:
        return dict(json.load(answer))


def _log(server: ServerProcess, kind: str, entity_id: str) -> str:
    with urllib.request.urlopen(f"{server.url}/logs/{kind}/{entity_id}", timeout=30) as answer:
        return str(answer.read().decode())


def _log_so_far(server: ServerProcess, kind: str, entity_id: str) -> str:
    """The job's log, "" before its first line."""
    try:
        return _log(server, kind, entity_id)
    except urllib.error.HTTPError as error:
        if error.code != 404:
            raise
        return ""


def _wait(get: Any, key: str, entity_id: str, wanted: set[str]) -> str:
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        status = str(get(**{key: entity_id})["Status"])
        if status in wanted or status == "FAILED" or time.monotonic() > deadline:
            return status
        time.sleep(0.02)


def _kill_worker_running(address: str, key_prefix: str) -> None:
    """SIGKILL the worker process that runs the task whose key starts with `key_prefix`."""
    with distributed.Client(address, timeout=30) as client:
        deadline = time.monotonic() + 60
        while True:
            running = [worker for worker, keys in client.processing().items()
                       if any(str(key).startswith(key_prefix) for key in keys)]
            if running:
                break
            assert time.monotonic() < deadline, "the training never reached a worker"
            time.sleep(0.02)
        time.sleep(0.5)  # some way into the training
        pid = client.run(os.getpid, workers=running)[running[0]]
    os.kill(pid, signal.SIGKILL)


def data_dir(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name / "data"
    (folder / "s3" / BUCKET).mkdir(parents=True)
    # stored uncompressed, so that it can be read in partitions
    (folder / "s3" / BUCKET / "train.csv").write_bytes(gzip.decompress((MNIST_DIR / "train.csv.gz").read_bytes()))
    # the 3,000 unlabeled rows (5.4 MB), uncompressed: two partitions on Dask
    (folder / "s3" / BUCKET / "test.csv").write_bytes(gzip.decompress((MNIST_DIR / "test.csv.gz").read_bytes()))
    (tmp_path / name / "logs").mkdir()
    return folder


@pytest.fixture(scope="module")
def local_mode(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What the workflow produces in local mode (one front end, no cluster): the reference."""
    folder = tmp_path_factory.mktemp("local")
    local = ServerProcess(data_dir(folder, "local"), folder / "local" / "logs")
    try:
        local.start()
        expected = workflow([local], folder_output(local))
        health = local.health() or {}
        assert local.logged_errors() == []
    finally:
        local.kill()
    assert health["jobs"]["executor"] == "local" and "cluster" not in health["jobs"]
    return expected


def test_the_workflow_on_dask_matches_local_mode_while_a_worker_dies(tmp_path: Path, scheduler_address: str,
                                                                     local_mode: dict[str, Any]) -> None:
    on_dask = ServerProcess(data_dir(tmp_path, "dask"), tmp_path / "dask" / "logs",
                            ("--executor", "dask", "--dask-scheduler", scheduler_address),
                            {"OPENAML_PARTITION_BYTES": str(PARTITION_BYTES)})
    try:
        on_dask.start()
        found = workflow([on_dask], folder_output(on_dask), kill_training_worker=scheduler_address)
        assert on_dask.logged_errors() == []
        assert on_dask.health()["jobs"]["cluster"] == {"connected": True, "threads_at_start": WORKERS}
    finally:
        on_dask.kill()
    assert_matches_local_mode(found, local_mode)


def test_two_dask_front_ends_on_s3_and_postgresql_match_local_mode(
        tmp_path: Path, scheduler_address: str, local_mode: dict[str, Any], moto_url: str, s3: Any) -> None:
    """The deployment of a team: no shared disk. Users' data, batch output and artifacts in
    S3 (moto), metadata in PostgreSQL, two front ends (each with a data folder of its own)
    handing jobs to the workers, which reach S3 with credentials of their own."""
    if not POSTGRES_URL:
        pytest.skip("OPENAML_TEST_POSTGRES_URL is not set (scripts/test.sh starts a PostgreSQL server and sets it)")
    for bucket in (BUCKET, "openaml"):
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=BUCKET, Key="train.csv", Body=gzip.decompress((MNIST_DIR / "train.csv.gz").read_bytes()))
    s3.put_object(Bucket=BUCKET, Key="test.csv", Body=gzip.decompress((MNIST_DIR / "test.csv.gz").read_bytes()))

    def output() -> dict[str, bytes]:
        listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="out/").get("Contents", [])
        return {item["Key"][len("out/"):]: s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
                for item in listed}

    with fresh_postgres_database(POSTGRES_URL, "openaml_dask") as database_url:
        env = {**AWS_ENV, "OPENAML_DATABASE_URL": database_url, "OPENAML_S3_ENDPOINT_URL": moto_url,
               "OPENAML_ARTIFACTS_URI": "s3://openaml/artifacts/", "OPENAML_PARTITION_BYTES": str(PARTITION_BYTES)}
        servers = [ServerProcess(tmp_path / name / "data", tmp_path / name,
                                 ("--executor", "dask", "--dask-scheduler", scheduler_address), env)
                   for name in ("a", "b")]
        try:
            for server in servers:
                server.log_dir.mkdir()
                server.start()
            found = workflow(servers, output)
            for server in servers:
                assert server.logged_errors() == []
                assert server.health()["jobs"]["cluster"] == {"connected": True, "threads_at_start": WORKERS}
            pids = {server.process.pid for server in servers if server.process is not None}
        finally:
            for server in servers:
                server.kill()
    assert_matches_local_mode(found, local_mode, read_once=False)
    logs = "".join(found[name] for name in ("training_data_log", "model_log", "evaluation_log", "batch_log"))
    runs = [int(pid) for pid in re.findall(r": started on front end \S+-(\d+)-[0-9a-f]{8}$", logs, re.MULTILINE)]
    # each job ran once, on one of the two (which one is the schedulers' race: both ran some in
    # every run seen, but a test of it would fail now and then)
    assert len(runs) == 4 and set(runs) <= pids, (runs, pids)
    assert all(not (path / "data" / "s3").exists() and not (path / "data" / "artifacts").exists()
               for path in (tmp_path / "a", tmp_path / "b"))  # nothing of the jobs on the front ends' disks


def assert_matches_local_mode(found: dict[str, Any], expected: dict[str, Any], read_once: bool = True) -> None:
    """Counts, splits and statistics as in local mode; the data read in partitions on the
    workers (the two splits of the file in one read, when `read_once`: two front ends may
    each run one) and the model trained on both workers; F1 within 0.005; the batch output's
    layout."""
    assert found["datasources"] == expected["datasources"]
    assert_same_statistics(found["statistics"], expected["statistics"])
    # data-parallel: a pass per worker at a time; the pass of the worker killed ran again elsewhere
    assert "training on 2 Dask workers at once, over 4 partitions" in found["model_log"]
    for mode in (expected, found) if read_once else ():  # both splits from one read, on Dask too
        assert "the data were read once for 2 datasources" in mode["training_data_log"]
    assert "in 4 partitions" in found["training_data_log"]
    assert "reading the 4 partitions of the data on the Dask workers" in found["evaluation_log"]
    assert "reading the 2 partitions of the data on the Dask workers" in found["batch_log"]
    assert abs(found["f1"] - expected["f1"]) <= 0.005, (found["f1"], expected["f1"])
    assert_same_layout(found["batch"], expected["batch"])  # a model trained otherwise, the same layout
    assert found["batch_files"] == expected["batch_files"] and found["manifest"] == expected["manifest"]
    assert found["left"] == []  # the partitions' pieces of the batch results are removed


def assert_same_layout(found: list[bytes], expected: list[bytes]) -> None:
    """Batch outputs of the same files, header and rows, whose predicted classes (highest
    score) mostly agree: the models were trained apart."""
    assert found and len(found) == len(expected)
    for ours, theirs in zip(found, expected, strict=True):
        ours_lines, their_lines = ours.decode().splitlines(), theirs.decode().splitlines()
        assert ours_lines[0] == their_lines[0] and len(ours_lines) == len(their_lines)
        agree = [_top(a) == _top(b) for a, b in zip(ours_lines[1:], their_lines[1:], strict=True)]
        assert sum(agree) >= 0.95 * len(agree), sum(agree) / len(agree)


def _top(line: str) -> int:
    scores = [float(value) for value in line.split(",")]
    return scores.index(max(scores))


def test_a_dask_front_end_needs_a_scheduler(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "openaml", "serve", "--data-dir", str(tmp_path / "data"), "--executor", "dask",
               "--port", str(free_port())]
    ended = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert ended.returncode != 0
    assert "--executor dask needs --dask-scheduler" in ended.stderr


def test_workers_must_see_the_data_folder(tmp_path: Path) -> None:
    """The start-up probe: a file written into the folder, read by each worker (here: a
    function standing for Client.run, one worker seeing it and one not)."""
    def run(function: Any, path: str, token: str) -> dict[str, Any]:
        return {"tcp://10.0.0.1:1": function(path, token), "tcp://10.0.0.2:1": function("/nonexistent", token)}

    answers = probe_folder(run, tmp_path)
    assert answers == {"tcp://10.0.0.1:1": True, "tcp://10.0.0.2:1": False}
    assert list(tmp_path.iterdir()) == []  # the probe is gone
    with pytest.raises(ConfigurationError, match=r"tcp://10\.0\.0\.2:1 do not see the data folder"):
        workers_seeing(answers, tmp_path)
    workers_seeing({"tcp://10.0.0.1:1": True}, tmp_path)
    assert not reads_token(str(tmp_path / "missing"), "x")


def test_workers_with_too_little_memory_are_refused_at_the_start() -> None:
    """A worker of 400 MB left a training INPROGRESS for good, paused by its nanny."""
    with pytest.raises(ConfigurationError, match=r"tcp://10\.0\.0\.2:1 have a memory limit under 448 MiB"):
        workers_large_enough({"tcp://10.0.0.1:1": 1 << 30, "tcp://10.0.0.2:1": 400_000_000})
    workers_large_enough({"tcp://10.0.0.1:1": 512 << 20, "tcp://10.0.0.3:1": 0})  # 0: no limit


def test_the_data_folder_is_probed_unless_jobs_do_without_it() -> None:
    everything_elsewhere = Settings(s3_endpoint_url="http://s3.internal", artifacts_uri="s3://openaml/artifacts/",
                                    database_url="postgresql+psycopg://openaml@db.internal/openaml")
    assert not uses_data_folder(everything_elsewhere)
    assert uses_data_folder(replace(everything_elsewhere, s3_endpoint_url=None))  # the embedded object store
    assert uses_data_folder(replace(everything_elsewhere, artifacts_uri=None))    # artifacts on disk
    assert uses_data_folder(replace(everything_elsewhere, database_url="sqlite:////shared/openaml.db"))


def test_a_job_whose_scheduler_is_lost_fails_and_says_so(tmp_path: Path) -> None:
    folder = tmp_path / "cluster"
    folder.mkdir()
    with dask_cluster(folder, workers=1) as (address, scheduler):
        server = ServerProcess(data_dir(tmp_path, "dask"), tmp_path / "dask" / "logs",
                               ("--executor", "dask", "--dask-scheduler", address))
        try:
            server.start()
            ml = make_client(server.url)
            schema = (REPO / "examples" / "mnist" / "train.schema.json").read_text()
            ml.create_data_source_from_s3(DataSourceId="train", DataSpec={
                "DataLocationS3": f"s3://{BUCKET}/train.csv", "DataSchema": schema}, ComputeStatistics=True)
            ml.create_ml_model(MLModelId="model", MLModelType="MULTICLASS", TrainingDataSourceId="train",
                               Parameters={"sgd.maxPasses": "200"})
            assert _wait(ml.get_ml_model, "MLModelId", "model", {"INPROGRESS"}) == "INPROGRESS"
            assert (server.health() or {})["status"] == "ok"
            scheduler.kill()
            # /health says so at once, and a job created meanwhile says in its log why it waits
            deadline = time.monotonic() + 30
            while (health := server.health() or {}).get("status") != "degraded" and time.monotonic() < deadline:
                time.sleep(0.1)
            assert health["status"] == "degraded" and health["jobs"]["cluster"]["connected"] is False
            ml.create_data_source_from_s3(DataSourceId="later", DataSpec={
                "DataLocationS3": f"s3://{BUCKET}/train.csv", "DataSchema": schema})
            while "does not answer" not in (log := _log_so_far(server, "DataSource", "later")) \
                    and time.monotonic() < deadline:
                time.sleep(0.1)
            assert f"The Dask scheduler at {address} does not answer" in log
            assert _wait(ml.get_ml_model, "MLModelId", "model", {"COMPLETED", "FAILED"}) == "FAILED"
            message = ml.get_ml_model(MLModelId="model")["Message"]
            assert f"The Dask scheduler at {address} lost this job's task" in message
            assert server.health() is not None  # the front end serves on
        finally:
            server.kill()


def test_a_task_raising_a_timeout_ends_its_job_with_that_error() -> None:
    """The wait for a task tells "still running" from a task that raised TimeoutError (an S3
    read that timed out, say): the job ends with the task's own error, at once; a task still
    running ends the wait when its job is cancelled."""
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as client:
        cluster = Cluster(client, Settings(dask_scheduler="inproc"), 2)
        job = _Job()
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="the S3 read timed out"):
            cluster.wait(client.submit(_times_out, pure=False), job)
        assert time.monotonic() - started < 5 and job.asked <= 2
        assert cluster.wait(client.submit(_seven, pure=False), job) == 7
        job.cancel = True
        with pytest.raises(InputError, match="stopped before its end"):
            cluster.wait(client.submit(time.sleep, 2, pure=False), job)


def test_the_steps_of_a_job_hold_no_result_once_done_and_cancel_the_rest_when_one_fails() -> None:
    """A done task's result stays in the cluster only while a future holds it: the steps of a
    long job (a training's passes) must not keep them all; a failed step cancels its pending
    siblings rather than leave them to run."""
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as client:
        cluster = Cluster(client, Settings(dask_scheduler="inproc"), 2)
        job = _Job()
        with cluster._cancelling() as submit:
            first = submit(job, "one", _seven)
            key = first.key
            assert cluster.wait(first, job) == 7
            del first
            assert cluster.wait(submit(job, "two", _seven), job) == 7
            deadline = time.monotonic() + 10
            while key in client.who_has():
                assert time.monotonic() < deadline, "the first step's result is still held"
                time.sleep(0.05)
        with pytest.raises(TimeoutError), cluster._cancelling() as submit:
            blocked = submit(job, "slow", time.sleep, 5)
            cluster.wait(submit(job, "fails", _times_out), job)
        deadline = time.monotonic() + 10
        while blocked.status != "cancelled":
            assert time.monotonic() < deadline, blocked.status
            time.sleep(0.05)


def test_a_connection_dask_gave_up_is_made_again_once_the_scheduler_answers() -> None:
    """After 30 s without its scheduler a Client closes for good: every job created later,
    with the scheduler and workers back, failed with "Internal error (ClosedClientError)"
    until the server was restarted. A job meanwhile fails saying the connection was lost,
    and a new connection is made as soon as the scheduler answers."""
    with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as local:
        client = distributed.Client(local.scheduler_address, set_as_default=False)
        cluster = Cluster(client, Settings(dask_scheduler=local.scheduler_address), 1)
        try:
            job = _Job()
            assert cluster._task(job, "before", _seven) == 7
            client.close()  # as Dask does once it gives the connection up
            with pytest.raises(InputError, match="lost this job's task, or the connection to it"):
                cluster._task(job, "meanwhile", _seven)
            deadline = time.monotonic() + 30
            while not cluster.state()["connected"]:
                assert time.monotonic() < deadline, "no new connection"
                time.sleep(0.05)
            assert cluster._task(job, "after", _seven) == 7
        finally:
            cluster.close()


def test_a_scheduler_address_where_something_else_answers_stops_the_start_cleanly(monkeypatch) -> None:
    """An HTTP server's port as --dask-scheduler: Dask's Client read its answer as a message
    of 3 EiB and `serve` ended with a MemoryError traceback."""
    monkeypatch.setattr(cluster_module, "reach_scheduler", lambda address: None)

    def client(*args: Any, **kwargs: Any) -> Any:
        raise MemoryError("Unable to allocate 3.07 EiB")

    monkeypatch.setattr(distributed, "Client", client)
    with pytest.raises(ConfigurationError, match="does not answer as a Dask scheduler"):
        cluster_module.connect_cluster(Settings(executor="dask", dask_scheduler="tcp://127.0.0.1:8080"))


def test_a_worker_that_does_not_see_the_store_says_so(tmp_path: Path) -> None:
    """A worker that joined after start-up without the data folder (the start-up probe did not
    see it) opened an empty store of its own: jobs failed saying their entities had been
    deleted or did not exist. Its tasks now fail saying that it does not see the store."""
    blind = Settings(data_dir=tmp_path / "elsewhere").resolved()
    with pytest.raises(InputError, match="does not see the server's store .*openaml.db: start the workers where"):
        cluster_module._runtime(blind)
    assert not (tmp_path / "elsewhere" / "openaml.db").exists()
    seeing = Settings(data_dir=tmp_path / "shared").resolved()
    (tmp_path / "shared").mkdir()
    open_store(seeing.database_url or "").close()  # made by the server at its start
    assert cluster_module._runtime(seeing).store is not None


class _Job:
    """What Cluster.wait asks of a job: whether it is cancelled, and its record's names."""

    def __init__(self) -> None:
        self.asked, self.cancel = 0, False
        self.record = EntityRecord(kind=EntityKind.MLMODEL, id="m", status=Status.INPROGRESS, created_at=1,
                                   last_updated_at=1, created_by="test", request={})

    def cancelled(self) -> bool:
        self.asked += 1
        return self.cancel


def _times_out() -> None:
    raise TimeoutError("the S3 read timed out")


def _seven() -> int:
    return 7


def test_two_front_ends_on_dask_finish_the_jobs_of_one_killed_mid_training(tmp_path: Path,
                                                                          scheduler_address: str) -> None:
    """Both front ends hand their jobs to the cluster; the one whose run trains the model is
    killed: its task on the worker stops (its lease is gone), and the other front end runs the
    job again to its end."""
    folder = data_dir(tmp_path, "shared")
    env = {"OPENAML_JOB_LEASE_SECONDS": "2"}
    servers = [ServerProcess(folder, tmp_path / name, ("--executor", "dask", "--dask-scheduler", scheduler_address),
                             env=env) for name in ("a", "b")]
    try:
        for server in servers:
            server.log_dir.mkdir(exist_ok=True)
            server.start()
        ml = make_client(servers[0].url)
        schema = (REPO / "examples" / "mnist" / "train.schema.json").read_text()
        recipe = (REPO / "examples" / "mnist" / "recipe.json").read_text()
        ml.create_data_source_from_s3(DataSourceId="train", DataSpec={
            "DataLocationS3": f"s3://{BUCKET}/train.csv", "DataSchema": schema}, ComputeStatistics=True)
        make_client(servers[1].url).create_ml_model(
            MLModelId="model", MLModelType="MULTICLASS", TrainingDataSourceId="train", Recipe=recipe,
            Parameters={"sgd.maxPasses": "60"})
        assert _wait(ml.get_ml_model, "MLModelId", "model", {"INPROGRESS"}) == "INPROGRESS"
        log = folder / "artifacts" / "MLModel" / "model" / "job.log"
        deadline = time.monotonic() + 60
        while "running on the Dask worker" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        pid = lease_holder_pid(f"sqlite:///{folder / 'openaml.db'}", "MLModel", "model")
        holder = next(s for s in servers if s.process is not None and s.process.pid == pid)
        survivor = servers[1] if holder is servers[0] else servers[0]
        holder.kill()
        ml = make_client(survivor.url)
        assert _wait(ml.get_ml_model, "MLModelId", "model", {"COMPLETED", "FAILED"}) == "COMPLETED"
        text = log.read_text()
        assert RERUN_NOTE in text
        assert text.count("running on the Dask worker") == 2
        assert survivor.logged_errors() == []
    finally:
        for server in servers:
            server.kill()


def test_boosted_trees_train_in_one_task_on_data_read_in_partitions(tmp_path: Path, scheduler_address: str) -> None:
    """openaml.algorithm=gbdt on a datasource read in partitions: the trees are trained by one
    task (no data-parallel passes), and the evaluation, scored by partition, completes."""
    folder = tmp_path / "trees" / "data"
    (folder / "s3" / BUCKET).mkdir(parents=True)
    (tmp_path / "trees" / "logs").mkdir()
    rows = "".join(f"{i % 97},{'abc'[i % 3]},{int((i % 97) > 40)}\n" for i in range(300_000))  # 2.7 MB
    (folder / "s3" / BUCKET / "table.csv").write_text("x,c,y\n" + rows)
    schema = json.dumps({"targetAttributeName": "y", "dataFileContainsHeader": True, "attributes": [
        {"attributeName": "x", "attributeType": "NUMERIC"}, {"attributeName": "c", "attributeType": "CATEGORICAL"},
        {"attributeName": "y", "attributeType": "BINARY"}]})
    server = ServerProcess(folder, tmp_path / "trees" / "logs",
                           ("--executor", "dask", "--dask-scheduler", scheduler_address),
                           {"OPENAML_PARTITION_BYTES": str(1 << 20)})  # 3 partitions
    try:
        server.start()
        ml = make_client(server.url)
        for name, begin, end in (("t-train", 0, 70), ("t-eval", 70, 100)):
            ml.create_data_source_from_s3(DataSourceId=name, ComputeStatistics=True, DataSpec={
                "DataLocationS3": f"s3://{BUCKET}/table.csv", "DataSchema": schema,
                "DataRearrangement": f'{{"splitting":{{"percentBegin":{begin},"percentEnd":{end}}}}}'})
        ml.create_ml_model(MLModelId="t-model", MLModelType="BINARY", TrainingDataSourceId="t-train",
                           Parameters={"openaml.algorithm": "gbdt", "gbdt.rounds": "30"})
        ml.create_evaluation(EvaluationId="t-eval", MLModelId="t-model", EvaluationDataSourceId="t-eval")
        assert _wait(ml.get_evaluation, "EvaluationId", "t-eval", {"COMPLETED", "FAILED"}) == "COMPLETED"
        auc = float(ml.get_evaluation(EvaluationId="t-eval")["PerformanceMetrics"]["Properties"]["BinaryAUC"])
        model_log = (folder / "artifacts" / "MLModel" / "t-model" / "job.log").read_text()
        data_log = (folder / "artifacts" / "DataSource" / "t-train" / "job.log").read_text()
        assert server.logged_errors() == []
    finally:
        server.kill()
    assert "partitions" in data_log and "at once" not in model_log and auc > 0.99


_BESIDE = threading.Barrier(2, timeout=30)


def _others_beside() -> int:
    """On a worker: the other jobs a job run here sees beside it, while another task runs too."""
    record = EntityRecord(kind=EntityKind.MLMODEL, id="m", status=Status.INPROGRESS, created_at=1,
                          last_updated_at=1, created_by="test", request={})
    runtime = SimpleNamespace(store=SimpleNamespace(get=lambda kind, entity_id: record), job_lease_seconds=30)
    job = cluster_module._job(runtime, EntityKind.MLMODEL, "m", "front-end", "lease", quiet=True)
    _BESIDE.wait()  # both tasks run at once
    found = job.others()
    _BESIDE.wait()
    return found


def test_a_workers_jobs_count_the_tasks_running_beside_them() -> None:
    """A job run on a Dask worker counts the worker's other tasks as the jobs beside it (it
    counted none), so that a training's steps (or a data-parallel pass's) stay on one thread
    while another task runs there too: two-thread steps of several trainings at once on two
    cores took 17.4 s against 14.1 s on one thread."""
    assert cluster_module._others_here() == 0  # off a worker
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as client:
        assert client.gather([client.submit(_others_beside, pure=False) for _ in range(2)]) == [1, 1]
        assert client.submit(cluster_module._others_here, pure=False).result() == 0
