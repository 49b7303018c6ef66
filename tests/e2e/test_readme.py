"""The README's first-hour examples and the start-up banner's snippet, pasted as they are written,
against a live `openaml serve`, on a machine without AWS configuration (an empty HOME, no AWS_*
variables). Python examples go through the interactive console, as if pasted into `python`."""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
VENV = Path(sys.prefix)
README_URL = "http://127.0.0.1:8080"
PASTE = """
import code, sys
console = code.InteractiveConsole()
failed = []
def failing(show):
    def record(*args, **kwargs):
        failed.append(1)
        show(*args, **kwargs)
    return record
console.showtraceback = failing(console.showtraceback)
console.showsyntaxerror = failing(console.showsyntaxerror)
more = False
for line in sys.stdin.read().splitlines():
    more = console.push(line)
if more:
    console.push("")
sys.exit(1 if failed else 0)
"""

pytestmark = pytest.mark.skipif(not (VENV / "bin" / "openaml").exists(),
                                reason="runs the README's .venv/bin/openaml: needs the tests run from a venv")


@dataclass
class Served:
    url: str
    workspace: Path
    env: dict[str, str]
    banner: list[str]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def section_blocks(section: str) -> list[tuple[str, str]]:
    """(language, text) of the fenced code blocks of a README section, in order."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(\w*)\n(.*?)```", body, re.DOTALL)


def no_aws_environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["HOME"] = str(home)
    return env


def paste_python(code: str, served: Served) -> str:
    """The code pasted into an interactive Python; its output, which must hold no error."""
    done = subprocess.run([str(VENV / "bin" / "python"), "-c", PASTE], input=code, text=True,
                          capture_output=True, cwd=served.workspace, env=served.env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def run_shell(command: str, served: Served) -> str:
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", command], text=True, capture_output=True,
                          cwd=served.workspace, env=served.env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The README's serve command, run in a folder laid out like a checkout after `make demo`."""
    workspace = tmp_path_factory.mktemp("checkout").resolve()
    (workspace / "examples").symlink_to(REPO / "examples")
    (workspace / ".venv").symlink_to(VENV)
    home = tmp_path_factory.mktemp("home")
    env = no_aws_environment(home)
    serve = next(text for lang, text in section_blocks("Using it") if "openaml serve" in text)
    port = free_port()
    command = shlex.split(serve.split("#")[0]) + ["--port", str(port)]
    log_path = workspace / "server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=workspace, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            assert process.poll() is None, log_path.read_text()
            time.sleep(0.1)
        yield Served(url, workspace, env, log_path.read_text().splitlines())
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_banner_speaks_in_sentences_and_the_object_folder_exists(served: Served) -> None:
    text = "\n".join(served.banner)
    root = served.workspace / "openaml-data" / "s3"
    assert f"s3://BUCKET/KEY is the file {root}/BUCKET/KEY" in text
    assert "{'" not in text and "False" not in text and "True" not in text
    assert root.is_dir()


def test_the_readme_works_top_to_bottom_as_pasted(served: Served) -> None:
    blocks = (section_blocks("Using it") + section_blocks("Boosted trees (beyond Amazon ML)")
              + section_blocks("Offline scoring"))
    ran = []
    for lang, text in blocks:
        code = text.replace(README_URL, served.url)
        if "openaml serve" in text:
            continue  # the server the fixture runs
        if lang == "python":
            ran.append(paste_python(code, served))
        elif code.lstrip().startswith("AWS_ACCESS_KEY_ID=") and shutil.which("aws", path=served.env["PATH"]) is None:
            continue  # the AWS CLI is not installed here
        else:
            ran.append(run_shell(code, served))
    predicted, aws_cli, trees, explained, offline = ran[1], ran[2:-3], ran[-3], ran[-2], ran[-1]
    assert re.search(r"predicted digit: \d", predicted)
    assert trees.strip().splitlines()[-1] == "gbdt"
    assert re.fullmatch(r"\d -?[\d.e-]+ \[\{'feature': 'pixel\d+', 'value': .*\] -?[\d.e-]+ -?[\d.e-]+",
                        explained.strip().splitlines()[-1])
    assert all(json.loads(out)["Results"][0]["MLModelId"] == "ml-1" for out in aws_cli)
    labels = ast.literal_eval(offline.strip())
    assert len(labels) == 20 and set(labels) <= set("0123456789")


def test_the_banner_snippet_works_as_pasted(served: Served) -> None:
    lines = served.banner
    start = next(i for i, line in enumerate(lines) if line.startswith("Try it from Python"))
    cli = next(i for i, line in enumerate(lines) if line.startswith("or with the AWS CLI"))
    assert "[" in paste_python("\n".join(lines[start + 1:cli]), served)
    command = next(line for line in lines[cli + 1:] if line)
    if shutil.which("aws", path=served.env["PATH"]) is not None:
        assert "Results" in json.loads(run_shell(command, served))


def test_a_missing_data_file_names_the_path_looked_at(served: Served) -> None:
    ml, bucket = client_and_bucket(served)
    ml.create_data_source_from_s3(DataSourceId="ds-missing", DataSpec={
        "DataLocationS3": "s3://my-bucket/not-copied-yet.csv", "DataSchemaLocationS3": "s3://my-bucket/three.schema"})
    message = failure_message(ml, "ds-missing")
    assert str(bucket / "not-copied-yet.csv") in message


def test_a_schema_with_fewer_attributes_than_columns_says_so(served: Served) -> None:
    ml, bucket = client_and_bucket(served)
    (bucket / "four.csv").write_text("a,b,c,y\n" + "".join(f"{i},{i},{i},{i % 2}\n" for i in range(400)))
    ml.create_data_source_from_s3(DataSourceId="ds-four", DataSpec={
        "DataLocationS3": "s3://my-bucket/four.csv", "DataSchemaLocationS3": "s3://my-bucket/three.schema"})
    message = failure_message(ml, "ds-four")
    assert "Expected 3 fields (one per attribute of the schema: a, b, y), found 4 on line 2" in message
    assert "its header line has 4 fields: a,b,c,y" in message
    log = httpx.get(served.url + "/logs/DataSource/ds-four", timeout=10).text
    assert "rejected line 2 of s3://my-bucket/four.csv (4 fields, expected 3): 0,0,0,0" in log


def client_and_bucket(served: Served) -> tuple[Any, Path]:
    """A client, and the folder of s3://my-bucket/ holding `three.schema` (a, b and a target y)."""
    bucket = served.workspace / "openaml-data" / "s3" / "my-bucket"
    bucket.mkdir(parents=True, exist_ok=True)
    (bucket / "three.schema").write_text(json.dumps({
        "version": "1.0", "targetAttributeName": "y", "dataFormat": "CSV", "dataFileContainsHeader": True,
        "attributes": [{"attributeName": "a", "attributeType": "NUMERIC"},
                       {"attributeName": "b", "attributeType": "NUMERIC"},
                       {"attributeName": "y", "attributeType": "BINARY"}]}))
    ml = boto3.client("machinelearning", endpoint_url=served.url, region_name="us-east-1",
                      aws_access_key_id="any", aws_secret_access_key="any")
    return ml, bucket


def failure_message(ml: Any, datasource_id: str) -> str:
    """The Message of a datasource that must fail."""
    for _ in range(600):
        answer = ml.get_data_source(DataSourceId=datasource_id)
        if answer["Status"] in ("FAILED", "COMPLETED"):
            assert answer["Status"] == "FAILED"
            return str(answer["Message"])
        time.sleep(0.1)
    raise AssertionError(f"{datasource_id} did not finish")
