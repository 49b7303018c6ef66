"""Parsing, validation and joining of s3:// URIs."""

from __future__ import annotations

import pytest

from openaml.storage.uris import S3Uri, StorageError, folder_uri, join_uri, parse_s3_uri


@pytest.mark.parametrize(
    ("uri", "bucket", "key"),
    [
        ("s3://bucket/a/b.csv", "bucket", "a/b.csv"),
        ("s3://bucket", "bucket", ""),
        ("s3://bucket/", "bucket", ""),
        ("s3://my.bucket-1/data/", "my.bucket-1", "data/"),
        ("s3://bucket/with space/é.csv", "bucket", "with space/é.csv"),
        ("s3://bucket/100%25 done.csv", "bucket", "100%25 done.csv"),
        ("s3://bucket/a%2fb", "bucket", "a%2fb"),  # decodes to a/b: no escape
        ("s3://bucket/...", "bucket", "..."),  # three dots is an ordinary name
        ("s3://bucket/a..b/c", "bucket", "a..b/c"),
    ],
)
def test_valid_uris_split_into_bucket_and_key(uri: str, bucket: str, key: str) -> None:
    assert parse_s3_uri(uri) == S3Uri(bucket, key)


def test_prefix_and_string_form() -> None:
    assert parse_s3_uri("s3://bucket").is_prefix
    assert parse_s3_uri("s3://bucket/a/").is_prefix
    assert not parse_s3_uri("s3://bucket/a").is_prefix
    assert str(parse_s3_uri("s3://bucket")) == "s3://bucket/"
    assert str(parse_s3_uri("s3://bucket/x/y")) == "s3://bucket/x/y"


ESCAPES = {
    "s3://bucket/../etc/passwd": "'..'",
    "s3://bucket/a/../../b": "'..'",
    "s3://bucket/..": "'..'",
    "s3://bucket/./a": "'.'",
    "s3://bucket/a/.": "'.'",
    "s3://bucket//etc/passwd": "absolute",
    "s3://bucket/%2e%2e/x": "after decoding",
    "s3://bucket/%2E%2E/x": "after decoding",
    "s3://bucket/a/%2e%2e": "after decoding",
    "s3://bucket/%252e%252e/x": "after decoding",
    "s3://bucket/%2fetc/passwd": "absolute",
    "s3://bucket/a%2f..%2fb": "after decoding",
    "s3://bucket/a%5cb": "backslash",
    "s3://bucket/a%00b": "NUL",
    "s3://bucket/a\x00b": "NUL",
    "s3://bucket/a\nb": "control",
    "s3://bucket/a\\b": "backslash",
    "s3://bucket/..\\x": "backslash",
    "s3://bucket/\uff0e\uff0e/x": "after decoding",  # FULLWIDTH FULL STOP
    "s3://bucket/\u2025/x": "after decoding",  # TWO DOT LEADER, NFKC '..'
    "s3://bucket/\uff0fetc": "absolute",  # FULLWIDTH SOLIDUS
    "s3://bucket/a\uff3cb": "backslash",  # FULLWIDTH REVERSE SOLIDUS
    "s3://bucket/a//b": "empty path segment",
    "s3://bucket/\ud800x": "not valid Unicode",
}


@pytest.mark.parametrize(("uri", "reason"), ESCAPES.items())
def test_escape_attempts_are_rejected_naming_uri_and_reason(uri: str, reason: str) -> None:
    with pytest.raises(StorageError) as err:
        parse_s3_uri(uri)
    message = str(err.value)
    assert reason in message
    assert message.startswith(uri.replace("\x00", "\\x00").replace("\n", "\\x0a")[:12])
    assert "\x00" not in message


def test_storage_error_is_a_value_error() -> None:
    assert issubclass(StorageError, ValueError)


@pytest.mark.parametrize(
    "bucket",
    [
        "ab",  # too short
        "a" * 64,  # too long
        "Bucket",  # upper case
        "my_bucket",  # underscore
        "-bucket",
        "bucket-",
        ".bucket",
        "..",
        ".",
        "my..bucket",
        "192.168.1.1",
        "xn--bucket",
        "sthree-data",
        "data-s3alias",
        "bu\x00cket",
    ],
)
def test_invalid_bucket_names_are_rejected(bucket: str) -> None:
    with pytest.raises(StorageError, match="bucket name"):
        parse_s3_uri(f"s3://{bucket}/key")


@pytest.mark.parametrize(
    "uri",
    ["http://bucket/key", "s3:/bucket/key", "s3://", "s3:///key", "bucket/key", "S3://bucket/k"],
)
def test_non_s3_uris_are_rejected(uri: str) -> None:
    with pytest.raises(StorageError, match="not an s3://BUCKET/KEY URI"):
        parse_s3_uri(uri)


def test_length_limits() -> None:
    assert parse_s3_uri("s3://bucket/" + "k" * 1024).key == "k" * 1024
    with pytest.raises(StorageError, match="1024 bytes"):
        parse_s3_uri("s3://bucket/" + "k" * 1025)
    with pytest.raises(StorageError, match="1024 bytes"):
        parse_s3_uri("s3://bucket/" + "é" * 513)  # 1026 UTF-8 bytes
    with pytest.raises(StorageError, match="2048"):
        parse_s3_uri("s3://bucket/" + "k" * 2048)


def test_child_is_validated() -> None:
    base = parse_s3_uri("s3://bucket/a/")
    assert base.child("a/b") == S3Uri("bucket", "a/b")
    with pytest.raises(StorageError):
        base.child("../b")


@pytest.mark.parametrize(
    ("base", "names", "expected"),
    [
        ("s3://b/out", ("batch-prediction", "x.gz"), "s3://b/out/batch-prediction/x.gz"),
        ("s3://b/out/", ("batch-prediction/", "x.gz"), "s3://b/out/batch-prediction/x.gz"),
        ("s3://b/out//", ("/x.gz",), "s3://b/out/x.gz"),
        ("s3://b", ("k",), "s3://b/k"),
        ("s3://b/stage", ("ds-1/",), "s3://b/stage/ds-1/"),
        ("s3://b/stage/", (), "s3://b/stage"),
    ],
)
def test_join_uri_puts_exactly_one_slash_between_parts(
    base: str, names: tuple[str, ...], expected: str
) -> None:
    assert join_uri(base, *names) == expected


def test_folder_uri_always_ends_with_one_slash() -> None:
    assert folder_uri("s3://b/stage", "ds-1") == "s3://b/stage/ds-1/"
    assert folder_uri("s3://b/stage/", "ds-1/") == "s3://b/stage/ds-1/"
    assert folder_uri("s3://b/", "") == "s3://b/"
