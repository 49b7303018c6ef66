"""The warm-up compiles every kernel the reference workflow runs: after it (at install,
`openaml warm-up`, or at a server's start), the MNIST workflow compiles nothing, so the first
run after an install is as fast as the next."""

from __future__ import annotations

import gzip
import json
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
from numba.core.registry import CPUDispatcher

from openaml.jobs.warmup import warm_up
from openaml.ml.execution import Execution
from openaml.server.embedded import running_server
from tests.api.conftest import make_client, wait_for

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mnist"


def compiled() -> dict[str, int]:
    """Each compiled function of OpenAML's modules with its number of compiled signatures."""
    return {f"{name}.{attr}": len(value.signatures)
            for name, module in list(sys.modules.items()) if name.startswith("openaml.")
            for attr, value in vars(module).items() if isinstance(value, CPUDispatcher)}


def first_lines(path: Path, count: int) -> bytes:
    with gzip.open(path, "rb") as stream:
        return b"".join(stream.readline() for _ in range(count))


def warmed_up() -> dict[str, int]:
    """compiled() after a warm-up on a thread of its own, as the server runs it (it lowers its
    thread's priority)."""
    warming = threading.Thread(target=warm_up, kwargs={"execution": Execution(2)})
    warming.start()
    warming.join()
    return compiled()


def run_workflow(ml: Any, location: str, schema: str, batch_source: str, **model: Any) -> None:
    """The 70/30 datasources of `location`, a model of them (`model`: CreateMLModel's other
    arguments), its evaluation and a batch prediction of `batch_source`, each COMPLETED."""
    for name, begin, end in (("train", 0, 70), ("eval", 70, 100)):
        ml.create_data_source_from_s3(DataSourceId=f"ds-{name}", ComputeStatistics=True, DataSpec={
            "DataLocationS3": location, "DataSchema": schema,
            "DataRearrangement": json.dumps({"splitting": {"percentBegin": begin, "percentEnd": end}})})
    ml.create_ml_model(MLModelId="ml", TrainingDataSourceId="ds-train", **model)
    ml.create_evaluation(EvaluationId="ev", MLModelId="ml", EvaluationDataSourceId="ds-eval")
    ml.create_batch_prediction(BatchPredictionId="bp", MLModelId="ml", BatchPredictionDataSourceId=batch_source,
                               OutputUri="s3://warm/out/")
    ended: list[Any] = [wait_for(lambda: ml.get_evaluation(EvaluationId="ev")),
                        wait_for(lambda: ml.get_batch_prediction(BatchPredictionId="bp"))]
    assert [e["Status"] for e in ended] == ["COMPLETED", "COMPLETED"], ended


def table_rows(count: int) -> bytes:
    """A table as users have them: skewed amounts (binned by the default recipe), a missing
    amount now and then, categories, yes/no values, a little text and a BINARY target."""
    rng = np.random.default_rng(5)
    amount = rng.lognormal(5, 1.5, count).round(2)
    lines = ["amount,plan,member,note,y"]
    for i in range(count):
        words = " ".join(("great", "slow", "fine", "price", "support")[j] for j in rng.integers(0, 5, 3))
        lines.append(f"{'' if i % 17 == 0 else amount[i]},{'abcd'[i % 4]},{'yes' if i % 3 else 'no'},"
                     f"\"{words}, ok\",{int(amount[i] > 150)}")
    return ("\n".join(lines) + "\n").encode()


def test_a_tabular_workflow_compiles_nothing_after_the_warm_up(tmp_path: Path) -> None:
    """The default recipe's bins, yes/no values and text, a BINARY model, its evaluation and
    batch prediction: the kernels they run are those the warm-up compiled (an array of
    another kind, read-only or not, would be compiled again at first use)."""
    before = warmed_up()
    with running_server(data_dir=tmp_path, workers=2, job_threads=2) as app:
        app.context.objects.write_bytes("s3://warm/table.csv", table_rows(2000))
        ml = make_client(app.settings.base_url)
        schema = json.dumps({"targetAttributeName": "y", "dataFileContainsHeader": True, "attributes": [
            {"attributeName": "amount", "attributeType": "NUMERIC"},
            {"attributeName": "plan", "attributeType": "CATEGORICAL"},
            {"attributeName": "member", "attributeType": "BINARY"},
            {"attributeName": "note", "attributeType": "TEXT"},
            {"attributeName": "y", "attributeType": "BINARY"}]})
        run_workflow(ml, "s3://warm/table.csv", schema, "ds-eval", MLModelType="BINARY")
        assert "quantile_bin" in ml.get_ml_model(MLModelId="ml", Verbose=True)["Recipe"]
    after = compiled()
    assert {name: count for name, count in after.items() if count > before.get(name, 0)} == {}


def test_the_mnist_workflow_compiles_nothing_after_the_warm_up(tmp_path: Path) -> None:
    before = warmed_up()
    with running_server(data_dir=tmp_path, workers=2, job_threads=2) as app:
        put = app.context.objects.write_bytes
        put("s3://warm/train.csv", first_lines(EXAMPLE / "data" / "train.csv.gz", 601))
        put("s3://warm/test.csv", first_lines(EXAMPLE / "data" / "test.csv.gz", 201))
        ml = make_client(app.settings.base_url)
        schema = (EXAMPLE / "train.schema.json").read_text()
        ml.create_data_source_from_s3(DataSourceId="ds-test", DataSpec={
            "DataLocationS3": "s3://warm/test.csv", "DataSchema": (EXAMPLE / "batch.schema.json").read_text()})
        run_workflow(ml, "s3://warm/train.csv", schema, "ds-test", MLModelType="MULTICLASS",
                     Recipe=(EXAMPLE / "recipe.json").read_text(),
                     Parameters={"sgd.maxPasses": "2", "sgd.shuffleType": "auto", "sgd.l2RegularizationAmount": "1e-5"})
    after = compiled()
    assert {name: count for name, count in after.items() if count > before.get(name, 0)} == {}
