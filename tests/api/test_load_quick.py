"""Predict from several clients at once while a model trains, and the per-endpoint rate limit
under a flood: every answer is a prediction or the AWS throttling error, never a 5xx.
(Throughput targets live in bench/hardening_load.py.)"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from openaml.server.embedded import running_server
from tests.api.conftest import make_client, wait_for
from tests.api.test_workflow import make_rows, schema, to_csv

CLIENTS = 4
RATE_LIMIT = 20


def answer(call: Callable[[], dict[str, Any]]) -> str:
    """'200 Prediction', or the HTTP status and AWS error type, or the exception's name."""
    try:
        found = call()
    except ClientError as exc:
        return f"{exc.response['ResponseMetadata']['HTTPStatusCode']} {exc.response['Error']['Code']}"
    except Exception as exc:  # noqa: BLE001 - a connection error is an answer to count
        return type(exc).__name__
    return "200 Prediction" if "predictedLabel" in found.get("Prediction", {}) else f"200 {found}"


def predict_from_threads(url: str, record: dict[str, str], seconds: float) -> Counter[str]:
    """Answers to Predict calls made back to back by CLIENTS clients for `seconds`."""
    answers: Counter[str] = Counter()
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def client() -> None:
        ml = make_client(url)
        while time.monotonic() < end:
            found = answer(lambda: ml.predict(MLModelId="served", Record=record, PredictEndpoint=url))
            with lock:
                answers[found] += 1

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_predict_while_training_then_rate_limited(tmp_path: Path) -> None:
    header, rows = make_rows("BINARY", 400, seed=11)
    record = dict(zip(header[:-1], rows[0][:-1], strict=True))
    big_header, big_rows = make_rows("BINARY", 60_000, seed=12)
    with running_server(data_dir=tmp_path, workers=2, predict_rate_limit=0) as app:
        app.context.objects.write_bytes("s3://load/small.csv", to_csv(header, rows))
        app.context.objects.write_bytes("s3://load/big.csv", to_csv(big_header, big_rows))
        ml = make_client(app.settings.base_url)
        for name in ("small", "big"):
            ml.create_data_source_from_s3(DataSourceId=name, ComputeStatistics=True, DataSpec={
                "DataLocationS3": f"s3://load/{name}.csv", "DataSchema": schema("BINARY")})
        ml.create_ml_model(MLModelId="served", MLModelType="BINARY", TrainingDataSourceId="small")
        assert wait_for(lambda: ml.get_ml_model(MLModelId="served"))["Status"] == "COMPLETED"
        ml.create_realtime_endpoint(MLModelId="served")
        ml.create_ml_model(MLModelId="training", MLModelType="BINARY", TrainingDataSourceId="big",
                           Parameters={"sgd.maxPasses": "1000", "sgd.shuffleType": "auto"})
        deadline = time.monotonic() + 60
        while (ml.get_ml_model(MLModelId="served")["EndpointInfo"]["EndpointStatus"] != "READY"
               or ml.get_ml_model(MLModelId="training")["Status"] != "INPROGRESS"):
            assert time.monotonic() < deadline, ml.get_ml_model(MLModelId="training")
            time.sleep(0.05)
        url = app.settings.base_url
        answers = predict_from_threads(url, record, seconds=3)
        training = ml.get_ml_model(MLModelId="training")["Status"]
        ml.delete_ml_model(MLModelId="training")  # stops it
        assert set(answers) == {"200 Prediction"}, answers
        assert training in ("INPROGRESS", "COMPLETED")

    # The same data dir served again with a limit: the endpoint is back, its bucket holds
    # RATE_LIMIT requests and refills RATE_LIMIT per second.
    with running_server(data_dir=tmp_path, workers=2, predict_rate_limit=RATE_LIMIT) as app:
        ml = make_client(app.settings.base_url)
        info = ml.get_ml_model(MLModelId="served")["EndpointInfo"]
        assert (info["EndpointStatus"], info["PeakRequestsPerSecond"]) == ("READY", RATE_LIMIT)
        deadline = time.monotonic() + 30  # mounted at start-up: no Predict mounts it again
        while app.context.predictors.get("served") is None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        start = time.monotonic()
        answers = predict_from_threads(app.settings.base_url, record, seconds=1.5)
        elapsed = time.monotonic() - start
        assert set(answers) == {"200 Prediction", "417 LimitExceededException"}, answers
        assert RATE_LIMIT <= answers["200 Prediction"] <= RATE_LIMIT * (1 + elapsed) + 1, answers
