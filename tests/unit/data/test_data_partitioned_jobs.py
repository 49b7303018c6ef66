"""The job side of datasources read in partitions: every step reads the objects the plan cut
(a file changed meanwhile fails the read), and a datasource deleted during a shared read
leaves the others' reads going."""

from __future__ import annotations

import io

import pytest
from data_ingest_helpers import make_schema
from test_data_partitions import seekable_object

from openaml.cluster import merge_partition_results
from openaml.ml.data import DataError, Target, parse_rearrangement
from openaml.ml.data.ingest import ingest_partition
from openaml.ml.data.partitions import ByteRange, Partition
from openaml.ml.errors import InputError
from openaml.runtime import open_runtime
from openaml.settings import Settings


@pytest.fixture
def runtime(tmp_path):
    opened = open_runtime(Settings(data_dir=tmp_path).resolved(), workers=1)
    yield opened
    opened.store.close()


def test_a_file_changed_since_the_plan_fails_the_read(runtime) -> None:
    uri = "s3://bucket/data.csv"
    runtime.objects.write_bytes(uri, b"1,2\n3,4\n")
    assert runtime.tasks._unchanged((uri, "data.csv", 8), 3)[3].size == 8
    runtime.objects.write_bytes(uri, b"1,2\n3,4\n5,6\n")
    with pytest.raises(DataError, match=r"data.csv changed while the datasource was read \(it had 8 bytes, it has 12"):
        runtime.tasks._unchanged((uri, "data.csv", 8), 3)
    runtime.objects.delete(uri)
    with pytest.raises(DataError, match="it has none: it is gone"):
        runtime.tasks._unchanged((uri, "data.csv", 8), 3)


def test_a_deleted_datasource_drops_out_of_a_shared_read_and_the_others_go_on(runtime) -> None:
    schema = make_schema({"a": "NUMERIC", "b": "NUMERIC"})
    obj = seekable_object("data.csv", b"1,2\n3,4\n")
    partition = Partition(ByteRange(0, 0, None), 0, 1, 2)
    found = [ingest_partition([obj], partition, 2, schema, [Target(parse_rearrangement(None), True, io.BytesIO())])[0]
             for _ in range(2)]
    merged = merge_partition_results([found[0], None], [found[1], found[1]])
    assert merged[1] is None and merged[0] is not None and merged[0].records == 4
    results = runtime.tasks.finish_partitions([None], [("s3://bucket/data.csv", "data.csv", 8)], [None], 1)
    assert isinstance(results[0], InputError) and "deleted" in str(results[0])
