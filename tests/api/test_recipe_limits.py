"""CreateMLModel refuses recipes that would expand or nest without bound with
InvalidInputException, quickly and without building them; modest recipes still train."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from openaml.app import Application
from tests.api.conftest import error_code, wait_for

CATEGORICALS = 32


@pytest.fixture(scope="module")
def datasource(server: Application, ml: Any) -> str:
    """A COMPLETED datasource (with statistics) of 32 CATEGORICAL inputs, a NUMERIC and a
    BINARY target."""
    names = [f"c{i}" for i in range(CATEGORICALS)]
    rows = [",".join([f"v{(r * (i + 1)) % 3}" for i in range(CATEGORICALS)] + [str(r), str(r % 2)])
            for r in range(60)]
    server.context.objects.write_bytes("s3://recipes/wide.csv", "\n".join(rows).encode() + b"\n")
    attributes = [{"attributeName": n, "attributeType": "CATEGORICAL"} for n in names]
    attributes += [{"attributeName": "n0", "attributeType": "NUMERIC"},
                   {"attributeName": "y", "attributeType": "BINARY"}]
    schema = json.dumps({"version": "1.0", "targetAttributeName": "y", "dataFormat": "CSV",
                         "dataFileContainsHeader": False, "attributes": attributes})
    ml.create_data_source_from_s3(DataSourceId="ds-recipe-limits", ComputeStatistics=True, DataSpec={
        "DataLocationS3": "s3://recipes/wide.csv", "DataSchema": schema})
    found = wait_for(lambda: ml.get_data_source(DataSourceId="ds-recipe-limits"))
    assert found["Status"] == "COMPLETED", found.get("Message")
    return "ds-recipe-limits"


def create(ml: Any, uid: Callable[[str], str], datasource: str, **recipe: str) -> str:
    model_id = uid("recipe")
    ml.create_ml_model(MLModelId=model_id, MLModelType="BINARY", TrainingDataSourceId=datasource,
                       **recipe)
    return model_id


@pytest.mark.parametrize("recipe, fragment", [
    # a: 1,024 variables, b: a million (the old code built them, +150 MiB, then refused)
    ({"assignments": {"a": "cartesian(ALL_CATEGORICAL,ALL_CATEGORICAL)", "b": "cartesian(a,a)"},
      "outputs": ["b"]}, "expands to 1048576 variables"),
    ({"outputs": ["lowercase(" * 600 + "c0" + ")" * 600]}, "nested more than"),
    ({"assignments": {"a0": "lowercase(c0)", **{f"a{i}": f"lowercase(a{i - 1})" for i in range(1, 600)}},
      "outputs": ["a599"]}, "characters; at most"),
    ({"outputs": ["quantile_bin(n0, \u00b2)"]}, "must start with a letter"),
])
def test_unbounded_recipes_are_invalid_input(ml: Any, uid: Callable[[str], str], datasource: str,
                                             recipe: dict, fragment: str) -> None:
    with pytest.raises(ClientError) as err:
        create(ml, uid, datasource, Recipe=json.dumps(recipe))
    assert error_code(err) == "InvalidInputException"
    assert fragment in err.value.response["Error"]["Message"]


def test_deeply_nested_json_is_invalid_input(ml: Any, uid: Callable[[str], str],
                                             datasource: str) -> None:
    text = '{"outputs": ["c0"], "notes": ' + "[" * 600 + "]" * 600 + "}"
    with pytest.raises(ClientError) as err:
        create(ml, uid, datasource, Recipe=text)
    assert error_code(err) == "InvalidInputException"
    assert "nests JSON arrays or objects" in err.value.response["Error"]["Message"]


def test_recipe_uri_is_read_no_further_than_a_recipe(server: Application, ml: Any,
                                                     uid: Callable[[str], str], datasource: str) -> None:
    server.context.objects.write_bytes("s3://recipes/huge.json", b" " * (1 << 20) + b"{}")
    with pytest.raises(ClientError) as err:
        create(ml, uid, datasource, RecipeUri="s3://recipes/huge.json")
    assert error_code(err) == "InvalidInputException"
    assert "RecipeUri s3://recipes/huge.json is larger than" in err.value.response["Error"]["Message"]


def test_a_modest_cartesian_still_trains(ml: Any, uid: Callable[[str], str], datasource: str) -> None:
    recipe = {"assignments": {"pairs": "cartesian(ALL_CATEGORICAL, ALL_CATEGORICAL)"},
              "outputs": ["ALL_CATEGORICAL", "pairs", "quantile_bin(n0, 5)"]}
    model_id = create(ml, uid, datasource, Recipe=json.dumps(recipe))
    model = wait_for(lambda: ml.get_ml_model(MLModelId=model_id))
    assert model["Status"] == "COMPLETED", model.get("Message")
