"""Quality floor on the shipped MNIST 10k sample (sequential 70/30 split, one-hot pixels)."""

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pytest

from openaml.ml import evaluate_model, parse_parameters, train_model
from openaml.ml.schema import parse_schema

DATA = Path(__file__).resolve().parents[3] / "examples" / "mnist" / "data" / "train.csv.gz"
COLUMNS = ["label"] + [f"pixel{i}" for i in range(784)]


@pytest.fixture(scope="module")
def mnist():
    if not DATA.exists():
        pytest.skip("MNIST sample not present")
    table = pcsv.read_csv(DATA, convert_options=pcsv.ConvertOptions(
        column_types={c: pa.string() for c in COLUMNS})).combine_chunks()
    table = table.append_column("__rejected", pa.array([False] * table.num_rows))
    schema = parse_schema(json.dumps({"targetAttributeName": "label", "dataFileContainsHeader": True,
                                      "attributes": [{"attributeName": c, "attributeType": "CATEGORICAL"}
                                                     for c in COLUMNS]}))
    return schema, table.slice(0, 4900), table.slice(4900)


# The service derives the seed from a random model id, so the floor must hold for every seed; the
# last iterate (before iterate averaging) scored 0.885, 0.873, 0.887 and 0.881 with these seeds.
@pytest.mark.parametrize("seed", [4, 5, 6, 11])
def test_mnist_macro_f1_floor(mnist, seed):
    schema, train, test = mnist
    params = parse_parameters({"sgd.maxPasses": "10", "sgd.l2RegularizationAmount": "1e-5",
                               "sgd.shuffleType": "auto"}, "MULTICLASS", seed=seed)
    model = train_model("MULTICLASS", schema, '{"outputs": ["ALL_CATEGORICAL"]}', params, None,
                        lambda: iter(train.to_batches(max_chunksize=65536)))
    result = evaluate_model(model, test.to_batches(max_chunksize=65536), schema)
    f1 = float(result.metrics["MulticlassAvgFScore"])
    # scikit-learn LogisticRegression on the same one-hot features scores 0.9005 here
    assert f1 >= 0.8905
    assert np.isclose(f1, result.report.metric)


# With 490 rows the first passes overshoot (784 active one-hot features per row) and the pass loss
# rises before it falls; training must go on rather than stop as if it had converged (it scored
# 0.035 and 0.074 with these seeds when a rising loss ended training).
@pytest.mark.parametrize("seed", [1, 3])
def test_small_training_sets_train_through_a_rising_loss(mnist, seed):
    schema, train, test = mnist
    params = parse_parameters({"sgd.maxPasses": "10", "sgd.shuffleType": "auto"}, "MULTICLASS", seed=seed)
    passes = []
    model = train_model("MULTICLASS", schema, '{"outputs": ["ALL_CATEGORICAL"]}', params, None,
                        lambda: iter(train.slice(0, 490).to_batches()), passes.append)
    result = evaluate_model(model, test.slice(0, 300).to_batches(), schema)
    assert len(passes) > 2
    assert float(result.metrics["MulticlassAvgFScore"]) > 0.75


# The quick benchmark's training (490 records, the MNIST workflow's parameters): with this seed
# one fold's loss fell from 13.96 to 13.95 in its second pass, which ended the cross-validation
# as if the loss had converged; 2 passes were chosen and the model scored macro F1 0.01.
def test_a_chance_small_fall_of_an_overshooting_loss_does_not_end_training(mnist):
    schema, train, test = mnist
    params = parse_parameters({"sgd.maxPasses": "10", "sgd.l2RegularizationAmount": "1e-5",
                               "sgd.shuffleType": "auto"}, "MULTICLASS", seed=34)
    passes = []
    model = train_model("MULTICLASS", schema, '{"outputs": ["ALL_CATEGORICAL"]}', params, None,
                        lambda: iter(train.slice(0, 490).to_batches()), passes.append)
    result = evaluate_model(model, test.slice(0, 300).to_batches(), schema)
    assert passes[-1].chosen_passes > 2
    assert float(result.metrics["MulticlassAvgFScore"]) > 0.75


# A few hundred records of 784 one-hot pixels took 2 or 3 steps a pass in minibatches of 64,
# each far too large for a record's 784 active features: the folds' losses were several times
# the uniform model's for every pass, cross-validation chose 1 or 2 of them by chance, and these
# seeds scored macro F1 0.02 (150 records: half of 12 seeds below 0.1).
@pytest.mark.parametrize(("rows", "seed"), [(150, 5), (150, 8), (300, 1), (300, 6)])
def test_a_few_hundred_wide_records_train_a_model_at_every_seed(mnist, rows, seed):
    schema, train, test = mnist
    params = parse_parameters({}, "MULTICLASS", seed=seed)  # the defaults: file order
    model = train_model("MULTICLASS", schema, '{"outputs": ["ALL_CATEGORICAL"]}', params, None,
                        lambda: iter(train.slice(0, rows).to_batches()))
    result = evaluate_model(model, test.slice(0, 1000).to_batches(), schema)
    assert float(result.metrics["MulticlassAvgFScore"]) > 0.55
