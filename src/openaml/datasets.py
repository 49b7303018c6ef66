"""Image data sets in the IDX format (MNIST, Fashion-MNIST) written as Kaggle-layout CSVs.

The Kaggle "Digit Recognizer" layout: `train.csv` holds `label,pixel0..pixel783` rows,
`test.csv` the unlabeled `pixel0..pixel783` rows, and here also `test_labels.csv` (header
`label`) with the held-back labels in order. The Kaggle competition's 42,000 + 28,000 rows are a
re-split of the same 70,000 MNIST images; `fetch_mnist` keeps the original 60,000 + 10,000.
"""

from __future__ import annotations

import gzip
import urllib.request
from pathlib import Path

import numpy as np

# The original MNIST files (Y. LeCun, C. Cortes, C. Burges; CC BY-SA 3.0) on a public mirror.
MNIST_URL_BASE = "https://ossci-datasets.s3.amazonaws.com/mnist/"
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}


def read_idx(raw: bytes) -> np.ndarray:
    """An IDX array of unsigned bytes (magic 0,0,8,ndim; ndim big-endian uint32 sizes; data),
    gzip-compressed or not."""
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08":
        raise ValueError("not an IDX file of unsigned bytes")
    ndim = raw[3]
    shape = tuple(int(n) for n in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"IDX data has {data.size} values for shape {shape}")
    return data.reshape(shape)


def write_kaggle(out: Path, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                 y_test: np.ndarray) -> dict[str, Path]:
    """Write train.csv, test.csv and test_labels.csv; each file appears whole or not at all."""
    out.mkdir(parents=True, exist_ok=True)
    width = int(np.prod(x_train.shape[1:]))
    pixels = ",".join(f"pixel{i}" for i in range(width))
    paths = {name: out / f"{name}.csv" for name in ("train", "test", "test_labels")}
    for name, header, rows in (
            ("train", "label," + pixels, np.column_stack([y_train, x_train.reshape(-1, width)])),
            ("test", pixels, x_test.reshape(-1, width)),
            ("test_labels", "label", y_test.reshape(-1, 1))):
        partial = paths[name].with_suffix(".partial")
        with open(partial, "w") as stream:
            stream.write(header + "\n")
            np.savetxt(stream, rows, fmt="%d", delimiter=",")
        partial.rename(paths[name])
    return paths


def fetch_mnist(out: Path, url_base: str = MNIST_URL_BASE) -> dict[str, Path]:
    """Download the four MNIST IDX files from `url_base` and write them in Kaggle layout."""
    arrays = {}
    for name, file_name in IDX_FILES.items():
        with urllib.request.urlopen(url_base.rstrip("/") + "/" + file_name, timeout=60) as answer:
            arrays[name] = read_idx(answer.read())
    return write_kaggle(out, **arrays)
