"""LocalObjectStore specifics: the folder layout, symbolic links, temporary files."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from openaml.storage import LocalObjectStore, StorageError
from openaml.storage.local import TEMP_PREFIX


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "s3" / "bucket").mkdir(parents=True)
    return tmp_path / "s3"


def test_uri_maps_to_root_bucket_key(root: Path) -> None:
    store = LocalObjectStore(root)
    store.write_bytes("s3://bucket/a/b.csv", b"x")
    store.write_bytes("s3://new-bucket/c.csv", b"y")  # a missing bucket folder is created
    assert (root / "bucket" / "a" / "b.csv").read_bytes() == b"x"
    assert (root / "new-bucket" / "c.csv").read_bytes() == b"y"


def test_bucket_symlink_leading_outside_is_refused(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_bytes(b"secret")
    (root / "escape").symlink_to(outside, target_is_directory=True)
    store = LocalObjectStore(root)
    for call in (store.stat, store.open_read, store.read_bytes, store.delete):
        with pytest.raises(
            StorageError,
            match=re.escape("s3://escape/secret.csv: resolves outside the storage root"),
        ):
            call("s3://escape/secret.csv")
    with pytest.raises(StorageError, match="outside the storage root"):
        store.write_bytes("s3://escape/new.csv", b"x")
    assert sorted(p.name for p in outside.iterdir()) == ["secret.csv"]
    with pytest.raises(StorageError, match="outside the storage root"):
        store.list("s3://escape/")


def test_links_inside_bucket_are_followed_only_within_root(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_bytes(b"secret")
    (root / "bucket" / "real").mkdir()
    (root / "bucket" / "real" / "a.csv").write_bytes(b"a")
    (root / "bucket" / "link-in").symlink_to(root / "bucket" / "real", target_is_directory=True)
    (root / "bucket" / "link-out").symlink_to(outside, target_is_directory=True)
    (root / "bucket" / "file-out.csv").symlink_to(outside / "secret.csv")
    (root / "bucket" / "loop").symlink_to(root / "bucket", target_is_directory=True)
    store = LocalObjectStore(root)
    assert [i.key for i in store.list("s3://bucket/")] == ["link-in/a.csv", "real/a.csv"]
    assert store.read_bytes("s3://bucket/link-in/a.csv") == b"a"
    with pytest.raises(StorageError, match="outside the storage root"):
        store.read_bytes("s3://bucket/file-out.csv")
    with pytest.raises(StorageError, match="outside the storage root"):
        store.read_bytes("s3://bucket/link-out/secret.csv")


def test_root_that_is_itself_a_link_works(tmp_path: Path, root: Path) -> None:
    (tmp_path / "link-root").symlink_to(root, target_is_directory=True)
    store = LocalObjectStore(tmp_path / "link-root")
    store.write_bytes("s3://bucket/k", b"v")
    assert [i.key for i in store.list("s3://bucket")] == ["k"]


def test_temporary_files_are_hidden_and_cleaned(root: Path) -> None:
    store = LocalObjectStore(root)
    with store.open_write("s3://bucket/out/x.csv") as stream:
        stream.write(b"data")
        names = os.listdir(root / "bucket" / "out")
        assert len(names) == 1 and names[0].startswith(TEMP_PREFIX)
        assert store.list("s3://bucket/") == []
    assert os.listdir(root / "bucket" / "out") == ["x.csv"]
    writer = store.open_write("s3://bucket/out/y.csv")
    writer.write(b"abandoned")
    del writer  # dropped without close: discarded, not published
    assert os.listdir(root / "bucket" / "out") == ["x.csv"]


def test_delete_prunes_empty_folders_but_keeps_bucket(root: Path) -> None:
    store = LocalObjectStore(root)
    store.write_bytes("s3://bucket/a/b/c.csv", b"x")
    store.write_bytes("s3://bucket/a/keep.csv", b"x")
    store.delete("s3://bucket/a/b/c.csv")
    assert sorted(os.listdir(root / "bucket" / "a")) == ["keep.csv"]
    store.delete("s3://bucket/a/keep.csv")
    assert os.listdir(root / "bucket") == []


def test_files_with_invalid_key_names_are_not_listed(root: Path) -> None:
    (root / "bucket" / "back\\slash.csv").write_bytes(b"x")
    (root / "bucket" / "ok.csv").write_bytes(b"x")
    assert [i.key for i in LocalObjectStore(root).list("s3://bucket/")] == ["ok.csv"]


def test_write_over_a_folder_fails_cleanly(root: Path) -> None:
    store = LocalObjectStore(root)
    store.write_bytes("s3://bucket/a/b.csv", b"x")
    with pytest.raises(StorageError, match="s3://bucket/a: cannot write"):
        store.write_bytes("s3://bucket/a", b"y")
    with pytest.raises(StorageError, match="ends with '/'"):
        store.open_write("s3://bucket/a/")
    assert [i.key for i in store.list("s3://bucket/")] == ["a/b.csv"]


def test_describe(root: Path, tmp_path: Path) -> None:
    assert LocalObjectStore(root).describe() == {
        "kind": "local",
        "root": str(root),
        "reachable": True,
    }
    assert LocalObjectStore(tmp_path / "missing" / "s3").describe()["reachable"] is True  # made when written to
    (tmp_path / "file").write_bytes(b"")
    assert LocalObjectStore(tmp_path / "file").describe()["reachable"] is False
    assert LocalObjectStore(tmp_path / "file" / "s3").describe()["reachable"] is False


def test_temporary_files_of_other_writers_are_kept_until_stale(root: Path) -> None:
    """With other front ends on the same folder, start-up removes only the temporary files no
    one has written for `idle_seconds`; alone, every one."""
    store = LocalObjectStore(root)
    (root / "bucket" / "out").mkdir(parents=True)
    fresh, stale = root / "bucket" / "out" / f"{TEMP_PREFIX}fresh", root / "bucket" / f"{TEMP_PREFIX}stale"
    for path in (fresh, stale):
        path.write_bytes(b"partial")
    os.utime(stale, (1, 1))
    assert store.remove_temporary_files(idle_seconds=3600) == 1
    assert fresh.exists() and not stale.exists()
    assert store.remove_temporary_files() == 1 and not fresh.exists()


@pytest.mark.parametrize("uri", ["s3://bucket/a.csv/b.csv", "s3://bucket/a.csv/deeper/b.csv"])
def test_writing_under_an_object_says_it_is_not_a_folder(root: Path, uri: str) -> None:
    """S3 keeps "a.csv" and "a.csv/b.csv" side by side, a folder cannot: the message said
    "File exists" or "Not a directory"."""
    store = LocalObjectStore(root)
    store.write_bytes("s3://bucket/a.csv", b"x")
    with pytest.raises(StorageError) as refused:
        store.write_bytes(uri, b"y")
    assert "s3://bucket/a.csv is an object, not a folder" in str(refused.value)
    assert "File exists" not in str(refused.value) and "Not a directory" not in str(refused.value)


def test_writing_over_a_folder_says_objects_are_under_it(root: Path) -> None:
    store = LocalObjectStore(root)
    store.write_bytes("s3://bucket/a/b.csv", b"x")
    with pytest.raises(StorageError, match=r"objects are kept under s3://bucket/a/") as refused:
        store.write_bytes("s3://bucket/a", b"y")
    assert "Is a directory" not in str(refused.value)
    assert not [p for p in (root / "bucket").rglob("*") if p.name.startswith(TEMP_PREFIX)]
