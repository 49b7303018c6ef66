"""Gradient-boosted trees (openaml.algorithm=gbdt): parameters, training of every model type,
the artifact, scoring paths that agree, explanations, limits and stopping."""

import dataclasses
import io
import json
import pickle
import zipfile

import numpy as np
import pyarrow as pa
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits

from openaml.ml import evaluate_model, load_model, parse_parameters, predict_record, train_model
from openaml.ml.execution import Execution
from openaml.ml.prediction import RecordScorer
from openaml.ml.schema import parse_schema
from openaml.ml.training import Cancelled, ParameterError, SGDParams, TrainingError, shown_parameters
from openaml.ml.training.params import TreeParams
from openaml.ml.training.trees import (
    DEFAULT_BINS,
    MANY_RECORDS,
    WIDE_BINS,
    WIDE_SOURCES,
    TooLargeForTrees,
    max_bins_for,
)
from openaml.ml.trees import tree_contributions

from .conftest import make_batch, make_schema


def _data(loader, target_type: str) -> tuple:
    """A bundled scikit-learn data set as a schema, training and held-out batches and a recipe."""
    x, y = loader(return_X_y=True)
    names = [f"f{i}" for i in range(x.shape[1])]
    schema = parse_schema(json.dumps({
        "targetAttributeName": "y", "dataFileContainsHeader": False,
        "attributes": [{"attributeName": n, "attributeType": "NUMERIC"} for n in names]
        + [{"attributeName": "y", "attributeType": target_type}]}))
    columns = {n: [repr(float(v)) for v in x[:, i]] for i, n in enumerate(names)}
    columns["y"] = [repr(float(v)) if target_type == "NUMERIC" else str(int(v)) for v in y]
    batch = make_batch(columns)
    order = np.random.default_rng(0).permutation(len(y))
    cut = int(len(y) * 0.7)
    return (schema, batch.take(pa.array(order[:cut])), batch.take(pa.array(order[cut:])),
            json.dumps({"outputs": names}))


def _train(kind: str, data: tuple, given: dict[str, str], **options):
    schema, training, _, recipe = data
    params = parse_parameters(given, kind)
    return train_model(kind, schema, recipe, params, None, lambda: iter([training]), **options)


@pytest.fixture(scope="module")
def digits():
    return _data(load_digits, "CATEGORICAL")


@pytest.fixture(scope="module")
def tree_digits(digits):
    return _train("MULTICLASS", digits, {"openaml.algorithm": "gbdt", "gbdt.rounds": "40"},
                  execution=Execution(2))


def test_parameters_choose_the_algorithm_and_check_the_trees():
    params = parse_parameters({"openaml.algorithm": "gbdt", "sgd.maxPasses": "10",
                               "sgd.l2RegularizationAmount": "1e-5", "gbdt.leaves": "15"}, "BINARY")
    assert params.trees == TreeParams(leaves=15) and params.max_passes == 10
    assert parse_parameters({}, "BINARY").trees is None
    assert parse_parameters({"openaml.algorithm": "sgd"}, "BINARY").trees is None
    for given, message in [({"openaml.algorithm": "forest"}, "must be one of sgd, gbdt"),
                           ({"gbdt.rounds": "5"}, "applies to openaml.algorithm=gbdt alone"),
                           ({"openaml.algorithm": "gbdt", "gbdt.rounds": "0"}, "between 1 and 10000"),
                           ({"openaml.algorithm": "gbdt", "gbdt.learningRate": "0"}, "greater than 0"),
                           ({"openaml.algorithm": "gbdt", "gbdt.learningRate": "1.5"}, "at most 1"),
                           ({"openaml.algorithm": "gbdt", "gbdt.leaves": "1"}, "between 2"),
                           ({"openaml.algorithm": "gbdt", "gbdt.depth": "3"}, "Unknown training parameter"),
                           ({"openaml.algorithm": "gbdt", "gbdt.earlyStoppingRounds": "-1"}, "between 0"),
                           ({"openaml.algorithm": "gbdt", "gbdt.l2Regularization": "2e6"}, "between 0 and 1000000"),
                           ({"openaml.algorithm": "gbdt", "gbdt.maxBins": "2"}, "between 4 and 1024"),
                           ({"openaml.algorithm": "gbdt", "gbdt.maxBins": "Auto"}, "must be 'auto' or an integer"),
                           ({"openaml.algorithm": "gbdt", "gbdt.maxBins": "-5"}, "between 4 and 1024, not '-5'"),
                           ({"openaml.algorithm": "gbdt", "gbdt.earlyStoppingRounds": "5",
                             "gbdt.validationPercent": "60"}, "between 1 and 50"),
                           ({"openaml.algorithm": "gbdt", "gbdt.validationPercent": "20"},
                            "applies only when gbdt.earlyStoppingRounds is above 0")]:
        with pytest.raises(ParameterError, match=message):
            parse_parameters(given, "BINARY")
    # each bounded number states its own range, whatever is wrong with the value given
    for key, words in (("gbdt.learningRate", "greater than 0 and at most 1"),
                       ("gbdt.l2Regularization", "between 0 and 1000000"),
                       ("gbdt.validationPercent", "between 1 and 50")):
        for value in ("-0.1", "nan", "inf", "1e308", "x"):
            with pytest.raises(ParameterError, match=f"{key} must be a number {words}"):
                parse_parameters({"openaml.algorithm": "gbdt", "gbdt.earlyStoppingRounds": "5", key: value}, "BINARY")
    with pytest.raises(ParameterError, match="l2RegularizationAmount must be a number from 0 to the largest double"):
        parse_parameters({"sgd.l2RegularizationAmount": "-1"}, "BINARY")
    assert params.trees.max_bins is None  # "auto"
    for given, bins in [(" auto ", None), ("63", 63), ("1024", 1024)]:
        assert parse_parameters({"openaml.algorithm": "gbdt", "gbdt.maxBins": given}, "BINARY").trees.max_bins == bins
    shown = shown_parameters({"openaml.algorithm": "gbdt", "gbdt.rounds": "7"})
    assert shown["algorithm"] == "gbdt" and shown["gbdt.rounds"] == "7" and shown["gbdt.leaves"] == "31"
    assert shown["gbdt.maxBins"] == "auto"
    before_auto = dataclasses.replace(params, trees=dataclasses.replace(params.trees, max_bins=255))  # stored before
    assert shown_parameters({"openaml.algorithm": "gbdt"}, before_auto)["gbdt.maxBins"] == "255"
    assert shown_parameters({"openaml.algorithm": "gbdt"}, params)["gbdt.maxBins"] == "auto"
    assert shown_parameters({"openaml.algorithm": "gbdt", "gbdt.maxBins": "31"},
                            parse_parameters({"openaml.algorithm": "gbdt", "gbdt.maxBins": "31"}, "BINARY")
                            )["gbdt.maxBins"] == "31"
    assert "sgd.maxPasses" not in shown and shown_parameters({})["algorithm"] == "sgd"
    stored = dataclasses.asdict(params)  # as a training spec stores them
    assert SGDParams.from_dict(json.loads(json.dumps(stored))) == params
    assert SGDParams.from_dict({k: v for k, v in dataclasses.asdict(SGDParams()).items() if k != "trees"}) \
        == SGDParams()  # a spec stored before trees existed


@pytest.mark.parametrize("kind, loader, target, metric, bound", [
    ("BINARY", load_breast_cancer, "BINARY", "BinaryAUC", 0.97),
    ("REGRESSION", load_diabetes, "NUMERIC", "RegressionRMSE", 62.0),
])
def test_trees_train_each_model_type(kind, loader, target, metric, bound):
    data = _data(loader, target)
    model = _train(kind, data, {"openaml.algorithm": "gbdt", "gbdt.learningRate": "0.05"})
    value = float(evaluate_model(model, [data[2]], data[0]).metrics[metric])
    assert value >= bound if kind == "BINARY" else value <= bound
    assert model.algorithm == "gbdt" and model.weights.shape == (0, 1) and len(model.trees) < model.size_in_bytes


def test_a_multiclass_tree_model_scores_alike_on_every_path(digits, tree_digits):
    schema, _, held, _ = digits
    model = tree_digits
    scores = model.score_batch(held)
    assert scores.shape == (held.num_rows, 10) and np.allclose(scores.sum(axis=1), 1)
    assert float(evaluate_model(model, [held], schema).metrics["MulticlassAvgFScore"]) > 0.9
    scorer = RecordScorer(model)
    for row in range(5):
        record = {name: held.column(name)[row].as_py() for name in schema.names if name != "y"}
        answer = predict_record(scorer, record, 0.5)
        assert np.isclose(answer["predictedScores"][answer["predictedLabel"]],
                          scores[row].max(), atol=1e-6)
    buffer = io.BytesIO()
    model.save(buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        header = json.loads(archive.read("model.json"))
        assert header["version"] == 2 and header["algorithm"] == "gbdt" and "trees.txt" in archive.namelist()
    buffer.seek(0)
    loaded = load_model(buffer)
    assert loaded.trees == model.trees and np.array_equal(loaded.score_batch(held), scores)
    sent = pickle.loads(pickle.dumps(model))  # as a Dask task sends it: the booster is loaded again
    assert sent._booster is None and np.array_equal(sent.score_batch(held), scores)


def test_trees_score_a_sparse_matrix_as_its_dense_array(digits, tree_digits, monkeypatch):
    """Small inputs are scored from a dense array, large ones from a CSR matrix: alike."""
    from openaml.ml import tree_columns
    held = digits[2]
    dense = tree_digits.score_batch(held)
    monkeypatch.setattr(tree_columns, "DENSE_CELLS", 0)
    assert np.array_equal(tree_digits.score_batch(held), dense)


def test_a_records_contributions_sum_to_its_score(digits, tree_digits):
    """SHAP values of the trees plus the expected score give the raw score of each class."""
    schema, _, held, _ = digits
    model = tree_digits
    record = {name: held.column(name)[0].as_py() for name in schema.names if name != "y"}
    ids, values = RecordScorer(model).sorted_features(record)
    values = np.ones(len(ids)) if values is None else values
    rows = (np.array([0, len(ids)]), ids, values)
    raw = model.raw_scores(rows)[0]
    whole = tree_contributions(rows, model.booster(), model.tree_columns(), 10)[0]
    assert np.allclose(whole.sum(axis=1), raw, atol=1e-6)  # columns' parts + expected score
    names = model.feature_names()
    assert len(names) == 64 == model.tree_columns().n_columns  # a column per pixel, not per pixel value
    for output in (0, 3):
        columns, parts, baseline = model.contributions(ids, values, output)
        assert len(columns) == len(parts) > 0 and np.all(parts != 0)
        expected = whole[output, :-1]
        assert np.array_equal(columns, np.flatnonzero(expected)) and np.array_equal(parts, expected[columns])
        assert baseline == whole[output, -1]
    gains = model.importance()
    assert gains.shape == (64,) and gains.max() > 0


def test_limits_and_stopping_of_a_tree_training(digits):
    with pytest.raises(TrainingError, match="gbdt.rounds or gbdt.leaves"):
        _train("MULTICLASS", digits, {"openaml.algorithm": "gbdt", "sgd.maxMLModelSizeInBytes": "100000"})
    with pytest.raises(TooLargeForTrees, match="in memory at once"):
        _train("MULTICLASS", digits, {"openaml.algorithm": "gbdt"}, memory_bytes=4 << 10)
    asked = []

    def stop_after_a_few() -> bool:
        asked.append(1)
        return len(asked) > 30

    with pytest.raises(Cancelled):
        _train("MULTICLASS", digits, {"openaml.algorithm": "gbdt", "gbdt.rounds": "500"},
               should_stop=stop_after_a_few)


def _one_split(values: list[str], labels: list[bool], kind: str = "CATEGORICAL"):
    """A BINARY model of one tree with one split (two leaves) on attribute x."""
    schema = make_schema([("x", kind), ("y", "BINARY")], targetAttributeName="y")
    batch = make_batch({"x": values, "y": ["1" if label else "0" for label in labels]})
    params = {"openaml.algorithm": "gbdt", "gbdt.rounds": "1", "gbdt.leaves": "2", "gbdt.learningRate": "1",
              "gbdt.minRecordsInLeaf": "1"}
    model = train_model("BINARY", schema, '{"outputs": ["x"]}', parse_parameters(params, "BINARY"), None,
                        lambda: iter([batch]))
    return model, float(evaluate_model(model, [batch], schema).metrics["BinaryAUC"])


def test_trees_split_on_a_category_column_not_one_hot_indicators():
    """Categories that are all numbers (pixel values, bins) are ranked by value: one split
    separates x >= 50, where one-hot indicators would isolate a single value. Other categories
    are one categorical column: one split separates any set of them."""
    numbers = [str(i % 100) for i in range(1000)]
    model, auc = _one_split(numbers, [i % 100 >= 50 for i in range(1000)])
    assert model.feature_names() == ["x"] and model.tree_columns().categorical == () and auc == 1.0
    letters = [chr(ord("a") + i % 10) for i in range(1000)]
    model, auc = _one_split(letters, [letter in "acegi" for letter in letters])
    assert model.tree_columns().categorical == (0,) and auc == 1.0
    # a category not seen in training is scored like a missing one
    scorer = RecordScorer(model)
    assert predict_record(scorer, {"x": "zz"}, 0.5) == predict_record(scorer, {}, 0.5)


def test_tree_columns_of_each_kind_of_source():
    from openaml.ml.tree_columns import TreeColumns
    schema = make_schema([("n", "NUMERIC"), ("c", "CATEGORICAL"), ("k", "CATEGORICAL"), ("t", "TEXT"),
                          ("b", "BINARY"), ("y", "BINARY")], targetAttributeName="y")
    batch = make_batch({"n": ["1.5", "", "3"], "c": ["10", "9", "100"], "k": ["b", "a", None],
                        "t": ["x y", "y", ""], "b": ["yes", "no", "yes"], "y": ["1", "0", "1"]})
    model = train_model("BINARY", schema, '{"outputs": ["n", "c", "k", "t", "b"]}',
                        parse_parameters({"openaml.algorithm": "gbdt", "gbdt.rounds": "1"}, "BINARY"), None,
                        lambda: iter([batch]))
    columns = TreeColumns.of(model.pipeline)
    assert columns.names == ("n", "c", "k", "t:x", "t:y", "b") and columns.categorical == (2,)
    rows = model.pipeline.rows(batch)
    kept = [None if part is None else part.copy() for part in rows]
    sparse = columns.matrix(rows)
    assert all(a is None and b is None or np.array_equal(a, b) for a, b in zip(rows, kept))  # input untouched
    assert not (sparse.data == 0).any()  # zeros (rank 0, no) are not stored
    matrix = sparse.toarray()
    assert np.array_equal(columns.for_scoring(rows), matrix, equal_nan=True)  # dense, when small
    assert matrix[:, 1].tolist() == [1, 0, 2]  # 9 < 10 < 100, though "10" < "100" < "9" as text
    assert matrix[:2, 2].tolist() == [1, 0] and np.isnan(matrix[2, 2])  # vocabulary places; missing
    assert matrix[:, 3:5].tolist() == [[1, 1], [0, 1], [0, 0]] and matrix[:, 5].tolist() == [1, 0, 1]
    assert matrix[1, 0] == 0 and matrix[0, 0] < 0 < matrix[2, 0]  # standardized; missing: the mean
    unseen = make_batch({"n": ["2"], "c": ["7"], "k": ["q"], "t": ["z"], "b": [""], "y": ["1"]})
    row = columns.matrix(model.pipeline.rows(unseen)).toarray()[0]
    assert np.isnan(row[1]) and np.isnan(row[2]) and row[3:].tolist() == [0, 0, 0]  # not seen: missing


def test_batch_and_predict_agree_on_a_number_at_its_mean_beside_text():
    """With text in the recipe, batch features drop zero values: a standardized number at the
    training mean (0) is absent there, present in Predict's features. Both must score alike."""
    schema = make_schema([("n", "NUMERIC"), ("t", "TEXT"), ("y", "BINARY")], targetAttributeName="y")
    values = [str(v) for v in (1, 2, 3) * 100]  # mean 2
    batch = make_batch({"n": values, "t": ["a b" if v == "3" else "c" for v in values],
                        "y": ["1" if v == "2" else "0" for v in values]})  # the mean is the class
    model = train_model("BINARY", schema, '{"outputs": ["n", "t"]}',
                        parse_parameters({"openaml.algorithm": "gbdt", "gbdt.rounds": "10",
                                          "gbdt.minRecordsInLeaf": "5"}, "BINARY"), None, lambda: iter([batch]))
    scores = model.score_batch(batch)
    scorer = RecordScorer(model)
    for row in range(3):
        answer = predict_record(scorer, {"n": values[row], "t": batch.column("t")[row].as_py()}, 0.5)
        [score] = answer["predictedScores"].values()  # P(1), whichever label
        assert np.isclose(score, scores[row], atol=1e-6)


def test_trees_use_text_and_category_features():
    schema = make_schema([("c", "CATEGORICAL"), ("t", "TEXT"), ("y", "BINARY")], targetAttributeName="y")
    rng = np.random.default_rng(1)
    good = rng.random(400) < 0.5
    batch = make_batch({"c": [["a", "b", "c"][i % 3] for i in range(400)],
                        "t": ["fine day" if g else "awful day" for g in good],
                        "y": ["1" if g else "0" for g in good]})
    model = train_model("BINARY", schema, '{"outputs": ["c", "t"]}',
                        parse_parameters({"openaml.algorithm": "gbdt", "gbdt.rounds": "20"}, "BINARY"),
                        None, lambda: iter([batch]))
    assert float(evaluate_model(model, [batch], schema).metrics["BinaryAUC"]) > 0.99
    answer = predict_record(RecordScorer(model), {"c": "a", "t": "a fine morning"}, 0.5)
    assert answer["predictedLabel"] == "1"


def test_a_stored_training_spec_names_trees_only_when_it_has_them():
    """A worker of the version before boosted trees builds SGDParams(**stored): the specs of
    linear models must not carry a `trees` key it does not know."""
    from openaml.jobs.specs import MLModelSpec
    from openaml.ml.model_type import ModelType
    schema = make_schema([("c", "CATEGORICAL"), ("y", "BINARY")], targetAttributeName="y").to_json()
    for given in ({}, {"openaml.algorithm": "gbdt", "gbdt.rounds": "3", "openaml.classWeights": "balanced"}):
        params = parse_parameters(given, "BINARY")
        spec = MLModelSpec(ModelType.BINARY, "ds", json.dumps(schema) if not isinstance(schema, str) else schema,
                           None, params, given)
        doc = json.loads(json.dumps(spec.to_json()))
        assert ("trees" in doc["parameters"]) == ("class_weights" in doc["parameters"]) == bool(given)
        assert MLModelSpec.from_json(doc).parameters == params
        if not given:
            assert SGDParams(**doc["parameters"]) == params  # as the earlier version reads it


def test_gbdt_is_refused_at_once_where_lightgbm_is_missing(monkeypatch):
    """CreateMLModel's parameters are checked before any data is read: without the `trees`
    extra, openaml.algorithm=gbdt says which extra to install."""
    from openaml.ml.training import params as params_module
    monkeypatch.setattr(params_module, "trees_installed", lambda: False)
    with pytest.raises(ParameterError, match=r"needs the 'trees' extra.*openaml\[trees\]"):
        parse_parameters({"openaml.algorithm": "gbdt"}, "BINARY")
    assert parse_parameters({}, "BINARY").trees is None


def test_early_stopping_keeps_the_best_round_on_held_out_records(digits):
    """A learning rate of 0.5 overfits within a few dozen rounds: boosting stops once 5 rounds
    have not bettered the held-out loss, and the model keeps the trees up to the best round."""
    lines: list[str] = []
    given = {"openaml.algorithm": "gbdt", "gbdt.rounds": "400", "gbdt.learningRate": "0.5",
             "gbdt.earlyStoppingRounds": "5", "gbdt.validationPercent": "20"}
    model = _train("MULTICLASS", digits, given, log=lines.append)
    kept = model.booster().num_trees() // 10
    assert 2 <= kept < 100
    assert "records held out to stop early" in lines[0]
    assert lines[-1].startswith(f"early stopping kept round {kept} of the ") and "multi_logloss" in lines[-1]
    boosted = int(lines[-1].split(" of the ")[1].split()[0])
    assert boosted == kept + 5
    held = int(lines[0].split("; ")[1].split()[0])
    assert abs(held - 0.2 * 1257) < 60  # a fifth of the training records
    without = _train("MULTICLASS", digits, {"openaml.algorithm": "gbdt", "gbdt.rounds": "30"})
    assert without.booster().num_trees() == 300  # off (the default): every round, a tree per class


def test_a_tree_training_tells_its_rounds(digits):
    lines: list[str] = []
    _train("MULTICLASS", digits, {"openaml.algorithm": "gbdt", "gbdt.rounds": "25"}, log=lines.append)
    assert lines[0].startswith("boosted trees on 1257 records") and "binning" in lines[0]
    assert lines[1:] == [f"boosting round {k} of 25" for k in (2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 25)]


def test_the_l2_penalty_shrinks_the_leaves(digits):
    def largest_leaf(l2: str) -> float:
        """Of the trees after the first round (whose leaves also hold the classes' priors)."""
        model = _train("MULTICLASS", digits, {"openaml.algorithm": "gbdt", "gbdt.rounds": "5",
                                              "gbdt.l2Regularization": l2})
        leaves = [line for line in (model.trees or "").splitlines() if line.startswith("leaf_value=")]
        return max(abs(float(v)) for line in leaves[10:] for v in line.split("=", 1)[1].split())

    assert largest_leaf("100") < 0.5 * largest_leaf("0")


def test_auto_bins_are_fewer_for_many_records_of_many_sources():
    auto, given = TreeParams(), TreeParams(max_bins=255)
    assert max_bins_for(auto, MANY_RECORDS, WIDE_SOURCES) == WIDE_BINS == 63
    assert max_bins_for(auto, MANY_RECORDS - 1, WIDE_SOURCES) == DEFAULT_BINS == 255
    assert max_bins_for(auto, 10 * MANY_RECORDS, WIDE_SOURCES - 1) == DEFAULT_BINS
    assert max_bins_for(given, MANY_RECORDS, WIDE_SOURCES) == 255
    assert max_bins_for(TreeParams(max_bins=16), 10, 1) == 16


@pytest.mark.parametrize("records, stopping, bins", [(MANY_RECORDS, "0", WIDE_BINS),
                                                     (MANY_RECORDS - 1, "0", DEFAULT_BINS),
                                                     (MANY_RECORDS, "2", DEFAULT_BINS)])
def test_a_training_bins_as_auto_chooses(records, stopping, bins):
    """The bins "auto" chooses reach LightGBM (its model text keeps its parameters), and the
    log says them; the sources are counted as the recipe has them (100 numbers), the records
    as the trees are fitted on them (early stopping holds some out)."""
    rng = np.random.default_rng(3)
    names = [f"x{i}" for i in range(WIDE_SOURCES)]
    schema = make_schema([(n, "NUMERIC") for n in names] + [("y", "BINARY")], targetAttributeName="y")
    values = rng.integers(0, 1000, (records, WIDE_SOURCES))
    columns = {n: values[:, i].astype(str).tolist() for i, n in enumerate(names)}
    columns["y"] = (values[:, 0] > 500).astype(int).astype(str).tolist()
    said: list[str] = []
    model = train_model("BINARY", schema, json.dumps({"outputs": names}),
                        parse_parameters({"openaml.algorithm": "gbdt", "gbdt.rounds": "1",
                                          "gbdt.earlyStoppingRounds": stopping}, "BINARY"), None,
                        lambda: iter([make_batch(columns)]), log=said.append)
    assert f"[max_bin: {bins}]" in (model.trees or "")
    assert any(f"into at most {bins} bins each" in line for line in said)


def test_fewer_bins_give_fewer_thresholds(digits):
    """gbdt.maxBins reaches LightGBM's binning: 4 bins leave at most 3 thresholds a column."""
    def thresholds(bins: str) -> int:
        model = _train("MULTICLASS", digits, {"openaml.algorithm": "gbdt", "gbdt.rounds": "10", "gbdt.maxBins": bins})
        found: dict[int, set[float]] = {}
        for tree in model.booster().dump_model()["tree_info"]:
            stack = [tree["tree_structure"]]
            while stack:
                node = stack.pop()
                if "split_feature" in node:
                    found.setdefault(node["split_feature"], set()).add(float(node["threshold"]))
                    stack += [node["left_child"], node["right_child"]]
        return max(len(values) for values in found.values())

    assert thresholds("4") <= 3 < thresholds("255")
