"""NUMERIC fields read by the compiled parser (schema.values._numeric) against the rules: the
regular expression NUMBER_PATTERN, then Arrow's correctly rounded cast, finite numbers only."""

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from openaml.ml.schema.values import NUMBER_PATTERN, _numeric

PATTERN = re.compile(NUMBER_PATTERN)
texts = st.text(alphabet="0123456789+-.eE x\u0661", max_size=8) | st.sampled_from(
    ["1", "-2.5", "+.5", "5.", ".", "1e5", "1E+05", "1e", "e5", "--1", "1.2.3", " 1", "1e400", "-0", "0e999",
     "1e-400", "9007199254740993", "9007199254740992", "0.1", "1e22", "1e23", "1e-22", "1e-23",
     "00012.5000", "123456789012345678901", "1234567890123456789", "12345678901234567890e-5",
     # 19 significant digits past int64's largest (they once wrapped to negative numbers)
     "9999999999999999999", "-9999999999999999999", "9300000000000000000", "999999999999999999.9",
     "953230856121.3383145", "9596349712381823860e-7", "0.0000009223372036854775808",
     "2.2250738585072014e-308", "1.7976931348623157e308", "1.7976931348623159e308", "4.9e-324"])


def _digits(draw_digits: str, point: int, power: int | None, sign: str) -> str:
    text = draw_digits[:point] + "." + draw_digits[point:] if point < len(draw_digits) else draw_digits
    return sign + text + ("" if power is None else f"e{power}")


decimals = st.builds(_digits, st.text(alphabet="0123456789", min_size=1, max_size=24), st.integers(0, 25),
                     st.none() | st.integers(-330, 330), st.sampled_from(["", "-", "+"]))
floats = st.floats(allow_nan=False, allow_infinity=False).map(repr) | st.floats(
    allow_nan=False, allow_infinity=False, width=32).map(lambda v: f"{v:.9g}")


def expected(value: str | None) -> float | None:
    """The rules, value by value: the pattern, then Arrow's cast, finite."""
    if value is None or PATTERN.fullmatch(value) is None:
        return None
    number = pc.cast(pa.array([value]), pa.float64())[0].as_py()
    return number if np.isfinite(number) else None


@settings(max_examples=600, deadline=None)
@given(values=st.lists(st.none() | texts | decimals | floats, max_size=20), start=st.integers(0, 3),
       large=st.booleans())
def test_numbers_are_read_as_the_pattern_and_arrows_cast_read_them(values, start, large):
    column = pa.array(values, pa.large_string() if large else pa.string()).slice(start)
    got = _numeric(column)
    wanted = [expected(v) for v in values[start:]]
    numbers = got.values.to_pylist()
    assert [None if v is None else np.float64(v).tobytes() for v in numbers] == [
        None if v is None else np.float64(v).tobytes() for v in wanted]  # bit for bit: -0.0 too
    assert got.invalid.to_pylist() == [v is not None and w is None for v, w in zip(values[start:], wanted)]


def test_an_array_without_characters():
    got = _numeric(pa.array([None, ""], pa.string()))
    assert got.values.to_pylist() == [None, None] and got.invalid.to_pylist() == [False, True]
    empty = _numeric(pa.array([], pa.string()))
    assert len(empty.values) == 0 and empty.values.type == pa.float64()


def _coded(values: list[str | None]) -> pa.DictionaryArray:
    return pa.array(values, pa.string()).dictionary_encode()


def test_slices_of_one_stored_batch_parse_its_dictionary_once(monkeypatch):
    """A stored batch read as several slices shares one dictionary: its entries are coerced
    once, and each slice still gets its own rows' numbers."""
    from openaml.ml.schema import AttributeType, values
    calls = []
    parse = values._numeric
    monkeypatch.setattr(values, "_numeric", lambda column: (calls.append(len(column)), parse(column))[1])
    batch = _coded([f"{i % 700}.5" if i % 9 else "x" for i in range(2000)])
    first, second = batch.slice(0, 1200), batch.slice(1200)
    got = [values.coerce_column(part, AttributeType.NUMERIC) for part in (first, second)]
    assert calls == [700 + 1]  # one call, over the dictionary's distinct entries
    expected = [None if i % 9 == 0 else i % 700 + 0.5 for i in range(2000)]
    assert got[0].values.to_pylist() + got[1].values.to_pylist() == expected
    assert got[0].invalid.to_pylist() + got[1].invalid.to_pylist() == [i % 9 == 0 for i in range(2000)]


def test_slices_read_as_floats_parse_their_dictionary_once(monkeypatch):
    """coerce_floats (training's and scoring's reads) remembers a batch's float entries as
    coerce_column remembers its coerced ones, apart from them: read both ways, each is right."""
    from openaml.ml.schema import AttributeType, values
    calls = []
    parse = values._parsed
    monkeypatch.setattr(values, "_parsed", lambda column: (calls.append(len(column)), parse(column))[1])
    batch = _coded([f"{i % 700}.5" if i % 9 else None if i % 2 else "x" for i in range(2000)])
    got = np.concatenate([values.coerce_floats(batch.slice(0, 1203), AttributeType.NUMERIC),
                          values.coerce_floats(batch.slice(1203), AttributeType.NUMERIC)])
    assert calls == [700 + 1]
    expected = [np.nan if i % 9 == 0 else i % 700 + 0.5 for i in range(2000)]
    assert np.array_equal(got, expected, equal_nan=True)
    coerced = values.coerce_column(batch, AttributeType.NUMERIC)
    assert calls == [700 + 1, 700 + 1]
    assert coerced.invalid.to_pylist() == [i % 18 == 0 for i in range(2000)]


def test_dictionaries_of_the_same_size_are_not_mistaken_for_each_other():
    """Another batch's dictionary (same length, other buffers), or the same one read as another
    type, is coerced anew, also once many others have been remembered since."""
    from openaml.ml.schema import AttributeType, values
    a, b = _coded(["1", "2", "3"]), _coded(["7", "8", "9"])
    assert values.coerce_column(a, AttributeType.NUMERIC).values.to_pylist() == [1.0, 2.0, 3.0]
    assert values.coerce_column(b, AttributeType.NUMERIC).values.to_pylist() == [7.0, 8.0, 9.0]
    assert values.coerce_column(a, AttributeType.CATEGORICAL).values.to_pylist() == ["1", "2", "3"]
    for k in range(values.DICTIONARIES_KEPT + 5):
        assert values.coerce_column(_coded([str(k)]), AttributeType.NUMERIC).values.to_pylist() == [k]
    assert values.coerce_column(a, AttributeType.NUMERIC).values.to_pylist() == [1.0, 2.0, 3.0]


def test_two_threads_reading_slices_of_one_batch_wait_for_one_coercion(monkeypatch):
    """Scored two at a time, both slices of a stored batch ask for its dictionary at once:
    one parses it, the other waits for that result."""
    import threading
    import time

    from openaml.ml.schema import AttributeType, values
    calls = []
    parse = values._numeric

    def slow(column):
        calls.append(len(column))
        time.sleep(0.2)
        return parse(column)

    monkeypatch.setattr(values, "_numeric", slow)
    batch = _coded([f"{i}.25" for i in range(3000)])
    got: dict[int, list] = {}
    threads = [threading.Thread(target=lambda k=k: got.__setitem__(k, values.coerce_column(
        batch.slice(1500 * k, 1500), AttributeType.NUMERIC).values.to_pylist())) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == [3000] and got[0] + got[1] == [i + 0.25 for i in range(3000)]


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.none() | texts | st.sampled_from(["yes", "No", "TRUE", "f", "0", "1", "maybe"]),
                       max_size=30),
       start=st.integers(0, 11), encoded=st.booleans(), chunked=st.booleans(),
       kind=st.sampled_from(["NUMERIC", "BINARY"]))
def test_coerce_floats_gives_coerce_columns_values(values, start, encoded, chunked, kind):
    """The compiled gather of a dictionary's float entries (and the plain path) give the same
    numbers as coerce_column, NaN where a field is missing or invalid: slices (their validity
    bits starting past a byte's first), nulls in the indices, unused dictionary entries,
    yes/no values, chunks."""
    from openaml.ml.schema import AttributeType, coerce_column, coerce_floats

    attr_type = AttributeType[kind]
    column = pa.array(values, pa.string())
    column = (column.dictionary_encode() if encoded else column).slice(start)
    given_column = pa.chunked_array([column]) if chunked else column
    expected = pc.cast(coerce_column(column, attr_type).values, pa.float64()).to_pylist()
    got = coerce_floats(given_column, attr_type)
    assert got.dtype == np.float64 and len(got) == len(expected)
    assert [None if np.isnan(v) else v for v in got.tolist()] == expected


def test_coerce_floats_of_a_dictionary_with_a_missing_index_and_an_invalid_entry():
    from openaml.ml.schema import AttributeType, coerce_floats

    column = pa.DictionaryArray.from_arrays(pa.array([0, None, 2, 1, 0], pa.int32()),
                                            pa.array(["1.5", "x", "-2e3"], pa.string()))
    got = coerce_floats(column, AttributeType.NUMERIC)
    assert np.array_equal(got, [1.5, np.nan, -2000.0, np.nan, 1.5], equal_nan=True)
    # indices too narrow for the NaN entry after a full dictionary (int8: 128 entries)
    wide = pa.DictionaryArray.from_arrays(pa.array([127, None, 0], pa.int8()),
                                          pa.array([str(i) for i in range(128)], pa.string()))
    assert np.array_equal(coerce_floats(wide, AttributeType.NUMERIC), [127.0, np.nan, 0.0], equal_nan=True)


def test_coerce_floats_gives_writable_arrays_of_their_own():
    """One kind of array whichever path read the column: a read-only view of Arrow's buffer
    is another type to the compiled kernels (compiled again after the warm-up)."""
    from openaml.ml.schema import AttributeType, coerce_floats

    for column in (pa.array(["1.5", None]), pa.array(["1.5", None]).dictionary_encode(),
                   pa.array(["1.5", "2"]).dictionary_encode()):
        assert coerce_floats(column, AttributeType.NUMERIC).flags.writeable


def test_a_dictionary_of_numbers_not_strings_reads_as_coerce_column_reads_it():
    """A dictionary of another type than strings is cast first, as coerce_column casts it."""
    from openaml.ml.schema import AttributeType, coerce_column, coerce_floats

    column = pa.array([3, None, 7, 3], pa.int64()).dictionary_encode()
    got = coerce_floats(column, AttributeType.NUMERIC)
    expected = pc.cast(coerce_column(column, AttributeType.NUMERIC).values, pa.float64()).to_pylist()
    assert np.array_equal(got, [3.0, np.nan, 7.0, 3.0], equal_nan=True) and expected == [3.0, None, 7.0, 3.0]
