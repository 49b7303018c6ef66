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

import os
import subprocess
from pathlib import Path

from openaml.datasets import IDX_FILES, read_idx, write_kaggle

SOURCE = Path("/usr/share/datasets/fashion-mnist")
PACKAGE = "dataset-fashion-mnist"


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
    arrays = {name: read_idx((SOURCE / file_name).read_bytes()) for name, file_name in IDX_FILES.items()}
    return write_kaggle(out, **arrays)


if __name__ == "__main__":
    import sys

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "fashion-mnist")
    print({k: str(v) for k, v in write_fashion_mnist(target).items()})
