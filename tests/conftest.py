"""Fixtures shared by every test layer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")

REPO = Path(__file__).resolve().parents[1]
MNIST_DIR = REPO / "examples" / "mnist" / "data"


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    return MNIST_DIR
