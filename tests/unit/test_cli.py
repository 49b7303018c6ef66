"""The `openaml` commands on wrong input: a one-line message and a non-zero exit, never a
traceback, never silently the wrong thing (click's CliRunner; the HTTP server is faked)."""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from openaml.cli import main as cli
from openaml.server.connections import GuardedProtocol

REPO = Path(__file__).resolve().parents[2]


class FakeServer:
    """uvicorn.Server that records its config and returns at once."""

    configs: list[Any] = []

    def __init__(self, config: Any) -> None:
        self.config = config
        FakeServer.configs.append(config)

    def run(self, sockets: list[socket.socket]) -> None:
        assert sockets


@pytest.fixture(autouse=True)
def no_http_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.uvicorn, "Server", FakeServer)
    FakeServer.configs = []
    for name in [n for n in os.environ if n.startswith("OPENAML_")]:
        monkeypatch.delenv(name)


def invoke(args: list[str], env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli.main, args, env=env)


def refused(result: Result, *words: str, code: int = 1) -> None:
    """Exit `code`, no exception but click's exit, and a message with `words`."""
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.output, result.output


def serve(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return invoke(["serve", "--data-dir", str(tmp_path / "d"), *args], env)


@pytest.mark.parametrize("port", ["-1", "70000"])
def test_serve_refuses_a_port_out_of_range_before_the_banner(tmp_path: Path, port: str) -> None:
    result = serve(tmp_path, "--port", port)
    refused(result, "--port (OPENAML_PORT) must be from 0 to 65535")
    assert "serving" not in result.output


def test_serve_says_nothing_of_serving_when_the_port_is_busy(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = serve(tmp_path, "--port", str(busy.getsockname()[1]))
    refused(result, "cannot listen on 127.0.0.1:")
    assert "serving" not in result.output


def test_serve_on_port_0_tells_the_port_the_os_chose(tmp_path: Path) -> None:
    result = serve(tmp_path, "--port", "0")
    assert result.exit_code == 0, result.output
    assert "http://127.0.0.1:0" not in result.output and "http://127.0.0.1:" in result.output


@pytest.mark.parametrize(("args", "env", "words"), [
    (["--workers", "0"], {}, ["--workers (OPENAML_WORKERS) must be from 1"]),
    (["--http-workers", "-2"], {}, ["--http-workers (OPENAML_HTTP_WORKERS) must be from 1"]),
    (["--predict-rate-limit", "-5"], {}, ["--predict-rate-limit (OPENAML_PREDICT_RATE_LIMIT) must be"]),
    (["--advertise-url", "not a url"], {}, ["--advertise-url (OPENAML_ADVERTISE_URL) must be an http(s) URL"]),
    (["--advertise-url", "http://"], {}, ["must be an http(s) URL with a host"]),
    (["--dask-scheduler", "tcp://10.0.0.5:8786"], {}, ["only used with --executor dask"]),
    ([], {"OPENAML_TRAINING_MEMORY": "-5"}, ["OPENAML_TRAINING_MEMORY must be 0"]),
    ([], {"OPENAML_JOB_THREADS": "9"}, ["OPENAML_JOB_THREADS must be from 1 to 2"]),
    ([], {"OPENAML_CONSOLE_UPLOAD_BYTES": "-1"}, ["OPENAML_CONSOLE_UPLOAD_BYTES must be"]),
    ([], {"OPENAML_CSV_FAST_PATHS": "ture"}, ["OPENAML_CSV_FAST_PATHS must be true or false"]),
    ([], {"OPENAML_JOB_LEASE_SECONDS": "nan"}, ["OPENAML_JOB_LEASE_SECONDS must be from 1"]),
    ([], {"OPENAML_JOB_LEASE_SECONDS": "inf"}, ["OPENAML_JOB_LEASE_SECONDS must be from 1"]),
    ([], {"OPENAML_PORT": "abc"}, ["--port (OPENAML_PORT) must be a whole number"]),
])
def test_serve_refuses_a_bad_setting_naming_it(tmp_path: Path, args: list[str], env: dict[str, str],
                                               words: list[str]) -> None:
    result = serve(tmp_path, *args, env=env)
    refused(result, "cannot start: ", *words)
    assert not FakeServer.configs


@pytest.mark.parametrize("url", ["sqlite:////nonexistent-folder/openaml.db",
                                 "postgresql+psycopg://openaml:secret@127.0.0.1:1/openaml"])
def test_serve_names_the_database_option_when_the_database_cannot_be_opened(tmp_path: Path, url: str) -> None:
    result = serve(tmp_path, "--database-url", url)
    refused(result, "cannot start: the database of --database-url (OPENAML_DATABASE_URL) cannot be used: ")
    assert "secret" not in result.output and "Background on this error" not in result.output
    assert not FakeServer.configs


def test_serve_names_the_data_dir_option_when_its_database_cannot_be_opened(tmp_path: Path) -> None:
    (tmp_path / "d" / "openaml.db").mkdir(parents=True)  # a folder where SQLite's file would be
    refused(serve(tmp_path), f"cannot start: the SQLite database in --data-dir (OPENAML_DATA_DIR) {tmp_path / 'd'}")
    assert not FakeServer.configs


def test_serve_names_the_data_dir_option_when_the_data_folder_cannot_be_used(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    for more in ([], ["--s3-endpoint-url", "http://127.0.0.1:1"]):  # the embedded object store or not
        refused(invoke(["serve", "--data-dir", str(a_file), *more]),
                f"cannot start: --data-dir (OPENAML_DATA_DIR) {a_file} cannot be used: ")
    assert not FakeServer.configs


def test_serve_refuses_an_empty_data_dir_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    refused(invoke(["serve"], env={"OPENAML_DATA_DIR": ""}), "OPENAML_DATA_DIR", "is empty")
    assert os.listdir(tmp_path) == []  # not the current folder as the data dir


@pytest.mark.parametrize("args", [
    ["serve", "--data-dir", ""], ["serve", "--data-dir", " "], ["demo", "mnist", "--data-dir", ""],
    ["export-model", "ml-x", "--data-dir", ""], ["export-model", "ml-x", "--out", ""],
    ["bench", "--quick", "--work", ""], ["bench", "--quick", "--out", ""], ["fetch-mnist", ""],
    ["guess-schema", ""], ["serve", "--credentials-file", ""]])
def test_every_path_option_refuses_an_empty_value(args: list[str], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """click reads an empty path as the current folder: a server put its database there."""
    monkeypatch.chdir(tmp_path)
    refused(invoke(args), "is empty: give a path", code=2)
    assert os.listdir(tmp_path) == [] and not FakeServer.configs


@pytest.mark.parametrize("variable, value", [("OPENAML_PORT", "abc"), ("OPENAML_WORKERS", "two"),
                                             ("OPENAML_PORT", "-1"), ("OPENAML_EXECUTOR", "spark"),
                                             ("OPENAML_LOG_LEVEL", "verbose")])
def test_an_option_on_the_command_line_wins_over_its_variable_even_a_malformed_one(
        tmp_path: Path, variable: str, value: str) -> None:
    """A malformed variable was refused though its option overrode it (an out-of-range one was
    not): the variable is not read."""
    option = {"OPENAML_PORT": ["--port", "0"], "OPENAML_WORKERS": ["--workers", "2"],
              "OPENAML_EXECUTOR": ["--executor", "local"], "OPENAML_LOG_LEVEL": ["--log-level", "info"]}[variable]
    result = serve(tmp_path, *option, env={variable: value})
    assert result.exit_code == 0, result.output


def test_the_log_level_has_its_variable(tmp_path: Path) -> None:
    """OPENAML_LOG_LEVEL was not read (every other option's variable is)."""
    refused(serve(tmp_path, env={"OPENAML_LOG_LEVEL": "verbose"}), "'verbose' is not one of", code=2)
    assert serve(tmp_path, env={"OPENAML_LOG_LEVEL": "debug"}).exit_code == 0
    [config] = FakeServer.configs
    assert config.access_log is True and config.log_level == "debug"


def test_serve_checks_the_log_level_case_insensitively(tmp_path: Path) -> None:
    refused(serve(tmp_path, "--log-level", "bogus"), "'bogus' is not one of", code=2)
    result = serve(tmp_path, "--log-level", "DEBUG")
    assert result.exit_code == 0, result.output
    [config] = FakeServer.configs
    assert config.access_log is True and config.log_level == "debug"
    assert config.http is GuardedProtocol  # deadlines for heads and bodies, a cap on connections


@pytest.mark.parametrize(("text", "words"), [
    ("[default]\naws_access_key_id = AK\naws_secret_access_key = S\n[default]\naws_access_key_id = B\n",
     ["line 4: section [default] appears twice"]),
    ("[alice]\naws_access_key_id = A\naws_access_key_id = B\naws_secret_access_key = S\n",
     ["line 3: aws_access_key_id appears twice in section [alice]"]),
    ("AKID:secret\n[default]\ngarbage line\n", ["line 3: expected KEY = VALUE", "garbage line"]),
    ("", ["holds no access key"]),
    ("# only a comment\n\n", ["holds no access key"]),
])
def test_serve_refuses_a_bad_credentials_file_saying_where(tmp_path: Path, text: str, words: list[str]) -> None:
    path = tmp_path / "credentials.ini"
    path.write_text(text)
    result = serve(tmp_path, "--credentials-file", str(path))
    refused(result, f"credentials file {path}", *words)
    assert "Signatures: not verified" not in result.output
    refused(serve(tmp_path, env={"OPENAML_CREDENTIALS_FILE": str(path)}), f"credentials file {path}", *words)


def test_serve_help_says_options_win_over_variables() -> None:
    assert "wins over its variable" in " ".join(invoke(["serve", "--help"]).output.split())


# export-model

@pytest.mark.parametrize(("args", "env", "words"), [
    ([], {"OPENAML_PORT": "abc"}, ["--port (OPENAML_PORT) must be a whole number"]),
    ([], {"OPENAML_WORKERS": "x"}, ["OPENAML_WORKERS"]),
    ([], {"OPENAML_DATA_DIR": ""}, ["OPENAML_DATA_DIR", "is empty"]),
    (["--artifacts-uri", "s3://bucket/p/", "--s3-endpoint-url", "not a url"], {},
     ["--s3-endpoint-url (OPENAML_S3_ENDPOINT_URL) must be an http(s) URL"]),
    (["--artifacts-uri", "s3://bucket/p"], {}, ["must be an s3:// folder: end it with '/'"]),
])
def test_export_model_refuses_bad_settings_as_serve_does(tmp_path: Path, args: list[str], env: dict[str, str],
                                                         words: list[str]) -> None:
    refused(invoke(["export-model", "ml-x", "--out", str(tmp_path / "x.onnx"), *args], env), *words)


def test_export_model_says_where_it_looked(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    result = invoke(["export-model", "ml-x", "--data-dir", str(missing), "--out", str(tmp_path / "x.onnx")])
    refused(result, "no trained model ml-x", str(missing / "artifacts" / "MLModel" / "ml-x"),
            f"the data dir {missing} does not exist")


def test_export_model_keeps_an_existing_file_without_force(tmp_path: Path) -> None:
    out = tmp_path / "x.onnx"
    out.write_text("keep me")
    refused(invoke(["export-model", "ml-x", "--out", str(out)]), f"{out} exists: give --force")
    assert out.read_text() == "keep me"
    refused(invoke(["export-model", "ml-x", "--force", "--out", str(out), "--data-dir", str(tmp_path)]),
            "no trained model ml-x")  # --force goes on to the export


# demo mnist

@pytest.mark.parametrize("passes", ["0", "abc", "10001"])
def test_demo_refuses_bad_max_passes(passes: str) -> None:
    refused(invoke(["demo", "mnist", "--max-passes", passes]), "--max-passes", code=2)


def test_demo_refuses_a_data_dir_that_is_a_file(tmp_path: Path) -> None:
    a_file = tmp_path / "afile"
    a_file.write_text("x")
    refused(invoke(["demo", "mnist", "--data-dir", str(a_file)]), "cannot start the embedded server", str(a_file))


def test_demo_train_and_test_files_of_one_name_stay_apart() -> None:
    from openaml.cli.demo import input_uri

    train, test = input_uri("train", Path("a/mnist.csv")), input_uri("test", Path("b/mnist.csv"))
    assert train != test and train.endswith("/mnist.csv") and test.endswith("/mnist.csv")
    assert input_uri("train", Path("train.csv.gz")).endswith(".gz")  # the service reads .gz as gzip


def workflow() -> Any:
    spec = importlib.util.spec_from_file_location("mnist_workflow", REPO / "examples" / "mnist" / "workflow.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("text", "problem"), [
    ("label\n1\n2\n", "has 2 labels for 3 test rows"),
    ("a,b,c\n1,2,x\n3,4,y\n5,6,z\n", "has no 'label' column"),
    ("ImageId,Label\n1,7\n3,1\n2,0\n", "row 2 is ImageId 3, not 2"),
    ("label\n1\n2\n3\n4\n", "has 4 labels for 3 test rows"),
])
def test_test_labels_that_do_not_fit_the_predictions_are_a_problem(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(text)
    truth, mismatch = workflow().read_labels(path, 3)
    assert truth == [] and mismatch is not None and problem in mismatch


def test_test_labels_are_read_in_both_layouts(tmp_path: Path) -> None:
    read_labels = workflow().read_labels
    for text in ("label\n7\n1\n0\n", "ImageId,Label\r\n1,7\r\n2,1\r\n3,0\r\n"):
        path = tmp_path / "labels.csv"
        path.write_text(text)
        assert read_labels(path, 3) == (["7", "1", "0"], None)


# guess-schema

def guess(tmp_path: Path, name: str, data: bytes, *args: str) -> Result:
    path = tmp_path / name
    path.write_bytes(data)
    return invoke(["guess-schema", str(path), *args])


def test_guess_schema_refuses_more_attributes_than_the_service_takes(tmp_path: Path) -> None:
    header = ",".join(f"c{i}" for i in range(1001)) + "\n"
    row = ",".join("1" for _ in range(1001)) + "\n"
    result = guess(tmp_path, "wide.csv", (header + row).encode())
    refused(result, "1001 attributes; the limit is 1000")
    assert result.stdout == ""


def test_guess_schema_refuses_one_column_as_target_and_row_id(tmp_path: Path) -> None:
    refused(guess(tmp_path, "a.csv", b"a,b\n1,x\n2,y\n", "--target", "a", "--row-id", "a"),
            "'a' cannot be both the target and the row id")


def test_guess_schema_reads_gzip_by_name_as_the_service_does(tmp_path: Path) -> None:
    data = b"a,b\n1,x\n2,y\n"
    refused(guess(tmp_path, "zipped.csv", gzip.compress(data)), "gzip-compressed but its name does not end in .gz")
    refused(guess(tmp_path, "plain.csv.gz", data), "ends in .gz but the file is not gzip-compressed")
    assert json.loads(guess(tmp_path, "good.csv.gz", gzip.compress(data)).stdout)["dataFileContainsHeader"]


@pytest.mark.parametrize(("data", "warning"), [
    (b"a,b\n1,2,3\n4,5\n", "the service rejects the 2 record(s) with fewer fields"),
    (b'a,b\n1,"two\nlines"\n3,x\n', "spanning lines: the service reads one record per line and rejects these"),
    # a decimal-comma locale's CSV: told as the console tells it
    (b"a;b;y\n1,5;2;0\n3;4,25;1\n", "the file may be separated by semicolons (with decimal commas, perhaps)"),
    (b"a\tb\ty\n1\t2\t0\n", "the file may be separated by tabs"),
])
def test_guess_schema_warns_of_records_the_service_rejects(tmp_path: Path, data: bytes, warning: str) -> None:
    result = guess(tmp_path, "odd.csv", data)
    assert result.exit_code == 0, result.output
    assert warning in result.stderr
    assert json.loads(result.stdout)["attributes"]  # stdout stays a schema


# bench

def test_bench_refuses_an_output_folder_that_does_not_exist_before_running(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from openaml.cli import bench

    def started() -> Path:
        raise AssertionError("the benchmark started")

    monkeypatch.setattr(bench, "bench_dir", started)
    for option in ("--out", "--markdown"):
        result = invoke(["bench", "--quick", option, str(tmp_path / "missing" / "b.json")])
        refused(result, f"{option} {tmp_path / 'missing' / 'b.json'}: the folder", "does not exist", code=2)


# helper processes

def test_a_helper_whose_parent_is_already_gone_leaves_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.sys, "platform", "other")  # no death signal set on the test process
    with pytest.raises(SystemExit):
        cli.die_with_parent(os.getpid())  # this process is not its own parent


def test_a_helper_stops_its_server_once_its_parent_is_gone() -> None:
    class Server:
        should_exit = False

    server = Server()
    cli.leave_with_parent(os.getpid(), server, interval=0.01)  # type: ignore[arg-type]
    assert server.should_exit


def test_ctrl_c_after_the_command_loaded_leaves_quietly_with_status_130(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while the server was being built printed click's "Aborted!" and exited 1."""
    import openaml.app

    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(openaml.app, "build_app", interrupted)
    result = serve(tmp_path)
    assert result.exit_code == 130, result.output
    assert "Aborted" not in result.output and "Traceback" not in result.output
