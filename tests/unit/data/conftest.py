import pytest
from data_ingest_helpers import make_schema


@pytest.fixture
def two_columns():
    return make_schema({"a": "CATEGORICAL", "b": "NUMERIC"})
