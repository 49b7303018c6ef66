"""An ingest uses the threads its caller gives it (ml/execution.py), and gives the same result
with one or two."""

import io
import threading
import time

import pytest
from data_ingest_helpers import make_object, make_schema

from openaml.ml.data import ParseOptions, ingest, parse_rearrangement, read_materialized
from openaml.ml.execution import Execution, two_at_a_time

ROWS = 3000
SPLIT = '{"splitting": {"percentBegin": 10, "percentEnd": 80, "strategy": "random"}}'  # needs a count


def _line(i: int) -> str:
    """Lines for every path: plain, white space and quotes (trimmed), bad lines (general)."""
    if i % 997 == 0 and i < ROWS // 2:
        return f"{i},x\n"                                # another field count: rejected
    if i % 101 == 0 and i < ROWS // 2:
        return f'{i}, {"abc"[i % 3]} ,"word{i % 7}, more",{i % 2}\n'
    return f"{i},{'abc'[i % 3]},word{i % 7}{'_more' if i > ROWS // 2 else ' more'},{i % 2}\n"


def _ingest(threads: int, block_bytes: int = 1 << 24) -> tuple[dict, list, set[str]]:
    content = "".join(map(_line, range(ROWS))).encode()
    schema = make_schema({"n": "NUMERIC", "c": "CATEGORICAL", "t": "TEXT", "y": "BINARY"}, target="y")
    names: set[str] = set()

    def progress(_: int) -> None:
        names.update(t.name for t in threading.enumerate() if t is not threading.current_thread())

    sink = io.BytesIO()
    before = {t.name for t in threading.enumerate()}
    report = ingest([make_object("d.csv", content)], schema, parse_rearrangement(SPLIT), True, sink,
                    progress, execution=Execution(threads), parsing=ParseOptions(block_bytes=block_bytes))
    sink.seek(0)
    return report.to_dict(), [b.to_pydict() for b in read_materialized(sink)], names - before


@pytest.fixture(scope="module")
def one_and_two():
    return _ingest(1), _ingest(2)


@pytest.mark.parametrize("block_bytes", [700, 4096])
def test_blocks_parsed_two_at_a_time_come_out_in_order(block_bytes):
    """Many small blocks, parsed on two threads by every path, give the one-thread result."""
    (report1, rows1, _), (report2, rows2, _) = _ingest(1, block_bytes), _ingest(2, block_bytes)
    paths = report2["blocksByPath"]
    assert sum(1 for count in paths.values() if count) == 3 and sum(paths.values()) > 10, paths
    assert report1 == report2 and rows1 == rows2


def test_the_first_block_is_parsed_alone_then_two_at_once():
    """The first block settles the reader's probes, so no other starts before it ends; after
    it, two blocks are parsed at once, and the results keep the blocks' order."""
    events: list[tuple[str, int]] = []
    running, most = [0], [0]
    lock = threading.Lock()

    def parse(number: int) -> int:
        with lock:
            events.append(("start", number))
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.02 if number % 2 else 0.05)
        with lock:
            running[0] -= 1
            events.append(("end", number))
        return number * 10

    assert list(two_at_a_time(parse, iter(range(8)), Execution(2), ahead=3, first_alone=True)) == \
        [n * 10 for n in range(8)]
    assert events[:2] == [("start", 0), ("end", 0)] and most[0] == 2


def test_one_thread_starts_no_other(one_and_two):
    (_, _, started), _ = one_and_two
    assert started == set()


def test_two_threads_read_ahead(one_and_two):
    _, (_, _, started) = one_and_two
    assert started   # the read-ahead (and record count) helpers


def test_the_result_is_the_same_with_one_or_two(one_and_two):
    (report1, rows1, _), (report2, rows2, _) = one_and_two
    assert report1 == report2 and rows1 == rows2
