"""AddTags, DeleteTags, DescribeTags and their limits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.api.conftest import error_code
from tests.api.test_entities import CSV, SCHEMA


@pytest.fixture
def ds_id(ml: Any, put_object: Callable[[str, bytes], str], uid: Callable[[str], str]) -> str:
    uri = put_object(f"s3://tags/{uid('t')}.csv", CSV)
    ds = uid("ds")
    ml.create_data_source_from_s3(DataSourceId=ds, DataSpec={"DataLocationS3": uri, "DataSchema": SCHEMA})
    return ds


def tags_of(ml: Any, ds_id: str) -> list[dict[str, str]]:
    return ml.describe_tags(ResourceId=ds_id, ResourceType="DataSource")["Tags"]


def test_add_replace_delete(ml: Any, ds_id: str) -> None:
    assert tags_of(ml, ds_id) == []
    answer = ml.add_tags(ResourceId=ds_id, ResourceType="DataSource",
                         Tags=[{"Key": "team", "Value": "digits"}, {"Key": "stage"},
                               {"Key": "Émoji ok", "Value": "a b_c.d:e/f=g+h-i@j"}])
    assert answer["ResourceId"] == ds_id and answer["ResourceType"] == "DataSource"
    assert tags_of(ml, ds_id) == [{"Key": "team", "Value": "digits"}, {"Key": "stage"},
                                  {"Key": "Émoji ok", "Value": "a b_c.d:e/f=g+h-i@j"}]
    ml.add_tags(ResourceId=ds_id, ResourceType="DataSource", Tags=[{"Key": "team", "Value": "x"}])
    assert tags_of(ml, ds_id)[0] == {"Key": "team", "Value": "x"}
    ml.delete_tags(ResourceId=ds_id, ResourceType="DataSource", TagKeys=["team", "absent"])
    assert [t["Key"] for t in tags_of(ml, ds_id)] == ["stage", "Émoji ok"]
    ml.delete_data_source(DataSourceId=ds_id)
    ml.add_tags(ResourceId=ds_id, ResourceType="DataSource", Tags=[{"Key": "kept", "Value": "1"}])
    assert "kept" in [t["Key"] for t in tags_of(ml, ds_id)]


@pytest.mark.parametrize("tag", [
    {"Key": "bad<key>", "Value": "v"},
    {"Key": "k", "Value": "semi;colon"},
    {"Key": "aws:reserved", "Value": "v"},
    {"Key": "k" * 129, "Value": "v"},
    {"Key": "k", "Value": "v" * 257},
    {"Value": "no key"},
])
def test_invalid_tags(ml: Any, ds_id: str, tag: dict[str, str]) -> None:
    with pytest.raises(ClientError) as err:
        ml.add_tags(ResourceId=ds_id, ResourceType="DataSource", Tags=[tag])
    assert error_code(err) == "InvalidTagException"
    assert tags_of(ml, ds_id) == []


def test_tag_limit(ml: Any, ds_id: str) -> None:
    ml.add_tags(ResourceId=ds_id, ResourceType="DataSource",
                Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(45)])
    with pytest.raises(ClientError) as err:
        ml.add_tags(ResourceId=ds_id, ResourceType="DataSource",
                    Tags=[{"Key": f"n{i}", "Value": "v"} for i in range(6)])
    assert error_code(err) == "TagLimitExceededException"
    assert len(tags_of(ml, ds_id)) == 45
    ml.add_tags(ResourceId=ds_id, ResourceType="DataSource",
                Tags=[{"Key": f"n{i}", "Value": "v"} for i in range(5)])
    assert len(tags_of(ml, ds_id)) == 50
    with pytest.raises(ClientError) as err:
        ml.add_tags(ResourceId=ds_id, ResourceType="DataSource",
                    Tags=[{"Key": f"z{i}", "Value": "v"} for i in range(101)])
    assert error_code(err) == "InvalidInputException"


def test_wrong_resource_type_is_not_found(ml: Any, ds_id: str) -> None:
    with pytest.raises(ClientError) as err:
        ml.describe_tags(ResourceId=ds_id, ResourceType="MLModel")
    assert error_code(err) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as err:
        ml.describe_tags(ResourceId=ds_id, ResourceType="Dataset")
    assert error_code(err) == "InvalidInputException"
