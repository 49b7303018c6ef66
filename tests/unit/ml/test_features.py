import json

import numpy as np
import pyarrow as pa
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from openaml.ml.features import fit_pipeline
from openaml.ml.features import tokens as tk
from openaml.ml.features.values import Columns
from openaml.ml.recipes import parse_recipe

from .conftest import make_batch, make_schema


def tokens_of(tl: tk.TokenList) -> list[list[str]]:
    out: list[list[str]] = [[] for _ in range(tl.n_rows)]
    for v, r in zip(tl.values.to_pylist(), tl.rows.tolist()):
        out[r].append(v)
    return out


def test_ngram_osb_no_punct_lowercase_cartesian():
    text = pa.array(["I really enjoyed reading this book", None, "solo"])
    grams = tokens_of(tk.ngrams(tk.tokenize(text), 3))
    assert sorted(grams[0]) == sorted([
        "I", "really", "enjoyed", "reading", "this", "book", "I really", "really enjoyed",
        "enjoyed reading", "reading this", "this book", "I really enjoyed",
        "really enjoyed reading", "enjoyed reading this", "reading this book"])
    assert grams[1] == [] and grams[2] == ["solo"]
    osb = tokens_of(tk.osb(tk.tokenize(pa.array(["The quick brown fox jumps over the lazy dog"])), 4))[0]
    assert len(osb) == 21 and "The___fox" in osb and "the__dog" in osb and osb.count("lazy_dog") == 1
    cleaned = tk.no_punct(tk.tokenize(pa.array(["Welcome to Amazon ML - please fasten your seat-belts!"])))
    assert tokens_of(cleaned)[0] == ["Welcome", "to", "Amazon", "ML", "please", "fasten", "your", "seat-belts"]
    assert tokens_of(tk.lowercase(tk.tokenize(pa.array(["The Quick"]))))[0] == ["the", "quick"]
    left = tk.no_punct(tk.tokenize(pa.array(["Economics: Principles, Problems", "Fun With", "x"])))
    right = tk.from_values(pa.array(["Hardcover", "Softcover", None]))
    assert tokens_of(tk.cartesian(left, right)) == [
        ["Economics_Hardcover", "Principles_Hardcover", "Problems_Hardcover"],
        ["Fun_Softcover", "With_Softcover"], []]


def test_coded_tokens_give_the_features_of_plain_ones(monkeypatch):
    """ASCII text's dictionary-encoded tokens (the compiled scan's) give the vocabularies and
    the features that plain tokens (Arrow's split) give, through every text function."""
    from openaml.ml.data import token_counts

    schema = make_schema([("t", "TEXT"), ("c", "CATEGORICAL"), ("y", "BINARY")], targetAttributeName="y")
    recipe = parse_recipe(json.dumps({"outputs": [
        "t", "lowercase(t)", "no_punct(lowercase(t))", "ngram(t, 3)", "osb(no_punct(t), 3)", "cartesian(t, c)"]}),
        schema)
    rng = np.random.default_rng(2)
    words = ["Red", "red", "RED!", "...", "blue,", "-", "x", "Y-z"]
    batch = make_batch({"t": [None if i % 9 == 0 else " ".join(rng.choice(words, rng.integers(0, 6)))
                              for i in range(200)],
                        "c": [str(rng.choice(["p", "q"])) for _ in range(200)], "y": ["1"] * 200})

    def fitted_rows():
        pipeline = fit_pipeline(recipe.outputs, schema, lambda: iter([Columns(batch, schema)]))
        return pipeline.feature_names(), pipeline.rows(batch)

    assert pa.types.is_dictionary(tk.tokenize(batch.column("t")).values.type)
    coded = fitted_rows()
    monkeypatch.setattr(token_counts, "tokenize", lambda column: None)  # every column to Arrow
    assert tk.tokenize(batch.column("t")).values.type == pa.string()
    names, rows = fitted_rows()
    assert coded[0] == names and len(names) > 50
    assert all(np.array_equal(a, b) for a, b in zip(coded[1], rows) if a is not None)


def test_pipeline_features_names_and_values():
    schema = make_schema([("age", "NUMERIC"), ("job", "CATEGORICAL"), ("title", "TEXT"),
                          ("b", "BINARY"), ("y", "BINARY")], targetAttributeName="y")
    recipe = parse_recipe(json.dumps({"outputs": [
        "age", "job", "title", "b", "quantile_bin(age, 5)", "cartesian(job, b)"]}), schema)
    batch = make_batch({"age": ["1", "2", "3", "4", None, "x"], "job": ["a", "b", "a", None, "c", "b"],
                        "title": ["red red blue", "", None, "blue", "green", "red"],
                        "b": ["yes", "no", "T", None, "bad", "1"], "y": ["1"] * 6})
    p = fit_pipeline(recipe.outputs, schema, lambda: iter([Columns(batch, schema)]))
    names = p.feature_names()
    assert p.name_sizes().tolist() == [len(n.encode("utf-8")) for n in names]
    assert names[:9] == ["age", "job=a", "job=b", "job=c", "title:blue", "title:green",
                         "title:red", "b", "quantile_bin(age,5)=0"]
    assert names[-3:] == ["cartesian(job,b):a_1", "cartesian(job,b):b_0", "cartesian(job,b):b_1"]
    assert p.params["quantile_bin(age,5)"]["boundaries"] == list(np.quantile([1, 2, 3, 4], [.2, .4, .6, .8]))
    x = p.transform(batch).toarray()
    mean, std = 2.5, np.std([1, 2, 3, 4])
    assert np.allclose(x[:, 0], [(1 - mean) / std, (2 - mean) / std, (3 - mean) / std, (4 - mean) / std, 0, 0])
    assert x[0, names.index("title:red")] == 1.0  # distinct tokens are indicators
    assert x[:, names.index("b")].tolist() == [1, 0, 1, 0, 0, 1]
    assert x[4, names.index("job=c")] == 1 and x[3, 1:4].sum() == 0
    assert x[0, names.index("cartesian(job,b):a_1")] == 1
    # unseen values are ignored; missing columns are missing everywhere
    other = pa.record_batch({"job": pa.array(["zzz", "a"])})
    y = p.transform(other).toarray()
    assert y[0].sum() == 0 and y[1, names.index("job=a")] == 1 and y.shape == (2, len(names))


def test_dictionary_columns_and_type_override():
    schema = make_schema([("p", "CATEGORICAL"), ("y", "CATEGORICAL")], targetAttributeName="y")
    recipe = parse_recipe('{"outputs": ["ALL_CATEGORICAL"]}', schema)
    plain = make_batch({"p": ["0", "253", "0"], "y": ["a", "b", "a"]})
    p = fit_pipeline(recipe.outputs, schema, lambda: iter([Columns(plain, schema)]))
    encoded = pa.record_batch({"p": pa.array(["253", None, "0"]).dictionary_encode()})
    assert p.transform(encoded).toarray().tolist() == [[0, 1], [0, 0], [1, 0]]


def test_complete_rows_and_chunked_transform(monkeypatch):
    # every source present in every row takes the dense fast path; chunks must stack identically
    schema = make_schema([("a", "NUMERIC"), ("c", "CATEGORICAL"), ("y", "BINARY")], targetAttributeName="y")
    recipe = parse_recipe('{"outputs": ["a", "c"]}', schema)
    batch = make_batch({"a": ["1", "2", "3", "5", "9"], "c": ["u", "v", "u", "w", "v"], "y": ["1"] * 5})
    p = fit_pipeline(recipe.outputs, schema, lambda: iter([Columns(batch, schema)]))
    a = np.array([1, 2, 3, 5, 9.0])
    expected = np.zeros((5, 4))
    expected[:, 0] = (a - a.mean()) / a.std()
    expected[np.arange(5), [1 + "uvw".index(v) for v in "uvuwv"]] = 1
    assert np.allclose(p.transform(batch).toarray(), expected)
    monkeypatch.setattr("openaml.ml.features.pipeline.CHUNK_ENTRIES", 4)  # 2 sources: 2 rows at once
    assert np.allclose(p.transform(batch).toarray(), expected)
    chunks = [sp.csr_matrix((np.ones(len(i)) if v is None else v, i, ptr), shape=(len(ptr) - 1, 4)).toarray()
              for ptr, i, v in p.row_chunks(batch)]
    assert len(chunks) == 3 and np.allclose(np.vstack(chunks), expected)


def test_dictionary_columns_fit_and_transform_like_plain_strings():
    """Dictionary-encoded columns are coded together per batch: the vocabularies and features
    equal those of the same values as plain strings, with dictionaries that differ per batch,
    hold values no row uses (a split keeps the whole dictionary), nulls and unseen values."""
    schema = make_schema([("p", "CATEGORICAL"), ("q", "CATEGORICAL"), ("y", "CATEGORICAL")],
                         targetAttributeName="y")
    recipe = parse_recipe('{"outputs": ["ALL_CATEGORICAL", "cartesian(p, q)"]}', schema)
    rows = [{"p": ["0", "7", None, "0"], "q": ["7", "x", "x", None], "y": ["a", "b", "a", "b"]},
            {"p": ["9", "0", "é", "0"], "q": ["0", "0", "y", "7"], "y": ["b", "b", "a", "a"]}]

    def encoded(columns: dict[str, list[str | None]]) -> pa.RecordBatch:
        arrays = {}
        for name, values in columns.items():
            extra = pa.array(values + ["never used"]).dictionary_encode()  # unused entry
            arrays[name] = extra.slice(0, len(values))
        return pa.record_batch(arrays)

    plain = [make_batch(r) for r in rows]
    coded = [encoded(r) for r in rows]
    assert all(pa.types.is_dictionary(b.column(0).type) for b in coded)
    from_plain = fit_pipeline(recipe.outputs, schema, lambda: (Columns(b, schema) for b in plain))
    from_coded = fit_pipeline(recipe.outputs, schema, lambda: (Columns(b, schema) for b in coded))
    assert from_coded.feature_names() == from_plain.feature_names()
    assert "p=never used" not in from_coded.feature_names()
    assert from_coded.feature_names()[:4] == ["p=0", "p=7", "p=9", "p=é"]
    assert from_coded.name_sizes()[:4].tolist() == [3, 3, 3, 4]  # bytes, not characters
    unseen = {"p": ["5", "é", None], "q": ["x", "never used", "0"], "y": ["a"] * 3}
    for batch_plain, batch_coded in zip([*plain, make_batch(unseen)], [*coded, encoded(unseen)]):
        assert (from_plain.transform(batch_plain).toarray()
                == from_coded.transform(batch_coded).toarray()).all()


def test_cartesian_of_long_texts_is_refused_before_it_is_made(monkeypatch):
    """10,000 tokens on each side of one record would make 100,000,000 pairs (gigabytes):
    past MAX_RECORD_PAIRS for one record, whatever the batch."""
    text = pa.array([" ".join(f"w{i}" for i in range(10_000))])
    words = tk.tokenize(text)
    with pytest.raises(tk.RecordTooLarge, match="100,000,000 token pairs for one record"):
        tk.cartesian(words, words)
    monkeypatch.setattr(tk, "MAX_CARTESIAN_PAIRS", 100_000_000)
    small = tk.tokenize(pa.array(["a b", "c"]))
    assert tokens_of(tk.cartesian(small, small)) == [["a_a", "a_b", "b_a", "b_b"], ["c_c"]]


@pytest.mark.parametrize("in_row_order", [False, True])
@pytest.mark.parametrize("token_sources", [0, 1, 2])
@pytest.mark.parametrize("with_values", [True, False])
@pytest.mark.parametrize("seed", range(5))
def test_rows_assemble_like_the_sparse_sum(seed, with_values, token_sources, in_row_order):
    """csr_rows gives the CSR arrays the scipy sum of the dense part and the tokens once gave:
    ids ascending per row, one indicator per distinct (row, token), a NUMERIC Scalar's value
    standardized (0 for a zero std) where present, a BINARY one's 1 where true, dense zeros
    dropped where there are values and token sources (kept where there are no token
    sources); tokens in any order of rows, or in row order (tokenize's, not bucketed)."""
    from openaml.ml.features.rows import Scalar, csr_rows

    rng = np.random.default_rng(seed)
    n, width = int(rng.integers(1, 40)), 200
    # dense part: 3 sources with ids in 0-29, 30-59, 60-89 or -1 (none); one given per
    # dictionary entry; when with_values, the first a NUMERIC Scalar, the last a BINARY one
    ids = [np.where(rng.random(n) < 0.7, rng.integers(s * 30, s * 30 + 30, n), -1) for s in range(3)]
    data = np.ones((n, 3))
    entries = rng.integers(0, 4, n).astype(np.int32)
    per_entry = np.array([-1, 33, 35, 59])
    ids[1] = per_entry[entries]
    given = [ids[0], (per_entry, entries), ids[2]]
    if with_values:
        numbers = rng.choice([np.nan, 0.0, -0.0, 1.5, -2.0, 3.5], n)
        mean, std = (1.5, 2.0) if seed % 2 else (3.0, 0.0)
        flags = rng.choice([np.nan, 0.0, 1.0], n)
        given[0], given[2] = Scalar(numbers, 7, True, mean, std), Scalar(flags, 61, False)
        ids[0] = np.where(np.isnan(numbers), -1, 7)
        ids[2] = np.where(flags > 0, 61, -1)
        data[:, 0] = (numbers - mean) / std if std > 0 else 0.0
    # tokens: ids 100-199, rows in any order, repeats (seed 0: long texts, a sort per row)
    count = int(rng.integers(0, 5 * n)) if seed else 3000
    rows = [rng.integers(0, n, count) for _ in range(token_sources)]
    if in_row_order:
        rows = [np.sort(r) for r in rows]
    tokens = [rng.integers(100 + 50 * k, 150 + 50 * k, count) for k in range(token_sources)]
    got = csr_rows(given, n, rows, tokens)
    present = np.stack(ids, axis=1) >= 0
    dense = sp.csr_matrix((data[present], np.stack(ids, axis=1)[present],
                           np.concatenate(([0], np.cumsum(present.sum(axis=1))))), shape=(n, width))
    expected = dense
    if token_sources:
        keys = np.unique(np.concatenate(rows) * width + np.concatenate(tokens))
        expected = (dense + sp.csr_matrix((np.ones(len(keys)), (keys // width, keys % width)),
                                          shape=(n, width))).tocsr()
    assert np.array_equal(got[0], expected.indptr) and np.array_equal(got[1], expected.indices)
    assert (got[2] is None) == (not with_values)
    if with_values:
        assert np.array_equal(got[2], expected.data)


@pytest.mark.parametrize("sources", [0, 1, 3])
def test_rows_of_indicators_in_every_row(sources):
    """Every source in every row, indicators only, no tokens (pixels): the id matrix as it is."""
    from openaml.ml.features.rows import csr_rows

    ids = [np.arange(5) * 0 + 10 * s + np.arange(5) % 3 for s in range(sources)]
    indptr, indices, values = csr_rows([(np.arange(3) + 10 * s, np.arange(5) % 3) for s in range(sources)],
                                       5, [], [])
    assert indptr.tolist() == [sources * i for i in range(6)] and values is None
    assert indices.tolist() == (np.stack(ids, axis=1).ravel().tolist() if sources else [])


@pytest.mark.parametrize("outputs", [1, 3])
@pytest.mark.parametrize("in_row_order", [False, True])
@pytest.mark.parametrize("layout", ["DDD", "TDDD", "DTDD", "DDDT", "TDTDDT", "DD", "T", ""])
@pytest.mark.parametrize("seed", range(4))
def test_source_scores_are_the_linear_scores_of_the_rows(seed, layout, in_row_order, outputs):
    """source_scores adds each source's weights to its rows: the scores linear_scores gives of
    csr_rows' rows, bit for bit (the same sums in the same order), with token sources
    anywhere among the others, in any order of rows, with repeats and long texts; Scalars
    NUMERIC (missing, zero, a zero std, a mean past SAFE_MAGNITUDE) and BINARY; ids absent."""
    from openaml.ml.features.rows import Scalar, csr_rows, source_scores
    from openaml.ml.linear import linear_scores

    rng = np.random.default_rng(seed)
    n, span = int(rng.integers(0, 40)), 30
    given, token_rows, token_ids, token_at = [], [], [], []
    for position, kind in enumerate(layout):  # each source owns ids [30 p, 30 p + 30)
        start = position * span
        if kind == "T":
            count = int(rng.integers(0, 5 * n + 1)) if seed else 40 * n  # seed 0: long texts
            rows = rng.integers(0, max(n, 1), count) if n else np.zeros(0, np.int64)
            token_rows.append(np.sort(rows) if in_row_order else rows)
            token_ids.append(rng.integers(start, start + span, count))
            token_at.append(len(given))
            continue
        choice = len(given) % 4
        if choice == 0 and seed % 2:
            numbers = rng.choice([np.nan, 0.0, -0.0, 1.5, -2.0, 3.5, 1e300], n)
            mean, std = [(1.5, 2.0), (3.0, 0.0), (2.0**500, 2.0**490), (0.0, 1.0)][seed]
            given.append(Scalar(numbers, start, True, mean, std))
        elif choice == 1 and seed % 2:
            given.append(Scalar(rng.choice([np.nan, 0.0, 1.0], n), start, False))
        elif choice == 2:
            per_entry = np.array([-1, start + 3, start + 5, start + 29])
            given.append((per_entry, rng.integers(0, 4, n).astype(np.int32)))
        else:
            given.append(np.where(rng.random(n) < 0.7, rng.integers(start, start + span, n), -1))
    weights = rng.normal(size=(max(1, len(layout)) * span, outputs)) * 10.0 ** rng.integers(-3, 4, (1, outputs))
    bias = rng.normal(size=outputs)
    expected = linear_scores(csr_rows(given, n, [r.copy() for r in token_rows], [t.copy() for t in token_ids]),
                             weights, bias)
    got = source_scores(given, n, token_rows, token_ids, token_at, weights, bias)
    assert got.shape == (n, outputs) and np.array_equal(got, expected)


def test_source_scores_refuse_token_sources_out_of_order():
    """A token source's place among the others must ascend and lie within them: one out of
    order would be left out of the scores, not added."""
    from openaml.ml.features.rows import source_scores

    weights, bias = np.ones((10, 1)), np.zeros(1)
    tokens = ([np.array([0]), np.array([0])], [np.array([5]), np.array([6])])
    for token_at in ([1, 0], [3, 3]):
        with pytest.raises(ValueError, match="token sources out of order"):
            source_scores([np.array([1]), np.array([2])], 1, *tokens, token_at, weights, bias)
    assert source_scores([np.array([1]), np.array([2])], 1, *tokens, [0, 2], weights, bias).tolist() == [[4.0]]


def test_pipeline_scores_are_those_of_its_rows(text_schema, monkeypatch):
    """FeaturePipeline.scores and score_chunks give linear_scores of rows() and row_chunks()
    bit for bit: text and a cartesian product among the other sources, halves of a batch
    whose pairs are too many at once, chunks of a large batch."""
    from openaml.ml.features import pipeline as module
    from openaml.ml.features import tokens as tokens_module
    from openaml.ml.linear import linear_scores

    rng = np.random.default_rng(5)
    n = 300
    batch = make_batch({"age": [str(v) if v % 7 else None for v in rng.integers(18, 90, n)],
                        "job": [f"j{v}" if v else None for v in rng.integers(0, 6, n)],
                        "title": [" ".join(f"w{a}" for a in rng.integers(0, 12, rng.integers(0, 6)))
                                  for _ in range(n)],
                        "b": [["yes", "no", "x"][v] for v in rng.integers(0, 3, n)],
                        "y": ["1", "0"] * (n // 2)})
    recipe = parse_recipe(json.dumps({"outputs": ["quantile_bin(age,10)", "lowercase(title)", "normalize(age)",
                                                  "cartesian(title, job)", "job", "b", "age"]}), text_schema)
    pipeline = fit_pipeline(recipe.outputs, text_schema, lambda: iter([Columns(batch, text_schema)]))
    weights, bias = rng.normal(size=(pipeline.n_features, 3)), rng.normal(size=3)
    expected = linear_scores(pipeline.rows(batch), weights, bias)
    assert np.array_equal(pipeline.scores(batch, weights, bias), expected)
    monkeypatch.setattr(module, "CHUNK_ENTRIES", 7 * 64)  # 7 sources: chunks of 64 rows
    assert np.array_equal(np.concatenate(list(pipeline.score_chunks(batch, weights, bias))), expected)
    assert np.array_equal(np.concatenate([linear_scores(rows, weights, bias) for rows in pipeline.row_chunks(batch)]),
                          expected)
    monkeypatch.setattr(tokens_module, "MAX_CARTESIAN_PAIRS", 100)  # a cartesian of 300 records made in halves
    halves = []
    monkeypatch.setattr(module.Columns, "halves", lambda self, original=module.Columns.halves: (
        halves.append(self.n_rows) or original(self)))
    assert np.array_equal(pipeline.scores(batch, weights, bias), expected) and halves


def test_chunks_of_a_large_batch_score_like_the_whole(text_schema, monkeypatch):
    """row_chunks reads NUMERIC and BINARY values once per batch and slices them: the chunks'
    rows are the rows of the whole batch."""
    from openaml.ml.features import pipeline as module

    monkeypatch.setattr(module, "MAX_CHUNK_ROWS", 4096)
    n = module.MAX_CHUNK_ROWS * 2 + 17
    rng = np.random.default_rng(4)
    batch = make_batch({"age": [str(v) if v % 7 else None for v in rng.integers(18, 90, n)],
                        "job": [f"j{v}" for v in rng.integers(0, 5, n)],
                        "title": [f"w{a} w{b}" for a, b in rng.integers(0, 9, (n, 2))],
                        "b": [["yes", "no", "x"][v] for v in rng.integers(0, 3, n)],
                        "y": ["1", "0"] * (n // 2) + ["1"]})
    recipe = parse_recipe(json.dumps({"outputs": ["quantile_bin(age,10)", "normalize(age)", "job",
                                                  "b", "lowercase(title)"]}), text_schema)
    pipeline = fit_pipeline(recipe.outputs, text_schema, lambda: iter([Columns(batch, text_schema)]))
    whole = pipeline.rows(batch)
    pieces = list(pipeline.row_chunks(batch))
    assert len(pieces) == 3
    assert np.array_equal(np.concatenate([p[1] for p in pieces]), whole[1])
    assert np.array_equal(np.concatenate([p[2] for p in pieces]), whole[2])


def test_a_small_slice_reads_its_own_numbers(text_schema, monkeypatch):
    """A slice much smaller than its batch's dictionary converts its own values, not every
    entry of the shared dictionary; the values are the same either way."""
    import openaml.ml.features.values as values_module
    import openaml.ml.schema.values as coercion

    column = pa.array([str(v) for v in range(1000)] + [None, "x"]).dictionary_encode()
    batch = pa.record_batch({"age": column, "b": pa.array(["yes"] * 1002).dictionary_encode()})
    converted = []
    original = coercion._numeric
    monkeypatch.setattr(coercion, "_numeric", lambda raw: converted.append(len(raw)) or original(raw))
    part = batch.slice(995, 7)
    got = values_module.Columns(part, text_schema).get("age")
    assert converted == [7]
    assert np.array_equal(got[:5], [995, 996, 997, 998, 999]) and np.isnan(got[5:]).all()
    whole = values_module.Columns(batch, text_schema).get("age")
    assert np.array_equal(whole[995:], got, equal_nan=True)


def _buffers(value) -> list[pa.Buffer]:
    arrays = value.columns if isinstance(value, pa.RecordBatch) else [value]
    found = []
    for array in arrays:
        found += [b for b in array.buffers() if b is not None]
        if pa.types.is_dictionary(array.type):
            found += _buffers(array.dictionary)
    return found


def test_read_records_keep_no_part_of_the_batch_they_came_from(text_schema, tmp_path):
    """Columns.read keeps copies of what training needs, not slices: a batch read from an IPC
    stream is one buffer, which any slice kept for training would keep whole (raw numbers,
    attributes the recipe does not use included)."""
    from openaml.ml.data import read_materialized
    from openaml.ml.data.ingest import materialized_schema
    from openaml.ml.data.materialized import open_writer

    coded = pa.DictionaryArray.from_arrays(pa.array([0, 1, 0, 1], pa.int32()), pa.array(["x", "y"]))
    batch = pa.record_batch(
        [pa.array([0] * 4, pa.int32()), pa.array([False] * 4), coded.cast(pa.dictionary(pa.int32(), pa.string())),
         coded, pa.array(["a b", "c", None, "d e"]), coded, coded],
        schema=materialized_schema(text_schema))
    path = tmp_path / "stored.arrows"
    with open(path, "wb") as sink, open_writer(sink, batch.schema) as writer:
        writer.write_batch(batch)
    read, = read_materialized(path)
    spans = [(b.address, b.address + b.size) for b in _buffers(read)]
    columns = Columns(read, text_schema).read(["age", "job", "title"], ["y"])
    kept = _buffers(columns.batch) + _buffers(columns.get("job"))
    assert kept and not any(start <= b.address < end for b in kept for start, end in spans)
    assert columns.batch.schema.names == ["y"] and columns.n_rows == 4
    assert columns.get("job").to_pylist() == ["x", "y", "x", "y"]
    assert columns.get("title").values.to_pylist() == ["a", "b", "c", "d", "e"]
    with pytest.raises(KeyError, match="'b' was neither read nor kept"):
        columns.get("b")  # dropped: never silently missing
    # a slice of a batch shares its whole dictionary: what is kept holds only the slice's values
    part = Columns(read.slice(1, 1), text_schema).read(["job"], ["y"])
    assert part.get("job").dictionary.to_pylist() == ["y"]
    assert part.batch.column(0).dictionary.to_pylist() == ["y"]


def test_quantile_bins_become_their_features_directly():
    """A quantile_bin source's rows go from bin number to feature id (no categories looked
    up): the ids are those of its bins' labels in its vocabulary, trimmed ones and missing
    values give none."""
    schema = make_schema([("x", "NUMERIC"), ("y", "BINARY")], targetAttributeName="y")
    values = [str(v) for v in range(40)] + [None, "oops"]
    batch = make_batch({"x": values, "y": ["1"] * len(values)})
    recipe = parse_recipe('{"outputs": ["quantile_bin(x,5)", "x"]}', schema)
    pipeline = fit_pipeline(recipe.outputs, schema, lambda: iter([Columns(batch, schema)]))
    keep = np.ones(pipeline.n_features, bool)
    keep[pipeline.feature_names().index("quantile_bin(x,5)=2")] = False
    trimmed = pipeline.select(keep)
    names = trimmed.feature_names()
    boundaries = trimmed.params["quantile_bin(x,5)"]["boundaries"]
    rows = trimmed.transform(batch).tolil().rows
    for value, found in zip(values, rows):
        number = float(value) if value not in (None, "oops") else None
        expected = []
        if number is not None:
            label = f"quantile_bin(x,5)={int(np.searchsorted(boundaries, number, side='right'))}"
            expected = [names.index(name) for name in (label, "x") if name in names]
        assert found == expected, value


def test_read_records_keep_a_batch_of_categories_as_it_is(tmp_path):
    """Copies are made only when they free most of the batch: a batch of categories that are
    all read (MNIST's pixels) is kept as read, not copied column by column."""
    from openaml.ml.data import read_materialized
    from openaml.ml.data.ingest import materialized_schema
    from openaml.ml.data.materialized import open_writer

    schema = make_schema([(f"p{i}", "CATEGORICAL") for i in range(3)] + [("y", "CATEGORICAL")],
                         targetAttributeName="y")
    coded = pa.DictionaryArray.from_arrays(pa.array([0, 1, 0, 1], pa.int32()), pa.array(["0", "255"]))
    batch = pa.record_batch([pa.array([0] * 4, pa.int32()), pa.array([False] * 4)] + [coded] * 4,
                            schema=materialized_schema(schema))
    path = tmp_path / "stored.arrows"
    with open(path, "wb") as sink, open_writer(sink, batch.schema) as writer:
        writer.write_batch(batch)
    read, = read_materialized(path)
    columns = Columns(read, schema).read(["p0", "p1", "p2"], ["y"])
    assert columns.get("p1").indices.buffers()[1].address == read.column("p1").indices.buffers()[1].address
    assert columns.batch.column(0).indices.buffers()[1].address == read.column("y").indices.buffers()[1].address


def test_with_two_threads_quantile_boundaries_are_fitted_two_at_once(monkeypatch):
    """Each binned attribute's values are sorted on a thread of its own (the sorts release the
    GIL), two at a time: a barrier of two is passed only when both sorts run together."""
    import threading

    from openaml.ml.execution import Execution
    from openaml.ml.features import fit as fit_module

    barrier, sorted_on = threading.Barrier(2, timeout=10), set()
    boundaries = fit_module._boundaries

    def together(*args):
        barrier.wait()
        sorted_on.add(threading.current_thread().name)
        return boundaries(*args)

    monkeypatch.setattr(fit_module, "_boundaries", together)
    schema = make_schema([("a", "NUMERIC"), ("b", "NUMERIC"), ("y", "BINARY")], targetAttributeName="y")
    batch = make_batch({"a": [str(i) for i in range(40)], "b": [str(i % 7) for i in range(40)],
                        "y": ["1", "0"] * 20})
    recipe = parse_recipe('{"outputs": ["quantile_bin(a,5)", "quantile_bin(b,5)"]}', schema)
    pipeline = fit_pipeline(recipe.outputs, schema, lambda: iter([Columns(batch, schema)]),
                            execution=Execution(2))
    assert len(sorted_on) == 2 and all(name.startswith("openaml-fit") for name in sorted_on)
    assert pipeline.n_features > 0


def test_text_vocabularies_are_gathered_without_coding_each_token(monkeypatch):
    """A text's distinct tokens (dictionary-encoded, perhaps very many) go the Arrow way, not
    one by one into the category codes; the vocabulary is the distinct tokens of the records."""
    from openaml.ml.features import fit as fit_module

    def refused(*args, **kwargs):
        raise AssertionError("tokens were coded one by one")

    monkeypatch.setattr(fit_module.ValueCodes, "codes", refused)
    schema = make_schema([("t", "TEXT"), ("y", "BINARY")], targetAttributeName="y")
    batch = make_batch({"t": ["b a", None, "a c A", "  "], "y": ["1"] * 4})
    recipe = parse_recipe('{"outputs": ["t", "lowercase(t)"]}', schema)
    batches = [Columns(batch, schema), Columns(batch.slice(0, 1), schema)]
    pipeline = fit_pipeline(recipe.outputs, schema, lambda: iter(batches))
    assert pipeline.vocabs[0].to_pylist() == ["A", "a", "b", "c"] and pipeline.vocabs[1].to_pylist() == ["a", "b", "c"]


def test_bins_from_sketches_and_from_records_on_two_threads():
    """Bins on attributes whose exact sketch is known and on others read from the records,
    fitted together on two threads: the boundaries a fit from the records alone gives."""
    from openaml.ml.data.statistics_document import Sketch
    from openaml.ml.execution import Execution
    from openaml.ml.features.fit import Known

    rng = np.random.default_rng(8)
    schema = make_schema([("a", "NUMERIC"), ("b", "NUMERIC"), ("c", "NUMERIC"), ("y", "BINARY")],
                         targetAttributeName="y")
    columns = {name: rng.integers(0, 40, 300).astype(float) for name in "abc"}
    batch = make_batch({name: [f"{v:g}" for v in values] for name, values in columns.items()} | {"y": ["1"] * 300})
    recipe = parse_recipe('{"outputs": ["quantile_bin(a,10)", "quantile_bin(b,7)", "quantile_bin(c,5)", '
                          '"quantile_bin(normalize(a),6)"]}', schema)
    values, counts = np.unique(columns["a"], return_counts=True)
    known = Known(moments={"a": (float(columns["a"].mean()), float(columns["a"].std()))},
                  sketches={"a": Sketch(values.tolist(), counts.tolist(), True)})
    records = lambda: iter([Columns(batch, schema)])  # noqa: E731
    mixed = fit_pipeline(recipe.outputs, schema, records, known=known, execution=Execution(2))
    alone = fit_pipeline(recipe.outputs, schema, records)
    for name in ("quantile_bin(a,10)", "quantile_bin(b,7)", "quantile_bin(c,5)"):
        assert mixed.params[name] == alone.params[name], name
    assert mixed.params["quantile_bin(normalize(a),6)"]["boundaries"] == pytest.approx(
        alone.params["quantile_bin(normalize(a),6)"]["boundaries"], rel=1e-12)


def _searchsorted_bins(values: np.ndarray, boundaries: np.ndarray) -> np.ndarray:
    index = np.searchsorted(boundaries, values, side="right")
    index[np.isnan(values)] = len(boundaries) + 1
    return index


@pytest.mark.parametrize("seed", range(6))
def test_bins_are_numpys_binary_search_whatever_the_spacing(seed):
    """The grid kernel of bin_numbers gives np.searchsorted's bins ("right") for every value:
    boundaries themselves and their float neighbours, values outside, infinities, NaN, and
    boundaries crowded in a heavy tail (the grid's cells then hold many of them)."""
    from openaml.ml.features.values import bin_numbers

    rng = np.random.default_rng(seed)
    draws = [rng.normal(size=5000), rng.lognormal(3, 2.5, 5000).round(2), rng.integers(0, 7, 5000).astype(float),
             rng.uniform(-1e-9, 1e-9, 5000), np.r_[rng.normal(size=4990), [1e300] * 10]][seed % 5]
    for count in (1, 2, 5, 50, 500):
        boundaries = _quantile_boundaries(draws, count + 1)
        values = np.concatenate([draws, boundaries, np.nextafter(boundaries, -np.inf), np.nextafter(boundaries, np.inf),
                                 [np.nan, np.inf, -np.inf, -1e308, 1e308, 0.0, -0.0]])
        assert np.array_equal(bin_numbers(values, boundaries), _searchsorted_bins(values, boundaries))
    empty = np.zeros(0)
    assert bin_numbers(np.array([1.0, np.nan]), empty).tolist() == [0, 1]
    assert bin_numbers(np.array([0.5, 1.0, 2.0, np.nan]), np.array([1.0])).tolist() == [0, 1, 1, 2]


def _quantile_boundaries(values: np.ndarray, n: int) -> np.ndarray:
    """The distinct k/n-quantiles (k = 1..n-1) of the values, by np.quantile, zeros positive."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.unique(np.quantile(np.sort(values), np.arange(1, n) / n) + 0.0)


@settings(max_examples=400, deadline=None)
@given(counted=st.dictionaries(st.floats(allow_nan=False, allow_infinity=False)
                               | st.sampled_from([0.0, 1.0, 1e308, -1e308]), st.integers(1, 6), min_size=1,
                               max_size=80),
       bins=st.integers(2, 1000))
def test_counted_quantile_boundaries_are_numpys_of_the_repeated_values(counted, bins):
    """Boundaries from a sketch's distinct values and counts (a fit from the datasource
    statistics or from the records) are, bit for bit, np.quantile's of the values repeated,
    but for the sign of a zero (np.quantile's partition reorders -0.0 and 0.0): one value,
    more bins than values, extremes whose differences overflow."""
    from openaml.ml.features.values import counted_quantile_boundaries

    values = np.array(sorted(counted))
    counts = np.array([counted[v] for v in sorted(counted)])
    with np.errstate(over="ignore", invalid="ignore"):
        got = counted_quantile_boundaries(values, counts.astype(np.float64), bins)
    expected = _quantile_boundaries(np.repeat(values, counts), bins)
    assert np.array_equal(got.view(np.int64), expected.view(np.int64))


def test_no_counted_value_gives_no_boundary():
    from openaml.ml.features.values import counted_quantile_boundaries

    assert counted_quantile_boundaries(np.zeros(0), np.zeros(0), 4).tolist() == []
    assert counted_quantile_boundaries(np.array([1.0, 2.0]), np.zeros(2), 4).tolist() == []


def test_quantile_boundaries_keep_a_zero_positive():
    from openaml.ml.features.values import counted_quantile_boundaries

    found = counted_quantile_boundaries(np.array([-0.0]), np.array([4.0]), 4)
    assert found.tolist() == [0.0] and not np.signbit(found).any()


@pytest.mark.parametrize("observed", [False, True])
def test_a_batch_whose_cartesian_makes_too_many_pairs_at_once_is_taken_in_halves(monkeypatch, observed):
    """Past MAX_CARTESIAN_PAIRS for a batch (not for any record), fitting and featurizing
    take the batch in halves, as often as needed, and give what the whole batch gives: the
    cap failed trainings by their number of records (30,000 records of 10 by 100 words)."""
    rng = np.random.default_rng(4)
    words = [f"w{i}" for i in range(30)]
    rows = 41
    batch = make_batch({"t": [" ".join(rng.choice(words, int(rng.integers(0, 9)))) for _ in range(rows)],
                        "c": [str(v) for v in rng.integers(0, 5, rows)],
                        "u": [" ".join(rng.choice(words, int(rng.integers(1, 4)))) for _ in range(rows)]})
    schema = make_schema([("t", "TEXT"), ("c", "CATEGORICAL"), ("u", "TEXT")])
    recipe = parse_recipe(json.dumps({"outputs": ["cartesian(t, c)", "c", "cartesian(lowercase(t), u)", "t"]}),
                          schema)
    seen: list[int] = []

    def fitted() -> tuple[list[str], np.ndarray]:
        pipeline = fit_pipeline(recipe.outputs, schema, lambda: iter([Columns(batch, schema)]),
                                observe=(lambda columns: seen.append(columns.n_rows)) if observed else None)
        return pipeline.feature_names(), pipeline.transform(batch).toarray()

    names, features = fitted()
    made = []
    original = tk.cartesian

    def counted(*args, **kwargs):
        made.append(args[0].n_rows)
        return original(*args, **kwargs)

    monkeypatch.setattr(tk, "cartesian", counted)
    monkeypatch.setattr(tk, "MAX_CARTESIAN_PAIRS", 12)  # a few records' pairs at once
    names_in_parts, features_in_parts = fitted()
    assert names_in_parts == names and (features_in_parts == features).all()
    assert min(made) < 10 < rows in made  # the whole batch was tried, then parts of it
    assert seen == ([rows] * 2 if observed else [])  # observers see the whole batch once a fit


def test_a_record_past_the_pairs_of_one_record_is_refused_in_a_batch_as_by_predict(monkeypatch):
    """The same limit per record in every path, with the same message: a batch's records
    are no longer refused by their number."""
    from openaml.ml.features.tokens import RecordTooLarge

    monkeypatch.setattr(tk, "MAX_RECORD_PAIRS", 20)
    schema = make_schema([("t", "TEXT")])
    recipe = parse_recipe(json.dumps({"outputs": ["cartesian(t, t)"]}), schema)
    wide = make_batch({"t": ["a b c d", "e f g h i"] * 50})  # 16 pairs a record, and 25
    with pytest.raises(RecordTooLarge, match="25 token pairs for one record .at most 20."):
        fit_pipeline(recipe.outputs, schema, lambda: iter([Columns(wide, schema)]))
    small = make_batch({"t": ["a b c d"] * 100})  # 1,600 pairs in the batch, 16 a record
    pipeline = fit_pipeline(recipe.outputs, schema, lambda: iter([Columns(small, schema)]))
    assert pipeline.transform(small).shape == (100, 16)


def test_lowercase_is_unicodes_default_lower_case_with_its_two_context_capitals():
    """Arrow's utf8_lower lowers each character alone: a word-final capital sigma became σ
    (ΟΔΌΣ -> οδόσ, never merged with οδός) and İ became i. Text tokens, categories and
    Predict's records are lowered alike."""
    from openaml.ml.features.transforms import text_case

    texts = ["ΟΔΌΣ οδός", "ΣΟΦΊΑ", "İstanbul", "ΑΣ.", "plain", "Ünïcode"]
    expected = [text.lower() for text in texts]
    assert tk.lowered(pa.array(texts)).to_pylist() == expected
    assert tk.lowered(pa.array([None, "Σ"], pa.string())).to_pylist() == [None, "σ"]  # no word before it
    assert text_case("lowercase", texts) == expected
    schema = make_schema([("t", "TEXT"), ("c", "CATEGORICAL")])
    batch = make_batch({"t": texts, "c": texts})
    recipe = parse_recipe(json.dumps({"outputs": ["lowercase(t)", "lowercase(c)"]}), schema)
    names = fit_pipeline(recipe.outputs, schema, lambda: iter([Columns(batch, schema)])).feature_names()
    assert "lowercase(t):οδός" in names and "lowercase(t):οδόσ" not in names and "lowercase(t):i̇stanbul" in names
    assert "lowercase(c)=ας." in names and "lowercase(c)=σοφία" in names
