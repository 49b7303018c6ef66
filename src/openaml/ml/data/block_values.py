"""What every target of an ingest reads alike from one block parsed by a fast path.

A training and an evaluation datasource written from one read (`ingest_many`) select different
records of each block, but their columns are the block's own or taken from them, so they share
the block's dictionaries. Coercing a dictionary to its attribute type and ordering its numbers
are therefore done once per block, here; each target counts its own records. (Splitting text
into tokens is done once per block too: each target counts the tokens of its own records.)
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from openaml.ml.data.token_counts import Tokenized, tokenize
from openaml.ml.schema import AttributeType, Coerced, Schema, coerce_column


class BlockValues:
    """Per column of a parsed block (by attribute name), computed on first use: its dictionary
    coerced to the attribute's type, and the order of its NUMERIC entries."""

    def __init__(self, schema: Schema, columns: list[pa.Array]) -> None:
        self.schema = schema
        self.columns = dict(zip(schema.names, columns))
        self._coerced: dict[str, Coerced] = {}
        self._numbers: dict[str, tuple[npt.NDArray[np.float64], npt.NDArray[np.intp]]] = {}
        self._tokens: dict[str, Tokenized | None] = {}

    def coerced(self, name: str, attribute_type: AttributeType) -> Coerced:
        """The column's dictionary entries read as `attribute_type`."""
        if name not in self._coerced:
            self._coerced[name] = coerce_column(self.columns[name].dictionary, attribute_type)
        return self._coerced[name]

    def prepare(self, statistics: bool) -> BlockValues:
        """Coerce every NUMERIC and BINARY column now (and, for `statistics`, order the numbers
        and split the text into tokens), on the thread that reads ahead rather than on the one
        that counts. Returns self."""
        for attribute in self.schema.attributes:
            if attribute.type is AttributeType.NUMERIC and statistics:
                self.numbers(attribute.name)
            elif attribute.type in (AttributeType.NUMERIC, AttributeType.BINARY):
                self.coerced(attribute.name, attribute.type)
            elif attribute.type is AttributeType.TEXT and statistics:
                self.tokenized(attribute.name)
        return self

    def tokenized(self, name: str) -> Tokenized | None:
        """A TEXT column's tokens (None when it is not ASCII: each target splits its own)."""
        if name not in self._tokens:
            self._tokens[name] = tokenize(self.columns[name])
        return self._tokens[name]

    def numbers(self, name: str) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.intp]]:
        """A NUMERIC column's entries as float64 (NaN: not a number) and their sorted order."""
        if name not in self._numbers:
            values = self.coerced(name, AttributeType.NUMERIC).values.to_numpy(zero_copy_only=False)
            self._numbers[name] = values, sorted_order(values)
        return self._numbers[name]


def sorted_order(values: npt.NDArray[np.float64]) -> npt.NDArray[np.intp]:
    """The order that sorts `values` (NaN last; ties in any order)."""
    return np.argsort(values)
