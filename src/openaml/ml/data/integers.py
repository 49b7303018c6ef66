"""Fastest path for blocks of integers: one compiled pass reads every field of a block whose
fields are all int16 integers written canonically, the usual shape of wide numeric data
(pixels, counts, codes).

The pass checks each field as it reads it: an optional minus sign, then digits without a
leading zero (or a lone 0, never "-0"), a value within int16, and exactly one comma between
fields, the line's end after the last. Nothing else fits that form (no quote, white space,
empty field or lone CR), so every rule of data.md §1 is a no-op on such a block and the
values are exactly the fields' texts. A block with any other field returns None at the
first such field and goes the other ways (`plain`, `fields`). The values come out column by
column, as `plain.encode_int16` wants them, with no text made until the dictionaries.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

from openaml.ml.data.lines import LineBlock


def parse_int16_block(block: LineBlock, n_fields: int) -> npt.NDArray[np.int16] | None:
    """The block's values (fields × records), or None unless every field is a canonical int16."""
    if len(block) == 0 or block.too_large.any():
        return None
    # each line holds n_fields digits and n_fields - 1 commas at least: a block that cannot
    # (a wrong schema) is refused before values are allocated for every field of every line
    if int((block.ends - block.starts).sum()) < len(block) * (2 * n_fields - 1):
        return None
    values = np.empty((n_fields, len(block)), np.int16)
    return values if _parse(block.data, block.starts, block.ends, values) else None


@njit(cache=True, nogil=True)
def _parse(data: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64],
           values: npt.NDArray[np.int16]) -> bool:
    """Fill values[field, line] from the lines data[starts[k]:ends[k]]; False at the first
    field that is not a canonical int16 (or a line with another number of fields)."""
    n_fields = values.shape[0]
    for line in range(len(starts)):
        at, end = starts[line], ends[line]
        for j in range(n_fields):
            negative = at < end and data[at] == 45            # '-'
            if negative:
                at += 1
            first, value = at, 0
            while at < end and 48 <= data[at] <= 57:
                value = value * 10 + (data[at] - 48)
                at += 1
                if value > 32768:
                    return False
            digits = at - first
            if digits == 0 or (digits > 1 and data[first] == 48) or (value == 0 and negative):
                return False
            if value == 32768 and not negative:
                return False
            values[j, line] = -value if negative else value
            if j < n_fields - 1:
                if at >= end or data[at] != 44:               # ','
                    return False
                at += 1
            elif at != end:
                return False
    return True
