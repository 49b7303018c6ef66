"""An ingest uses the threads its caller gives it (ml/execution.py), and gives the same result
with one or two."""

import io
import threading

import pytest
from data_ingest_helpers import make_object, make_schema

from openaml.ml.data import ingest, parse_rearrangement, read_materialized
from openaml.ml.execution import Execution

ROWS = 3000
SPLIT = '{"splitting": {"percentBegin": 10, "percentEnd": 80, "strategy": "random"}}'  # needs a count


def _ingest(threads: int) -> tuple[dict, list, set[str]]:
    content = "".join(f"{i},{'abc'[i % 3]},word{i % 7} more,{i % 2}\n" for i in range(ROWS)).encode()
    schema = make_schema({"n": "NUMERIC", "c": "CATEGORICAL", "t": "TEXT", "y": "BINARY"}, target="y")
    names: set[str] = set()

    def progress(_: int) -> None:
        names.update(t.name for t in threading.enumerate() if t is not threading.current_thread())

    sink = io.BytesIO()
    before = {t.name for t in threading.enumerate()}
    report = ingest([make_object("d.csv", content)], schema, parse_rearrangement(SPLIT), True, sink,
                    progress, execution=Execution(threads))
    sink.seek(0)
    return report.to_dict(), [b.to_pydict() for b in read_materialized(sink)], names - before


@pytest.fixture(scope="module")
def one_and_two():
    return _ingest(1), _ingest(2)


def test_one_thread_starts_no_other(one_and_two):
    (_, _, started), _ = one_and_two
    assert started == set()


def test_two_threads_read_ahead(one_and_two):
    _, (_, _, started) = one_and_two
    assert started   # the read-ahead (and record count) helpers


def test_the_result_is_the_same_with_one_or_two(one_and_two):
    (report1, rows1, _), (report2, rows2, _) = one_and_two
    assert report1 == report2 and rows1 == rows2
