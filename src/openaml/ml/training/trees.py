"""Gradient-boosted trees on the recipe's features (openaml.algorithm=gbdt), with LightGBM.

The records are read, fitted and turned into feature blocks as for a linear model; the blocks
are gathered into one CSR matrix of the trees' columns (ml.tree_columns: a column per category
source; boosting visits every record each round, so they must fit the training's memory
budget), and LightGBM fits the trees with the model type's objective:
binary or multiclass log loss, or squared error on the standardized target (the model's link
then applies the target's scale, as for a linear model). Record weights are honoured;
`should_stop` is asked before each round.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import scipy.sparse as sp

from openaml.ml.errors import InputError
from openaml.ml.execution import Execution
from openaml.ml.model_type import ModelType
from openaml.ml.training.blocks import Block
from openaml.ml.training.params import TreeParams
from openaml.ml.training.stop import ShouldStop, check
from openaml.ml.tree_columns import TreeColumns
from openaml.ml.trees import lightgbm

WIDE_COLUMNS = 100  # trees' columns from which LightGBM builds histograms column by column
# gbdt.maxBins=auto: fewer bins where finding splits costs most, many sources (each is a column
# whose values are binned) and many records (where boosting takes long and each bin still holds
# many records); elsewhere LightGBM's default. On full-size MNIST (29,400 records of 784
# pixels) training with 63 bins took 0.63 of the time with 255 (the workflow 0.68), at macro F1
# 0.9707 against 0.9700.
WIDE_BINS, DEFAULT_BINS = 63, 255
WIDE_SOURCES, MANY_RECORDS = 100, 10_000
OBJECTIVES = {ModelType.BINARY: "binary", ModelType.MULTICLASS: "multiclass", ModelType.REGRESSION: "regression"}


class TooLargeForTrees(InputError):
    """The training's features do not fit its memory budget in one matrix."""


def fit_trees(model_type: ModelType, blocks: Iterable[Block], columns: TreeColumns, outputs: int,
              params: TreeParams, seed: int, memory_bytes: int, should_stop: ShouldStop | None,
              execution: Execution, log: Callable[[str], None] | None = None) -> str:
    """LightGBM's model text of trees fitted on the blocks' records; `log` is told the records
    and columns, then the rounds done every tenth of them. With early stopping, a seeded draw
    of params.validation_percent of the records is held out, and the text keeps the trees up
    to the round whose loss on them was lowest."""
    features, y, w = _gathered(blocks, columns, memory_bytes)
    held = _held_out(len(y), params, seed)
    options: dict[str, Any] = {
        "objective": OBJECTIVES[model_type], "num_leaves": params.leaves,
        "learning_rate": params.learning_rate, "min_data_in_leaf": params.min_leaf_records, "lambda_l2": params.l2,
        "max_bin": max_bins_for(params, int(len(y) - held.sum()), columns.sources),
        "num_threads": execution.threads, "seed": seed, "deterministic": True,
        "verbosity": -1,  # the Dataset is binned with these options too: min_data_in_leaf filters features
    }
    if model_type == ModelType.MULTICLASS:
        options["num_class"] = outputs
    # histograms by column for many columns (pixels: 20 % faster on Fashion-MNIST), by row for a
    # table's few; chosen here, not timed by LightGBM, so that a training gives the same trees
    options["force_col_wise" if features.shape[1] >= WIDE_COLUMNS else "force_row_wise"] = True

    every = max(1, params.rounds // 10)
    boosted = [0]

    def each_round(env: Any) -> None:
        check(should_stop)
        done = boosted[0] = env.iteration + 1
        if log is not None and (done % every == 0 or done == params.rounds):
            log(f"boosting round {done} of {params.rounds}")

    library = lightgbm()
    if log is not None:
        log(f"boosted trees on {features.shape[0] - held.sum()} records, {features.nnz} values in "
            f"{features.shape[1]} columns ({len(columns.categorical)} categorical): binning them "
            f"into at most {options['max_bin']} bins each"
            + (f"; {held.sum()} records held out to stop early" if held.any() else ""))
    fitted = ~held
    data = library.Dataset(features[fitted] if held.any() else features, label=y[fitted], weight=w[fitted],
                           params=options, free_raw_data=True, categorical_feature=list(columns.categorical))
    callbacks = [each_round]
    valid_sets = []
    if held.any():
        valid_sets = [data.create_valid(features[held], label=y[held], weight=w[held])]
        callbacks.append(library.early_stopping(params.early_stopping_rounds, first_metric_only=True,
                                                verbose=False))
    data.construct()
    del features  # LightGBM's binned copy is what the rounds read
    check(should_stop)
    trees = library.train(options, data, num_boost_round=params.rounds, valid_sets=valid_sets, callbacks=callbacks)
    if held.any() and log is not None:
        loss = next(iter(trees.best_score["valid_0"].items()), ("loss", float("nan")))
        log(f"early stopping kept round {trees.best_iteration or boosted[0]} of the {boosted[0]} boosted: its "
            f"{loss[0]} on the held-out records was {loss[1]:.6g}")
    text: str = trees.model_to_string(num_iteration=trees.best_iteration or None)
    return text


def max_bins_for(params: TreeParams, records: int, sources: int) -> int:
    """gbdt.maxBins, or for "auto" WIDE_BINS when the trees are fitted on at least
    MANY_RECORDS records (those held out for early stopping not counted) of at least
    WIDE_SOURCES sources, else DEFAULT_BINS."""
    if params.max_bins is not None:
        return params.max_bins
    return WIDE_BINS if records >= MANY_RECORDS and sources >= WIDE_SOURCES else DEFAULT_BINS


def _held_out(records: int, params: TreeParams, seed: int) -> np.ndarray:
    """Which records early stopping holds out (none when it is off, or when too few records
    leave a record on each side)."""
    if not params.early_stopping_rounds:
        return np.zeros(records, bool)
    draw = np.random.default_rng(seed).random(records) < params.validation_percent / 100
    if not draw.any() or draw.all():
        return np.zeros(records, bool)
    return draw


def _gathered(blocks: Iterable[Block], columns: TreeColumns, memory_bytes: int) -> tuple[sp.csr_matrix, np.ndarray,
                                                                                          np.ndarray]:
    """The blocks' records as one CSR matrix of the trees' columns, their targets and weights:
    each block made into the trees' columns as it comes, then the parts stacked. While they
    are stacked, parts and whole are held: twice their size counts against the budget."""
    parts: list[sp.csr_matrix] = []
    targets: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    size = 0
    for block in blocks:
        part = columns.matrix((block.indptr, block.indices, block.values if len(block.values) else None))
        size += part.data.nbytes + part.indices.nbytes + part.indptr.nbytes + block.y.nbytes + block.w.nbytes
        if 2 * size > memory_bytes:
            raise TooLargeForTrees(
                f"Boosted trees need the training records' features in memory at once: they take "
                f"more than this training's budget of {memory_bytes // 2**20} MiB")
        parts.append(part)
        targets.append(block.y)
        weights.append(block.w)
    if not parts:
        return sp.csr_matrix((0, columns.n_columns), dtype=np.float32), np.zeros(0), np.zeros(0)
    whole = sp.vstack(parts, format="csr")
    parts.clear()
    return whole, np.concatenate(targets), np.concatenate(weights)
