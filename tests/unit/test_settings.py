"""Settings.from_env: every OPENAML_* variable and serve option is checked where it is read,
and a refusal names the option and its variable."""

from __future__ import annotations

import pytest

from openaml.settings import RANGES, ConfigurationError, Settings

OUT_OF_RANGE = [
    ("port", "-1"), ("port", "70000"), ("workers", "0"), ("workers", "-3"), ("workers", "100000000"),
    ("job_threads", "0"), ("job_threads", "9"), ("training_memory", "-5"), ("training_memory", "1000"),
    ("console_upload_bytes", "-1"), ("max_body_bytes", "0"), ("predict_rate_limit", "-5"),
    ("tag_limit", "-1"), ("endpoint_delay_seconds", "-1"), ("endpoint_delay_seconds", "nan"),
    ("http_workers", "0"), ("http_workers", "-2"), ("job_lease_seconds", "nan"),
    ("job_lease_seconds", "inf"), ("job_lease_seconds", "0.5"), ("partition_bytes", "0"),
]
OPTIONS = {"port", "workers", "predict_rate_limit", "http_workers"}


def test_every_numeric_setting_has_a_range_tested() -> None:
    assert {name for name, _ in OUT_OF_RANGE} == set(RANGES)


@pytest.mark.parametrize(("name", "raw"), OUT_OF_RANGE)
def test_a_variable_out_of_its_range_is_refused(name: str, raw: str) -> None:
    variable = f"OPENAML_{name.upper()}"
    with pytest.raises(ConfigurationError, match=rf"{variable}\) must be|^{variable} must be") as err:
        Settings.from_env({variable: raw})
    if name in OPTIONS:
        assert f"--{name.replace('_', '-')} ({variable})" in str(err.value)


@pytest.mark.parametrize(("name", "value"), [("workers", 0), ("http_workers", -2), ("port", 70000),
                                             ("predict_rate_limit", -5)])
def test_an_option_out_of_its_range_is_refused(name: str, value: int) -> None:
    option = f"--{name.replace('_', '-')} (OPENAML_{name.upper()})"
    with pytest.raises(ConfigurationError, match=rf"^{option.replace('(', '[(]').replace(')', '[)]')} must be"):
        Settings.from_env({}, **{name: value})


@pytest.mark.parametrize(("name", "raw"), [("port", "0"), ("port", "65535"), ("job_threads", "1"),
                                           ("training_memory", "0"), ("training_memory", str(64 << 20)),
                                           ("predict_rate_limit", "0"), ("job_lease_seconds", "1"),
                                           ("endpoint_delay_seconds", "0.5"), ("http_workers", "64")])
def test_values_in_range_are_taken(name: str, raw: str) -> None:
    assert str(getattr(Settings.from_env({f"OPENAML_{name.upper()}": raw}), name)) in (raw, str(float(raw)))


def test_the_least_training_memory_is_the_jobs_least_budget() -> None:
    from openaml.jobs.memory import MIN_BUDGET

    assert RANGES["training_memory"][0] == MIN_BUDGET


def test_a_negative_training_memory_given_directly_is_refused_at_start_up(tmp_path) -> None:
    from openaml.app import build_app

    with pytest.raises(ConfigurationError, match="OPENAML_TRAINING_MEMORY must be 0"):
        build_app(Settings(data_dir=tmp_path, training_memory=-5).resolved(), run_jobs=False)


@pytest.mark.parametrize(("raw", "expected"), [("true", True), ("TRUE", True), ("1", True), ("yes", True),
                                               ("false", False), ("False", False), ("0", False), ("no", False)])
def test_booleans_take_their_spellings(raw: str, expected: bool) -> None:
    assert Settings.from_env({"OPENAML_CSV_FAST_PATHS": raw}).csv_fast_paths is expected


@pytest.mark.parametrize("raw", ["ture", "", "off-ish", "2"])
def test_a_boolean_typo_is_refused_not_read_as_false(raw: str) -> None:
    with pytest.raises(ConfigurationError, match="OPENAML_CSV_FAST_PATHS must be true or false"):
        Settings.from_env({"OPENAML_CSV_FAST_PATHS": raw})


@pytest.mark.parametrize("name", ["DATA_DIR", "CREDENTIALS_FILE", "DATABASES_FILE"])
@pytest.mark.parametrize("raw", ["", "  "])
def test_an_empty_path_variable_is_refused(name: str, raw: str) -> None:
    with pytest.raises(ConfigurationError, match=f"OPENAML_{name}.* is empty"):
        Settings.from_env({f"OPENAML_{name}": raw})


@pytest.mark.parametrize("raw", ["abc", "1.5", ""])
def test_a_whole_number_that_is_not_one_is_refused(raw: str) -> None:
    with pytest.raises(ConfigurationError, match=r"--workers \(OPENAML_WORKERS\) must be a whole number"):
        Settings.from_env({"OPENAML_WORKERS": raw})


@pytest.mark.parametrize("url", ["not a url", "example.com:8080", "http://", "ftp://h/", "http://h:99999",
                                 "http://h:8080/?q=1", ""])
def test_an_advertised_url_must_be_an_http_url_with_a_host(url: str) -> None:
    message = r"--advertise-url \(OPENAML_ADVERTISE_URL\) must be an http\(s\) URL with a host"
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_env({}, advertise_url=url)
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_env({"OPENAML_ADVERTISE_URL": url})


@pytest.mark.parametrize("url", ["http://ml.example.com", "https://ml.example.com:8443/base/", "http://[::1]:8080"])
def test_advertised_urls_are_taken(url: str) -> None:
    assert Settings.from_env({}, advertise_url=url).advertise_url == url


@pytest.mark.parametrize("origin", ["app.example.com", "https://app.example.com/path", "ftp://app.example.com",
                                    "http://app.example.com:0", "http://user@app.example.com", "http://"])
def test_a_cors_origin_must_be_one_as_browsers_send_it(origin: str) -> None:
    message = r"--cors-origins \(OPENAML_CORS_ORIGINS\): an origin is scheme://host\[:port\]"
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_env({}, cors_origins=f"http://ok.example, {origin}")
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_env({"OPENAML_CORS_ORIGINS": origin})


def test_cors_origins_are_read_as_browsers_send_them() -> None:
    """Separated by commas or spaces, lower-cased, without a trailing slash, each once; any
    origin ('*') only with access keys."""
    found = Settings.from_env({"OPENAML_CORS_ORIGINS": "https://App.example.com/, http://localhost:3000 "
                                                       "http://localhost:3000"}).cors_origins
    assert found == ("https://app.example.com", "http://localhost:3000")
    with pytest.raises(ConfigurationError, match=r"--cors-origins \(OPENAML_CORS_ORIGINS\) \* would let every"):
        Settings.from_env({}, cors_origins="*")
    assert Settings.from_env({"OPENAML_ACCESS_KEYS": "AKIAX:secret"}, cors_origins="*").cors_origins == ("*",)


def test_an_s3_endpoint_must_be_a_url_or_aws() -> None:
    with pytest.raises(ConfigurationError, match=r"--s3-endpoint-url \(OPENAML_S3_ENDPOINT_URL\) must be"):
        Settings.from_env({"OPENAML_S3_ENDPOINT_URL": "not a url"})
    for url in ("aws", "http://127.0.0.1:9000"):
        assert Settings.from_env({}, s3_endpoint_url=url).s3_endpoint_url == url


@pytest.mark.parametrize(("uri", "message"), [("s3://bucket/p", "end it with '/'"),
                                              ("/tmp/x", "not an s3://BUCKET/KEY URI")])
def test_the_artifacts_uri_must_be_an_s3_folder(uri: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=rf"--artifacts-uri \(OPENAML_ARTIFACTS_URI\).*{message}"):
        Settings.from_env({"OPENAML_ARTIFACTS_URI": uri})
    assert Settings.from_env({}, artifacts_uri="s3://bucket/p/").artifacts_uri == "s3://bucket/p/"


def test_a_dask_scheduler_without_the_dask_executor_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"--dask-scheduler \(OPENAML_DASK_SCHEDULER\) is only used "
                                                 r"with --executor dask"):
        Settings.from_env({"OPENAML_DASK_SCHEDULER": "tcp://10.0.0.5:8786"})
    with pytest.raises(ConfigurationError, match="only used with --executor dask"):
        Settings.from_env({}, dask_scheduler="tcp://10.0.0.5:8786", executor="local")
    given = Settings.from_env({"OPENAML_EXECUTOR": "dask"}, dask_scheduler="tcp://10.0.0.5:8786")
    assert given.dask_scheduler == "tcp://10.0.0.5:8786"


def test_an_unknown_executor_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"--executor \(OPENAML_EXECUTOR\) must be one of local, dask"):
        Settings.from_env({"OPENAML_EXECUTOR": "spark"})


def test_an_option_wins_over_its_variable() -> None:
    settings = Settings.from_env({"OPENAML_PORT": "18097", "OPENAML_WORKERS": "3"}, port=18098)
    assert (settings.port, settings.workers) == (18098, 3)
