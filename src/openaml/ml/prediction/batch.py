"""Batch prediction result files (evaluation-and-prediction.md §2.3).

`open_output(file_index)` returns a writable binary stream for that input file; this module
writes the gzip-compressed CSV (UTF-8, "\\n" line ends) into it and closes it. Files are opened
in order of first appearance; an input file none of whose records reaches us is never opened.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterable
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from openaml.ml.execution import ONE_THREAD, Execution
from openaml.ml.features.tokens import plain
from openaml.ml.features.values import Columns
from openaml.ml.metrics.formatting import score_texts
from openaml.ml.model import Model, positive
from openaml.ml.model_type import ModelType
from openaml.ml.prediction.scoring import ScoredSlice, score_alone
from openaml.ml.schema import Schema
from openaml.ml.training.stop import ShouldStop
from openaml.ml.training.targets import target_labels

COMPRESS_LEVEL = 1  # of the gzip result files (batch_predict)


def csv_quote(values: pa.Array) -> pa.Array:
    """CSV-quote strings containing a comma, a quote or a line break; null -> empty."""
    values = pc.fill_null(plain(values).cast(pa.string()), "")
    needs = pc.match_substring_regex(values, '[,"\r\n]')
    quoted = pc.binary_join_element_wise("\"", pc.replace_substring(values, "\"", "\"\""), "\"", "")
    return pc.if_else(needs, quoted, values)


def header_line(model: Model, dataset_schema: Schema) -> str:
    columns = []
    if dataset_schema.row_id is not None:
        columns.append("tag")
    if model.schema.target is not None and dataset_schema.type_of(model.schema.target) is not None:
        columns.append("trueLabel")
    if model.model_type == ModelType.BINARY:
        columns += ["bestAnswer", "score"]
    elif model.model_type == ModelType.MULTICLASS:
        columns += csv_quote(pa.array(model.classes, pa.string())).to_pylist()
    else:
        columns.append("score")
    return ",".join(columns)


def result_lines(model: Model, scored: ScoredSlice, dataset_schema: Schema,
                 score_threshold: float) -> pa.StringArray:
    """One line per record of the slice, each ending in "\\n"; rejected records give an empty
    line. The lines are the array's data end to end (`line_bytes`): no Python string is made."""
    parts: list[pa.Array] = []
    columns = Columns(scored.rows, model.schema)
    if dataset_schema.row_id is not None:
        parts.append(csv_quote(columns.raw(dataset_schema.row_id)))
    if model.schema.target is not None and dataset_schema.type_of(model.schema.target) is not None:
        if model.model_type == ModelType.BINARY:
            parts.append(pc.fill_null(target_labels(columns, ModelType.BINARY), ""))
        else:
            parts.append(csv_quote(columns.raw(model.schema.target)))
    scores = scored.scores
    if model.model_type == ModelType.BINARY:
        parts.append(pc.if_else(pa.array(positive(scores, score_threshold)), "1", "0"))
        parts.append(score_texts(scores))
    elif model.model_type == ModelType.MULTICLASS:
        text = score_texts(scores.T.ravel())  # class by class
        parts += [text.slice(k * len(scores), len(scores)) for k in range(len(model.classes))]
    else:
        parts.append(score_texts(scores))
    joined = pc.binary_join_element_wise(*parts, ",") if len(parts) > 1 else parts[0]
    lines = pc.binary_join_element_wise(joined.cast(pa.string()), "", "\n")  # each line + "\n" + ""
    if not scored.kept.all():  # rejected records: null, then empty lines
        places = np.zeros(len(scored.kept), np.int64)
        places[scored.kept] = np.arange(len(lines))
        lines = lines.take(pa.array(places, mask=~scored.kept))
    return pc.fill_null(lines, "\n")


def line_bytes(lines: pa.StringArray, start: int, stop: int) -> memoryview:
    """The bytes of lines[start:stop] end to end (a view of the array's data)."""
    offsets = np.frombuffer(lines.buffers()[1], np.int32, len(lines) + lines.offset + 1)[lines.offset:]
    data = lines.buffers()[2]
    return memoryview(data if data is not None else b"")[offsets[start]:offsets[stop]]


def write_empty_result(model: Model, dataset_schema: Schema, raw: IO[bytes]) -> None:
    """The result file of an input file without records: the header line alone."""
    with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=COMPRESS_LEVEL) as out:
        out.write((header_line(model, dataset_schema) + "\n").encode("utf-8"))


def batch_predict(model: Model, batches: Iterable[pa.RecordBatch], dataset_schema: Schema,
                  score_threshold: float, open_output: Callable[[int], IO[bytes]],
                  should_stop: ShouldStop | None = None, execution: Execution = ONE_THREAD,
                  with_header: bool = True) -> tuple[int, int]:
    """Write one result file per input file; return (records processed, rejected records).
    should_stop is asked before each slice of records (Slices); once it answers True, predicting
    raises Cancelled (the streams opened are closed: their owner discards them). Without
    `with_header`, the files hold the result lines alone (a partition's, to follow others)."""
    writer = ResultWriter(model, dataset_schema, score_threshold, open_output, with_header)
    try:
        score_alone(model, batches, writer, should_stop, execution)
    finally:
        writer.close()
    return writer.total, writer.invalid


class ResultWriter:
    """What a batch prediction takes from a scoring pass (prediction/scoring.py): each record's
    result line, written to the gzip CSV of its input file (`open_output(file_index)`, opened at
    the file's first record); close() closes them."""

    def __init__(self, model: Model, dataset_schema: Schema, score_threshold: float,
                 open_output: Callable[[int], IO[bytes]], with_header: bool = True) -> None:
        self.model, self.dataset_schema, self.score_threshold = model, dataset_schema, score_threshold
        self.open_output = open_output
        self.header = header_line(model, dataset_schema) + "\n" if with_header else ""
        self.streams: dict[int, tuple[IO[bytes], gzip.GzipFile]] = {}
        self.total = self.invalid = 0

    def prepare(self, scored: ScoredSlice) -> tuple[np.ndarray, int, pa.StringArray]:
        """(each record's input file, the rejected records, the result lines)."""
        files = np.asarray(scored.part.column("__file").to_numpy(zero_copy_only=False))
        return (files, int((~scored.kept).sum()),
                result_lines(self.model, scored, self.dataset_schema, self.score_threshold))

    def take(self, prepared: tuple[np.ndarray, int, pa.StringArray]) -> None:
        files, rejected, lines = prepared
        self.total += len(files)
        self.invalid += rejected
        bounds = np.flatnonzero(np.diff(files)) + 1
        for start, stop in zip(np.concatenate(([0], bounds)), np.concatenate((bounds, [len(files)]))):
            index = int(files[start])
            if index not in self.streams:
                raw = self.open_output(index)
                # level 1: the 600k result lines of the tabular benchmark took 0.45 s at level
                # 6 (the gzip tool's default), a quarter of the job, and 0.10 s at level 1, for
                # a file 23 % larger (3.6 MB against 2.9 MB)
                self.streams[index] = (raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0,
                                                          compresslevel=COMPRESS_LEVEL))
                self.streams[index][1].write(self.header.encode("utf-8"))
            self.streams[index][1].write(line_bytes(lines, int(start), int(stop)))

    def close(self) -> None:
        """Close the streams opened (after the pass, or after it failed: their owner then
        discards them)."""
        for raw, zipped in self.streams.values():
            zipped.close()
            raw.close()
