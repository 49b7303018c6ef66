"""The same behaviour from LocalObjectStore and S3ObjectStore (a real moto server)."""

from __future__ import annotations

import gzip
import socket
from pathlib import Path

import boto3
import pytest

from openaml.storage import (
    LocalObjectStore,
    ObjectInfo,
    ObjectNotFoundError,
    ObjectStore,
    S3ObjectStore,
    StorageError,
    open_object_store,
)
from openaml.storage.objects import Level, first_data_file, resolve_data_location

StoreAndBucket = tuple[ObjectStore, str]


def test_write_read_stat_round_trip(store_and_bucket: StoreAndBucket) -> None:
    store, bucket = store_and_bucket
    uri = f"s3://{bucket}/a/b/data.csv"
    store.write_bytes(uri, b"1,2\n3,4\n")
    assert store.read_bytes(uri) == b"1,2\n3,4\n"
    assert store.stat(uri) == ObjectInfo(uri, "a/b/data.csv", 8)
    with store.open_read(uri) as stream:
        assert stream.readline() == b"1,2\n"
        assert stream.read() == b"3,4\n"


def test_missing_objects(store_and_bucket: StoreAndBucket) -> None:
    store, bucket = store_and_bucket
    store.write_bytes(f"s3://{bucket}/dir/file", b"x")
    for uri in (f"s3://{bucket}/nope", f"s3://{bucket}/dir", f"s3://{bucket}/dir/"):
        assert store.stat(uri) is None
        with pytest.raises(ObjectNotFoundError, match="no such object"):
            store.open_read(uri)
    with pytest.raises(ObjectNotFoundError):
        store.read_bytes("s3://no-such-bucket-here/x")
    assert store.stat("s3://no-such-bucket-here/x") is None
    assert store.list("s3://no-such-bucket-here/") == []


KEYS = ["b.csv", "a/z.csv", "a/b.csv", "a.csv", "A.csv", "a-b.csv", "é.csv", "a/b/c/deep.csv"]


def test_list_is_recursive_in_byte_order(store_and_bucket: StoreAndBucket) -> None:
    store, bucket = store_and_bucket
    for index, key in enumerate(KEYS):
        store.write_bytes(f"s3://{bucket}/{key}", b"x" * (index + 1))
    listed = store.list(f"s3://{bucket}")
    # Byte order by hand: 'A'(0x41) < 'a-'(0x2d) < 'a.'(0x2e) < 'a/'(0x2f) < 'b' < 'é'(0xc3).
    expected = [
        "A.csv",
        "a-b.csv",
        "a.csv",
        "a/b.csv",
        "a/b/c/deep.csv",
        "a/z.csv",
        "b.csv",
        "é.csv",
    ]
    assert [info.key for info in listed] == expected
    assert [info.uri for info in listed] == [f"s3://{bucket}/{key}" for key in expected]
    assert {info.key: info.size for info in listed} == {k: i + 1 for i, k in enumerate(KEYS)}


def test_list_matches_partial_prefixes(store_and_bucket: StoreAndBucket) -> None:
    store, bucket = store_and_bucket
    for key in ["data/x.csv", "dat.csv", "database/y.csv", "other.csv", "da"]:
        store.write_bytes(f"s3://{bucket}/{key}", b"x")
    assert [i.key for i in store.list(f"s3://{bucket}/dat")] == [
        "dat.csv",
        "data/x.csv",
        "database/y.csv",
    ]
    assert [i.key for i in store.list(f"s3://{bucket}/data/")] == ["data/x.csv"]
    assert [i.key for i in store.list(f"s3://{bucket}/data")] == ["data/x.csv", "database/y.csv"]
    assert store.list(f"s3://{bucket}/zzz") == []


def _fill(store: ObjectStore, bucket: str, objects: dict[str, bytes]) -> None:
    for key, data in objects.items():
        store.write_bytes(f"s3://{bucket}/{key}", data)


def test_resolve_prefix_skips_empty_schema_manifest_and_service_files(store_and_bucket: StoreAndBucket) -> None:
    store, bucket = store_and_bucket
    _fill(
        store,
        bucket,
        {
            "in/2.csv": b"22",
            "in/10.csv": b"1010",
            "in/sub/3.csv": b"3",
            "in/empty.csv": b"",
            "in/in.schema": b"{}",
            "in/x.manifest": b"[]",
            "in/out/batch-prediction/.openaml-pieces/bp/00000-0.gz": b"p",  # a batch in the making
            "in/.openaml-x.csv": b"x",
            "in.schema": b"{}",
            "other/1.csv": b"1",
        },
    )
    files = store.resolve_data_location(f"s3://{bucket}/in/")
    assert [(f.key, f.size) for f in files] == [
        ("in/10.csv", 4),
        ("in/2.csv", 2),
        ("in/sub/3.csv", 1),
    ]


def test_resolve_exact_key_then_folder_fallback(store_and_bucket: StoreAndBucket) -> None:
    store, bucket = store_and_bucket
    _fill(
        store,
        bucket,
        {"one.csv": b"abc", "one.csv.bak": b"zz", "many/a.csv": b"a", "many/b.csv": b"b"},
    )
    assert [f.key for f in store.resolve_data_location(f"s3://{bucket}/one.csv")] == ["one.csv"]
    # 'many' is not an object, so '<key>/' is used; 'many/' itself as a prefix gives the same.
    assert [f.key for f in store.resolve_data_location(f"s3://{bucket}/many")] == [
        "many/a.csv",
        "many/b.csv",
    ]
    assert store.resolve_data_location(f"s3://{bucket}/many/") == store.resolve_data_location(
        f"s3://{bucket}/many"
    )


def test_resolve_bare_bucket_lists_everything(store_and_bucket: StoreAndBucket) -> None:
    store, bucket = store_and_bucket
    _fill(store, bucket, {"z.csv": b"z", "a/b.csv": b"b", "a.schema": b"{}"})
    assert [f.key for f in store.resolve_data_location(f"s3://{bucket}")] == ["a/b.csv", "z.csv"]


@pytest.mark.parametrize("location", ["missing.csv", "missing/", "only-schema/", "on"])
def test_resolve_empty_location_fails_clearly(
    store_and_bucket: StoreAndBucket, location: str
) -> None:
    store, bucket = store_and_bucket
    _fill(store, bucket, {"only-schema/x.schema": b"{}", "only-schema/e.csv": b"", "one.csv": b"1"})
    with pytest.raises(StorageError, match="empty or missing") as err:
        store.resolve_data_location(f"s3://{bucket}/{location}")
    assert f"s3://{bucket}/{location}" in str(err.value)


@pytest.mark.parametrize("location", ["data/", "data.csv", ""])
def test_resolve_missing_bucket_fails_naming_the_bucket(store_and_bucket: StoreAndBucket, location: str) -> None:
    """A location in a bucket that does not exist said only "empty or missing"."""
    store, _ = store_and_bucket
    with pytest.raises(StorageError, match="its bucket no-such-bucket-here does not exist"):
        store.resolve_data_location(f"s3://no-such-bucket-here/{location}")


def test_write_is_atomic_and_invisible_until_closed(store_and_bucket: StoreAndBucket) -> None:
    store, bucket = store_and_bucket
    uri = f"s3://{bucket}/out/result.csv"
    store.write_bytes(uri, b"old")
    with store.open_write(uri) as stream:
        stream.write(b"new ")
        stream.write(b"content")
        assert store.read_bytes(uri) == b"old"
        assert [i.key for i in store.list(f"s3://{bucket}/")] == ["out/result.csv"]
    assert store.read_bytes(uri) == b"new content"
    fresh = f"s3://{bucket}/out/fresh.csv"
    with store.open_write(fresh) as stream:
        stream.write(b"partial")
        assert store.stat(fresh) is None
    assert store.stat(fresh) == ObjectInfo(fresh, "out/fresh.csv", 7)


def test_failed_write_leaves_nothing(store_and_bucket: StoreAndBucket) -> None:
    store, bucket = store_and_bucket
    uri = f"s3://{bucket}/out/result.csv"
    store.write_bytes(uri, b"old")
    with pytest.raises(RuntimeError):
        with store.open_write(uri) as stream:
            stream.write(b"half")
            raise RuntimeError("job failed")
    with pytest.raises(RuntimeError):
        with store.open_write(f"s3://{bucket}/out/new.csv") as stream:
            stream.write(b"half")
            raise RuntimeError("job failed")
    assert store.read_bytes(uri) == b"old"
    assert [i.key for i in store.list(f"s3://{bucket}/")] == ["out/result.csv"]


def test_gzip_through_open_write_and_streamed_read(store_and_bucket: StoreAndBucket) -> None:
    store, bucket = store_and_bucket
    uri = f"s3://{bucket}/big.csv.gz"
    lines = [f"{i},{i * i}\n".encode() for i in range(20_000)]
    with store.open_write(uri) as raw, gzip.GzipFile(fileobj=raw, mode="wb") as zipped:
        zipped.writelines(lines)
    with store.open_read(uri) as raw, gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
        assert unzipped.readline() == b"0,0\n"
        assert unzipped.read() == b"".join(lines[1:])


def test_delete_is_idempotent(store_and_bucket: StoreAndBucket) -> None:
    store, bucket = store_and_bucket
    _fill(store, bucket, {"d/a.csv": b"a", "d/b.csv": b"b"})
    store.delete(f"s3://{bucket}/d/a.csv")
    store.delete(f"s3://{bucket}/d/a.csv")
    store.delete(f"s3://{bucket}/never")
    assert [i.key for i in store.list(f"s3://{bucket}/")] == ["d/b.csv"]


@pytest.mark.parametrize(
    "method",
    ["list", "stat", "open_read", "open_write", "read_bytes", "delete", "resolve_data_location"],
)
def test_every_method_rejects_escaping_uris(store_and_bucket: StoreAndBucket, method: str) -> None:
    store, bucket = store_and_bucket
    with pytest.raises(StorageError, match=r"'\.\.'"):
        getattr(store, method)(f"s3://{bucket}/a/../../etc/passwd")
    with pytest.raises(StorageError, match="absolute"):
        store.write_bytes(f"s3://{bucket}//etc/passwd", b"x")


def test_describe_reports_reachable(store_and_bucket: StoreAndBucket) -> None:
    store, _ = store_and_bucket
    info = store.describe()
    assert info["reachable"] is True
    assert info["kind"] in ("local", "s3")


def test_describe_unreachable_s3(aws_session: boto3.session.Session) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = S3ObjectStore(endpoint_url=f"http://127.0.0.1:{port}", session=aws_session, retry_seconds=0)
    assert store.describe() == {
        "kind": "s3",
        "endpoint": f"http://127.0.0.1:{port}",
        "region": "us-east-1",
        "reachable": False,
    }
    with pytest.raises(StorageError, match=f"s3://bucket/x: cannot read: .*127.0.0.1:{port}"):
        store.stat("s3://bucket/x")


def test_s3_resolve_skips_folder_markers(
    s3_store: S3ObjectStore, s3_bucket: str, moto_endpoint: str, aws_session: boto3.session.Session
) -> None:
    client = aws_session.client("s3", endpoint_url=moto_endpoint)
    for key, body in [("in/", b""), ("in/sub/", b""), ("in/sub/a.csv", b"a"), ("in/b.csv", b"bb")]:
        client.put_object(Bucket=s3_bucket, Key=key, Body=body)
    assert [i.key for i in s3_store.list(f"s3://{s3_bucket}/in/")] == [
        "in/",
        "in/b.csv",
        "in/sub/",
        "in/sub/a.csv",
    ]
    assert [i.key for i in s3_store.resolve_data_location(f"s3://{s3_bucket}/in")] == [
        "in/b.csv",
        "in/sub/a.csv",
    ]


def test_factory_picks_the_back_end(tmp_path: Path) -> None:
    assert isinstance(open_object_store(None, tmp_path), LocalObjectStore)
    assert isinstance(open_object_store("", tmp_path), LocalObjectStore)
    s3 = open_object_store("http://127.0.0.1:9", tmp_path, region="eu-west-1")
    assert isinstance(s3, S3ObjectStore)
    assert s3.endpoint_url == "http://127.0.0.1:9"
    assert isinstance(open_object_store("aws", tmp_path, region="eu-west-1"), S3ObjectStore)


def test_buckets_are_listed_by_name(store_and_bucket: StoreAndBucket, tmp_path: Path) -> None:
    """The console's browser starts from the buckets: the local store's are its root's
    folders named as buckets, S3's those ListBuckets gives."""
    store, bucket = store_and_bucket
    assert bucket in store.buckets() and store.buckets() == sorted(store.buckets())
    if isinstance(store, LocalObjectStore):
        (store.root / "Not_A_Bucket").mkdir()
        (store.root / "a-file").write_bytes(b"x")
        assert store.buckets() == [bucket]
        assert LocalObjectStore(tmp_path / "nothing-here").buckets() == []


def test_one_level_of_a_folder_is_listed_without_what_lies_deeper(store_and_bucket: StoreAndBucket) -> None:
    """The console's browser lists a folder's folders and objects in byte order, at most
    `limit` of them, however many objects lie deeper (S3: Delimiter="/", not every key)."""
    store, bucket = store_and_bucket
    for key in ("b.csv", "a/one.csv", "a/deep/two.csv", "A.csv", "c/x.csv", "d.csv"):
        store.write_bytes(f"s3://{bucket}/{key}", b"x")
    top = store.list_level(f"s3://{bucket}/", 10)
    assert top.folders == [f"s3://{bucket}/a/", f"s3://{bucket}/c/"] and not top.truncated
    assert [o.key for o in top.objects] == ["A.csv", "b.csv", "d.csv"] and top.objects[0].size == 1
    inside = store.list_level(f"s3://{bucket}/a/", 10)
    assert inside.folders == [f"s3://{bucket}/a/deep/"] and [o.key for o in inside.objects] == ["a/one.csv"]
    cut = store.list_level(f"s3://{bucket}/", 3)
    assert cut.truncated and len(cut.folders) + len(cut.objects) == 3
    assert [o.key for o in cut.objects][:1] == ["A.csv"] and f"s3://{bucket}/a/" in cut.folders
    assert store.list_level("s3://no-such-bucket-here/", 10) == Level([], [], False)
    with pytest.raises(StorageError, match="not a folder"):
        store.list_level(f"s3://{bucket}/b.csv", 10)


@pytest.mark.parametrize("keys", [
    ["a-b.csv", "a/x.csv", "a.csv"],                 # '-' and '.' sort before the folder 'a/'
    ["a/", "a/.schema", "a/deep/empty.csv", "a/deep/z.csv", "b.csv"],  # marker, skipped name, empty file
    ["x/y/z/deep.csv", "x0.csv"],                    # a folder's whole content before 'x0'
    ["only.schema", "zz/data.manifest", "zz/real.csv"],
])
def test_the_first_data_file_is_found_a_level_at_a_time_as_the_whole_listing_finds_it(
        store_and_bucket: StoreAndBucket, keys: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from openaml.storage import objects

    store, bucket = store_and_bucket
    for key in keys:
        if not key.endswith("/"):
            store.write_bytes(f"s3://{bucket}/{key}", b"" if "empty" in key else b"1,2\n")
    for location in (f"s3://{bucket}/", f"s3://{bucket}/a", f"s3://{bucket}/x/"):
        try:
            expected = resolve_data_location(store, location)[0]
        except StorageError:
            with pytest.raises(StorageError):
                first_data_file(store, location)
            continue
        assert first_data_file(store, location) == expected
    monkeypatch.setattr(objects, "LEVEL_ENTRIES", 1)  # levels too large: the whole listing
    assert first_data_file(store, f"s3://{bucket}/") == resolve_data_location(store, f"s3://{bucket}/")[0]


def test_reading_from_an_offset_and_by_byte_ranges(store_and_bucket: StoreAndBucket) -> None:
    """open_read(uri, start) (a ranged GET on S3) reads a datasource's partitions: their
    ranges, cut at line starts, give back the object byte for byte."""
    from functools import partial

    from openaml.ml.data import DataObject
    from openaml.ml.data.partitions import open_range, plan_ranges

    store, bucket = store_and_bucket
    uri = f"s3://{bucket}/p/data.csv"
    content = b"a,b\n" + b"".join(b"%d,%d\n" % (i, i * i) for i in range(3000))
    store.write_bytes(uri, content)
    with store.open_read(uri, 10) as stream:
        assert stream.read() == content[10:]
    with store.open_read(uri, len(content) - 3) as stream:
        assert stream.read(2) == content[-3:-1]
    with store.open_read(uri, 10, 20) as stream:  # at least those bytes (S3: exactly those)
        given = stream.read()
        assert given[:10] == content[10:20] and (given == content[10:20] or given == content[10:])
    obj = DataObject(uri, "p/data.csv", len(content), partial(store.open_read, uri), partial(store.open_read, uri))
    ranges = plan_ranges([obj], 4096)
    assert len(ranges) > 5
    read = []
    for part in ranges:
        assert part.start == 0 or content[part.start - 1:part.start] == b"\n"
        with open_range(obj, part) as stream:
            read.append(stream.read())
    assert b"".join(read) == content


@pytest.mark.parametrize("part", ["a" * 256, "é" * 128, "a" * 300])
def test_a_key_part_longer_than_a_file_name(store_and_bucket: StoreAndBucket, part: str) -> None:
    """S3 keeps keys of up to 1,024 bytes whatever their parts. The embedded store keeps each
    part as a file or folder name: every call on a longer one ended in the OS's "File name
    too long" (a batch prediction to such an OutputUri FAILED with "Internal error (OSError)").
    Reading finds nothing there, and writing is refused, with the reason."""
    store, bucket = store_and_bucket
    store.open_write(f"s3://{bucket}/short.csv").close()
    keys = [f"{part}", f"{part}/x.csv", f"out/{part}/x.csv", f"out/{part}"]
    for key in keys:
        uri = f"s3://{bucket}/{key}"
        assert store.stat(uri) is None
        with pytest.raises(ObjectNotFoundError):
            store.open_read(uri)
        store.delete(uri)
        assert store.list(uri) == [] and store.list(uri + "/") == []
        assert store.list_level(uri + "/", 10) == Level([], [], False)
        with pytest.raises(StorageError):
            resolve_data_location(store, uri)
    for key in keys:
        uri = f"s3://{bucket}/{key}"
        if isinstance(store, LocalObjectStore):
            with pytest.raises(StorageError, match="is [0-9]+ bytes long, and this embedded store keeps each part "
                                                   "as a file or folder name, of at most 255 bytes"):
                store.open_write(uri)
        else:
            with store.open_write(uri) as out:
                out.write(b"x\n")
            assert store.stat(uri) is not None
            store.delete(uri)
    assert [info.key for info in store.list(f"s3://{bucket}/")] == ["short.csv"]
