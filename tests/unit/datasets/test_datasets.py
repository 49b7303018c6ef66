"""IDX reading and the Kaggle layout, offline: the tests write small IDX files themselves."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from openaml.datasets import IDX_FILES, read_idx, write_kaggle


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def test_read_idx_round_trip() -> None:
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(read_idx(idx_bytes(images)), images)
    assert np.array_equal(read_idx(gzip.decompress(idx_bytes(images))), images)
    with pytest.raises(ValueError):
        read_idx(b"\x00\x00\x0d\x01" + b"\x00" * 8)  # not unsigned bytes
    with pytest.raises(ValueError):
        read_idx(gzip.decompress(idx_bytes(images))[:-1])  # truncated


def test_fetch_mnist_command_writes_kaggle_layout(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (5, 28, 28)), "y_train": np.arange(5),
              "x_test": rng.integers(0, 256, (3, 28, 28)), "y_test": np.array([7, 8, 9])}
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name, file_name in IDX_FILES.items():
        (mirror / file_name).write_bytes(idx_bytes(arrays[name]))
    out = tmp_path / "mnist"
    result = subprocess.run([sys.executable, "-m", "openaml", "fetch-mnist", str(out),
                             "--url-base", mirror.as_uri()], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    train = (out / "train.csv").read_text().splitlines()
    assert train[0].split(",")[:3] == ["label", "pixel0", "pixel1"] and len(train[0].split(",")) == 785
    assert len(train) == 6
    first = [int(v) for v in train[1].split(",")]
    assert first[0] == 0 and first[1:] == arrays["x_train"][0].ravel().tolist()
    test = (out / "test.csv").read_text().splitlines()
    assert len(test) == 4 and test[0].startswith("pixel0,") and len(test[1].split(",")) == 784
    assert (out / "test_labels.csv").read_text().split() == ["label", "7", "8", "9"]
    assert not list(out.glob("*.partial"))


def test_write_kaggle_replaces_whole_files(tmp_path: Path) -> None:
    x = np.zeros((1, 2, 2), np.uint8)
    paths = write_kaggle(tmp_path, x, np.array([1]), x, np.array([2]))
    assert paths["train"].read_text() == "label,pixel0,pixel1,pixel2,pixel3\n1,0,0,0,0\n"
