"""Writes the data dir that tests/api/test_migration.py opens: run with the code of commit
2c2d7f9 (the last whose entities kept no specs), e.g. `PYTHONPATH=<that checkout>/src python
tests/data/legacy/make_datadir.py OUT POSTGRES_URL`. OUT gets datadir.tar.gz and answers.json
(what that server answered about each entity, which a migrated data dir must answer the same).

Entities: S3 datasources (a random split and its complement, a batch one without a target, a
REGRESSION one, a FAILED one, a DELETED one), an RDS datasource, a FAILED Redshift one (its
password still kept), a BINARY model (parameters, updated score threshold, real-time endpoint)
with an evaluation and a batch prediction, a BINARY model whose recipe came from RecipeUri
(threshold never set), a REGRESSION model with its own recipe, a model, evaluation and batch
prediction FAILED by their failed datasource, and a MULTICLASS model still PENDING when the
server stopped (its job runs on the next start).
"""

from __future__ import annotations

import json
import random
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import boto3
import sqlalchemy

from openaml.server.embedded import running_server


def schema(target: str | None, *types: tuple[str, str]) -> str:
    document: dict[str, Any] = {"version": "1.0", "dataFormat": "CSV", "dataFileContainsHeader": True,
                                "attributes": [{"attributeName": n, "attributeType": t} for n, t in types]}
    if target:
        document["targetAttributeName"] = target
    return json.dumps(document)


COLUMNS = (("age", "NUMERIC"), ("job", "CATEGORICAL"), ("note", "TEXT"), ("amount", "NUMERIC"),
           ("y", "BINARY"))


def table(rows: int, labels: bool) -> bytes:
    rng = random.Random(7)
    lines = ["age,job,note,amount" + (",y" if labels else "")]
    for _ in range(rows):
        age, job = rng.randint(18, 90), rng.choice(["admin", "chef", "nurse", "pilot"])
        note = rng.choice(["called back", "no answer", "wants a loan, soon", ""])
        amount = round(age * 3.5 + rng.gauss(0, 10), 2)
        y = int(age > 50) if rng.random() < 0.85 else rng.randint(0, 1)
        lines.append(f'{age},{job},"{note}",{amount}' + (f",{y}" if labels else ""))
    return ("\n".join(lines) + "\n").encode()


def wait(get: Any) -> dict[str, Any]:
    while (answer := get())["Status"] in ("PENDING", "INPROGRESS"):
        time.sleep(0.05)
    return answer


def main(out: Path, postgres: str) -> None:
    data_dir = out / "datadir"
    admin = sqlalchemy.create_engine(postgres, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text('DROP DATABASE IF EXISTS "legacy_orders"'))
        conn.execute(sqlalchemy.text('CREATE DATABASE "legacy_orders"'))
    base = postgres.rsplit("/", 1)[0]
    with sqlalchemy.create_engine(f"{base}/legacy_orders").begin() as conn:
        conn.execute(sqlalchemy.text("CREATE TABLE obs (x float, word text, label boolean)"))
        conn.execute(sqlalchemy.text("INSERT INTO obs SELECT i, 'w' || (i % 4), i % 2 = 0 "
                                     "FROM generate_series(1, 60) AS i"))
    config = out / "databases.toml"
    config.write_text(f'[rds.orders-db]\nurl = "{base}/{{database}}"\n\n'
                      f'[redshift.warehouse]\nurl = "{base}/{{database}}"\n')
    answers: dict[str, Any] = {}
    with running_server(data_dir=data_dir, databases_file=config, workers=2) as app:
        objects = app.context.objects
        objects.write_bytes("s3://legacy/train.csv", table(300, True))
        objects.write_bytes("s3://legacy/unlabeled.csv", table(40, False))
        objects.write_bytes("s3://legacy/wrong.csv", b"a,b\n1,2\n3,4\n")
        ml = boto3.client("machinelearning", endpoint_url=app.settings.base_url, region_name="us-east-1",
                          aws_access_key_id="AKIDLEGACY", aws_secret_access_key="secret")
        labeled = schema("y", *COLUMNS)
        split = ('{"splitting":{"percentBegin":0,"percentEnd":70,"strategy":"random",'
                 '"strategyParams":{"randomSeed":"s"}}}')
        rest = split.replace('"strategy"', '"complement":true,"strategy"')
        ml.create_data_source_from_s3(DataSourceId="ds-train", DataSourceName="training rows", DataSpec={
            "DataLocationS3": "s3://legacy/train.csv", "DataSchema": labeled, "DataRearrangement": split},
            ComputeStatistics=True)
        ml.create_data_source_from_s3(DataSourceId="ds-eval", DataSpec={
            "DataLocationS3": "s3://legacy/train.csv", "DataSchema": labeled, "DataRearrangement": rest},
            ComputeStatistics=True)
        ml.create_data_source_from_s3(DataSourceId="ds-batch", DataSpec={
            "DataLocationS3": "s3://legacy/unlabeled.csv", "DataSchema": schema(None, *COLUMNS[:4])})
        ml.create_data_source_from_s3(DataSourceId="ds-reg", DataSpec={
            "DataLocationS3": "s3://legacy/train.csv", "DataSchema": schema("amount", *COLUMNS)},
            ComputeStatistics=True)
        ml.create_data_source_from_s3(DataSourceId="ds-failed", DataSpec={
            "DataLocationS3": "s3://legacy/wrong.csv", "DataSchema": labeled})
        ml.create_data_source_from_s3(DataSourceId="ds-deleted", DataSpec={
            "DataLocationS3": "s3://legacy/train.csv", "DataSchema": labeled})
        ml.create_data_source_from_rds(DataSourceId="ds-rds", RoleARN="arn:aws:iam::1:role/r", RDSData={
            "DatabaseInformation": {"InstanceIdentifier": "orders-db", "DatabaseName": "legacy_orders"},
            "SelectSqlQuery": "SELECT x, word, label FROM obs ORDER BY x",
            "DatabaseCredentials": {"Username": "postgres", "Password": "postgres-pw"},
            "S3StagingLocation": "s3://legacy/staging/", "ResourceRole": "r", "ServiceRole": "s",
            "SubnetId": "subnet-1", "SecurityGroupIds": ["sg-1"],
            "DataSchema": schema("label", ("x", "NUMERIC"), ("word", "CATEGORICAL"), ("label", "BINARY")),
            "DataRearrangement": '{"splitting":{"percentBegin":10,"percentEnd":60}}'},
            ComputeStatistics=True)
        ml.create_data_source_from_redshift(DataSourceId="ds-redshift-failed", RoleARN="arn:aws:iam::1:role/r",
                                            DataSpec={
            "DatabaseInformation": {"ClusterIdentifier": "warehouse", "DatabaseName": "legacyorders"},
            "SelectSqlQuery": "SELECT nope FROM obs",
            "DatabaseCredentials": {"Username": "postgres", "Password": "redshift-pw"},
            "S3StagingLocation": "s3://legacy/staging/",
            "DataSchema": schema("label", ("x", "NUMERIC"), ("label", "BINARY"))})
        ml.add_tags(ResourceId="ds-train", ResourceType="DataSource", Tags=[{"Key": "team", "Value": "growth"}])
        ml.create_ml_model(MLModelId="ml-bin", MLModelName="churn", MLModelType="BINARY",
                           TrainingDataSourceId="ds-train",
                           Parameters={"sgd.maxPasses": "5", "sgd.shuffleType": "auto",
                                       "sgd.l2RegularizationAmount": "1e-4"})
        recipe = json.dumps({"groups": {}, "assignments": {},
                             "outputs": ["ALL_NUMERIC", "quantile_bin(age, 5)", "job"]})
        ml.create_ml_model(MLModelId="ml-reg", MLModelType="REGRESSION", TrainingDataSourceId="ds-reg",
                           Recipe=recipe)
        objects.write_bytes("s3://legacy/recipe.json", json.dumps(
            {"groups": {}, "assignments": {}, "outputs": ["ALL_CATEGORICAL", "quantile_bin(age, 10)"]}).encode())
        ml.create_ml_model(MLModelId="ml-recipe-uri", MLModelType="BINARY", TrainingDataSourceId="ds-train",
                           RecipeUri="s3://legacy/recipe.json")
        ml.create_evaluation(EvaluationId="ev-bin", EvaluationName="holdout", MLModelId="ml-bin",
                             EvaluationDataSourceId="ds-eval")
        ml.create_batch_prediction(BatchPredictionId="bp-bin", MLModelId="ml-bin",
                                   BatchPredictionDataSourceId="ds-batch", OutputUri="s3://legacy/out/")
        for get in (lambda: ml.get_evaluation(EvaluationId="ev-bin"),
                    lambda: ml.get_batch_prediction(BatchPredictionId="bp-bin"),
                    lambda: ml.get_ml_model(MLModelId="ml-reg"),
                    lambda: ml.get_data_source(DataSourceId="ds-rds"),
                    lambda: ml.get_data_source(DataSourceId="ds-failed"),
                    lambda: ml.get_data_source(DataSourceId="ds-redshift-failed"),
                    lambda: ml.get_ml_model(MLModelId="ml-recipe-uri")):
            wait(get)
        app.context.engine.pause()  # created together, failed together: their datasource fails
        ml.create_data_source_from_s3(DataSourceId="ds-bad-stats", ComputeStatistics=True, DataSpec={
            "DataLocationS3": "s3://legacy/wrong.csv", "DataSchema": labeled})
        ml.create_ml_model(MLModelId="ml-orphan", MLModelType="BINARY", TrainingDataSourceId="ds-bad-stats")
        ml.create_evaluation(EvaluationId="ev-orphan", MLModelId="ml-orphan", EvaluationDataSourceId="ds-eval")
        ml.create_batch_prediction(BatchPredictionId="bp-orphan", MLModelId="ml-orphan",
                                   BatchPredictionDataSourceId="ds-batch", OutputUri="s3://legacy/orphan/")
        app.context.engine.resume()
        for get in (lambda: ml.get_evaluation(EvaluationId="ev-orphan"),
                    lambda: ml.get_batch_prediction(BatchPredictionId="bp-orphan")):
            wait(get)
        ml.delete_data_source(DataSourceId="ds-deleted")
        ml.update_ml_model(MLModelId="ml-bin", ScoreThreshold=0.4)
        ml.create_realtime_endpoint(MLModelId="ml-bin")
        while ml.get_ml_model(MLModelId="ml-bin")["EndpointInfo"]["EndpointStatus"] != "READY":
            time.sleep(0.05)
        records = [{"age": "61", "job": "nurse", "note": "called back", "amount": "200"},
                   {"age": "30", "job": "chef", "note": "", "amount": "101.5"}]
        url = ml.get_ml_model(MLModelId="ml-bin")["EndpointInfo"]["EndpointUrl"]
        answers["predictions"] = [ml.predict(MLModelId="ml-bin", Record=r, PredictEndpoint=url)["Prediction"]
                                  for r in records]
        answers["records"] = records
        app.context.engine.stop()  # what is created now stays PENDING
        ml.create_ml_model(MLModelId="ml-pending", MLModelType="MULTICLASS", TrainingDataSourceId="ds-train",
                           Parameters={"sgd.maxPasses": "3"})
        answers["entities"] = {
            **{i: ml.get_data_source(DataSourceId=i, Verbose=True) for i in
               ("ds-train", "ds-eval", "ds-batch", "ds-reg", "ds-failed", "ds-deleted", "ds-rds",
                "ds-redshift-failed", "ds-bad-stats")},
            **{i: ml.get_ml_model(MLModelId=i, Verbose=True)
               for i in ("ml-bin", "ml-reg", "ml-pending", "ml-recipe-uri", "ml-orphan")},
            **{i: ml.get_evaluation(EvaluationId=i) for i in ("ev-bin", "ev-orphan")},
            **{i: ml.get_batch_prediction(BatchPredictionId=i) for i in ("bp-bin", "bp-orphan")},
        }
        for answer in answers["entities"].values():
            answer.pop("ResponseMetadata")
        answers["result"] = objects.read_bytes(
            "s3://legacy/out/batch-prediction/result/bp-bin-unlabeled.csv.gz").hex()
    (out / "answers.json").write_text(json.dumps(answers, indent=1, default=str, sort_keys=True) + "\n")
    with tarfile.open(out / "datadir.tar.gz", "w:gz") as archive:
        archive.add(data_dir, arcname="datadir")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
