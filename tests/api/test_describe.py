"""Describe*: every filter variable and comparator, sorting, paging, paginators and waiters."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError, WaiterError

from tests.api.conftest import error_code
from tests.api.test_entities import CSV, SCHEMA


@pytest.fixture(scope="module")
def family(server: Any, ml: Any) -> dict[str, Any]:
    """Seven datasources with names a..g over two locations, created a few ms apart."""
    server.context.objects.write_bytes("s3://describe/one.csv", CSV)
    server.context.objects.write_bytes("s3://describe/two.csv", CSV)
    prefix = f"fam{int(time.time() * 1000)}"
    ids = []
    for i, letter in enumerate("gfedcba"):
        ds_id = f"{prefix}-{letter}"
        uri = "s3://describe/one.csv" if i % 2 else "s3://describe/two.csv"
        ml.create_data_source_from_s3(
            DataSourceId=ds_id, DataSourceName=f"{prefix}-name-{letter}",
            DataSpec={"DataLocationS3": uri, "DataSchema": SCHEMA})
        ids.append(ds_id)
        time.sleep(0.005)
    return {"prefix": prefix, "ids": ids}


def names(results: list[dict[str, Any]]) -> list[str]:
    return [r["Name"] for r in results]


def test_prefix_and_sort(ml: Any, family: dict[str, Any]) -> None:
    prefix = family["prefix"]
    asc = ml.describe_data_sources(FilterVariable="Name", Prefix=f"{prefix}-name-")["Results"]
    assert names(asc) == [f"{prefix}-name-{c}" for c in "abcdefg"]
    dsc = ml.describe_data_sources(FilterVariable="Name", Prefix=f"{prefix}-name-",
                                   SortOrder="dsc")["Results"]
    assert names(dsc) == [f"{prefix}-name-{c}" for c in "gfedcba"]


def test_comparators_combine(ml: Any, family: dict[str, Any]) -> None:
    p = family["prefix"]
    got = ml.describe_data_sources(FilterVariable="Name", GE=f"{p}-name-b", LT=f"{p}-name-e")
    assert names(got["Results"]) == [f"{p}-name-{c}" for c in "bcd"]
    got = ml.describe_data_sources(FilterVariable="Name", GT=f"{p}-name-e", LE=f"{p}-name-g")
    assert names(got["Results"]) == [f"{p}-name-f", f"{p}-name-g"]
    got = ml.describe_data_sources(FilterVariable="Name", EQ=f"{p}-name-c")
    assert names(got["Results"]) == [f"{p}-name-c"]
    got = ml.describe_data_sources(FilterVariable="Name", Prefix=f"{p}-name-", NE=f"{p}-name-c")
    assert f"{p}-name-c" not in names(got["Results"]) and len(got["Results"]) == 6


def test_data_location_filter(ml: Any, family: dict[str, Any]) -> None:
    got = ml.describe_data_sources(FilterVariable="DataLocationS3", EQ="s3://describe/one.csv")
    ours = [r for r in got["Results"] if r["DataSourceId"].startswith(family["prefix"])]
    assert len(ours) == 3


def test_time_filters(ml: Any, family: dict[str, Any]) -> None:
    everything = ml.describe_data_sources(FilterVariable="Name", Prefix=family["prefix"])["Results"]
    everything.sort(key=lambda r: r["CreatedAt"])
    middle = everything[3]["CreatedAt"]
    since = ml.describe_data_sources(FilterVariable="CreatedAt", GE=str(middle.timestamp()))
    ids = {r["DataSourceId"] for r in since["Results"]}
    assert {r["DataSourceId"] for r in everything[3:]} <= ids
    assert everything[0]["DataSourceId"] not in ids
    iso = middle.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    before = ml.describe_data_sources(FilterVariable="CreatedAt", LT=iso)["Results"]
    assert everything[0]["DataSourceId"] in {r["DataSourceId"] for r in before}
    assert everything[3]["DataSourceId"] not in {r["DataSourceId"] for r in before}
    with pytest.raises(ClientError) as err:
        ml.describe_data_sources(FilterVariable="CreatedAt", Prefix="2026")
    assert error_code(err) == "InvalidInputException"
    with pytest.raises(ClientError) as err:
        ml.describe_data_sources(FilterVariable="CreatedAt", GT="yesterday")
    assert error_code(err) == "InvalidInputException"
    # epoch seconds are read as numbers are written: float()'s other forms are refused
    seconds = middle.timestamp()
    for written in (f"{seconds:.3f}", f"+{seconds:.3f}", f"{seconds / 1e9:.12f}e9", f" {seconds:.3f} "):
        found = ml.describe_data_sources(FilterVariable="CreatedAt", GE=written)["Results"]
        assert {r["DataSourceId"] for r in found} == ids, written
    for odd in ("1_700_000_000", "١٧٠٠٠٠٠٠٠٠", "１７００００００００", "infinity", "0x10"):
        with pytest.raises(ClientError) as err:
            ml.describe_data_sources(FilterVariable="CreatedAt", GE=odd)
        assert error_code(err) == "InvalidInputException", odd


def test_paging_with_tokens_and_paginator(ml: Any, family: dict[str, Any]) -> None:
    p = family["prefix"]
    seen: list[str] = []
    token = None
    while True:
        kwargs = {"NextToken": token} if token else {}
        page = ml.describe_data_sources(FilterVariable="Name", Prefix=p, Limit=3, **kwargs)
        assert len(page["Results"]) <= 3
        seen += names(page["Results"])
        token = page.get("NextToken")
        if not token:
            break
    assert seen == [f"{p}-name-{c}" for c in "abcdefg"]
    pages = ml.get_paginator("describe_data_sources").paginate(
        FilterVariable="Name", Prefix=p, PaginationConfig={"PageSize": 2})
    assert [n for page in pages for n in names(page["Results"])] == seen
    with pytest.raises(ClientError) as err:
        ml.describe_data_sources(FilterVariable="Name", Prefix="other", NextToken=page_token(ml, p))
    assert error_code(err) == "InvalidInputException"
    with pytest.raises(ClientError) as err:
        ml.describe_data_sources(NextToken="garbage!")
    assert error_code(err) == "InvalidInputException"


def page_token(ml: Any, prefix: str) -> str:
    return ml.describe_data_sources(FilterVariable="Name", Prefix=prefix, Limit=1)["NextToken"]


@pytest.mark.parametrize(("call", "fragment"), [
    (lambda ml: ml.describe_data_sources(FilterVariable="MLModelType", EQ="BINARY"), "FilterVariable"),
    (lambda ml: ml.describe_data_sources(EQ="x"), "FilterVariable"),
    (lambda ml: ml.describe_ml_models(Limit=101), "Limit"),
    (lambda ml: ml.describe_evaluations(FilterVariable="DataLocationS3", EQ="x"), "FilterVariable"),
])
def test_bad_describe_requests(ml: Any, call: Callable[[Any], Any], fragment: str) -> None:
    with pytest.raises(ClientError) as err:
        call(ml)
    assert error_code(err) == "InvalidInputException"
    assert fragment in err.value.response["Error"]["Message"]


def test_every_filter_variable_is_accepted(ml: Any) -> None:
    variables = {
        "describe_data_sources": ["CreatedAt", "LastUpdatedAt", "Status", "Name", "DataLocationS3",
                                  "IAMUser"],
        "describe_ml_models": ["CreatedAt", "LastUpdatedAt", "Status", "Name", "IAMUser",
                               "TrainingDataSourceId", "RealtimeEndpointStatus", "MLModelType",
                               "Algorithm", "TrainingDataURI"],
        "describe_evaluations": ["CreatedAt", "LastUpdatedAt", "Status", "Name", "IAMUser",
                                 "MLModelId", "DataSourceId", "DataURI"],
        "describe_batch_predictions": ["CreatedAt", "LastUpdatedAt", "Status", "Name", "IAMUser",
                                       "MLModelId", "DataSourceId", "DataURI"],
    }
    for operation, names_ in variables.items():
        for variable in names_:
            value = "1" if variable in ("CreatedAt", "LastUpdatedAt") else "x"
            result = getattr(ml, operation)(FilterVariable=variable, GE=value)
            assert isinstance(result["Results"], list)


def test_waiter_succeeds_and_fails(ml: Any, put_object: Callable[[str, bytes], str],
                                   uid: Callable[[str], str]) -> None:
    good = put_object(f"s3://describe/{uid('w')}.csv", CSV)
    name = uid("waited")
    ml.create_data_source_from_s3(DataSourceId=uid("ds"), DataSourceName=name,
                                  DataSpec={"DataLocationS3": good, "DataSchema": SCHEMA})
    ml.get_waiter("data_source_available").wait(
        FilterVariable="Name", EQ=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    bad_name = uid("broken")
    ml.create_data_source_from_s3(DataSourceId=uid("ds"), DataSourceName=bad_name,
                                  DataSpec={"DataLocationS3": "s3://describe/nothing-here.csv",
                                            "DataSchema": SCHEMA})
    with pytest.raises(WaiterError):
        ml.get_waiter("data_source_available").wait(
            FilterVariable="Name", EQ=bad_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
