"""Fashion-MNIST as Kaggle-layout CSVs, from Debian's package dataset-fashion-mnist.

Fashion-MNIST is by Zalando Research (Han Xiao, Kashif Rasul, Roland Vollgraf), MIT license:
70,000 28x28 grey-scale images of clothing in 10 classes. The package installs the original IDX
files under /usr/share/datasets/fashion-mnist/ ({train,t10k}-{images-idx3,labels-idx1}-ubyte.gz);
they are installed with apt-get when missing. Output, in the same layout as Kaggle's MNIST:
  train.csv        60,000 rows `label,pixel0..pixel783` (values 0-255)
  test.csv         10,000 rows `pixel0..pixel783`
  test_labels.csv  the 10,000 test labels, header `label`
"""

from __future__ import annotations

import gzip
import os
import subprocess
from pathlib import Path

import numpy as np

SOURCE = Path("/usr/share/datasets/fashion-mnist")
PACKAGE = "dataset-fashion-mnist"


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (magic 0,0,type,ndim; ndim big-endian uint32 sizes; data) of unsigned bytes."""
    raw = gzip.decompress(path.read_bytes())
    if raw[:3] != b"\x00\x00\x08":
        raise ValueError(f"{path} is not an IDX file of unsigned bytes")
    ndim = raw[3]
    shape = np.frombuffer(raw, ">u4", count=ndim, offset=4).astype(int)
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def write_csv(path: Path, columns: str, rows: np.ndarray) -> None:
    """Integer rows as CSV under a header line (vectorised through numpy's text writer)."""
    with open(path, "w") as out:
        out.write(columns + "\n")
        np.savetxt(out, rows, fmt="%d", delimiter=",")


def ensure_source() -> None:
    if not SOURCE.exists():
        subprocess.run(["apt-get", "install", "-y", PACKAGE], check=True,
                       env=os.environ | {"DEBIAN_FRONTEND": "noninteractive"})


def write_fashion_mnist(out: Path) -> dict[str, Path]:
    """Write train.csv, test.csv and test_labels.csv into `out` (skipped if already there)."""
    paths = {name: out / f"{name}.csv" for name in ("train", "test", "test_labels")}
    if all(p.exists() for p in paths.values()):
        return paths
    ensure_source()
    out.mkdir(parents=True, exist_ok=True)
    pixels = ",".join(f"pixel{i}" for i in range(784))
    x_train = read_idx(SOURCE / "train-images-idx3-ubyte.gz").reshape(-1, 784)
    y_train = read_idx(SOURCE / "train-labels-idx1-ubyte.gz")
    x_test = read_idx(SOURCE / "t10k-images-idx3-ubyte.gz").reshape(-1, 784)
    y_test = read_idx(SOURCE / "t10k-labels-idx1-ubyte.gz")
    # Written under temporary names and renamed last, so a partial run is never reused.
    for name, columns, rows in (("train", "label," + pixels, np.column_stack([y_train, x_train])),
                                ("test", pixels, x_test),
                                ("test_labels", "label", y_test.reshape(-1, 1))):
        partial = paths[name].with_suffix(".partial")
        write_csv(partial, columns, rows)
        partial.rename(paths[name])
    return paths


if __name__ == "__main__":
    import sys

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "fashion-mnist")
    print({k: str(v) for k, v in write_fashion_mnist(target).items()})
