"""Parse and validate `s3://BUCKET/KEY` URIs, and join them.

Every URI that reaches a store goes through `parse_s3_uri`, which rejects anything that could
name a file outside the storage root: `.`/`..` segments, absolute keys, empty segments,
backslashes, control characters, and the same tricks hidden behind percent-encoding
(`%2e%2e`) or Unicode compatibility forms (U+FF0E FULLWIDTH FULL STOP, U+FF0F FULLWIDTH
SOLIDUS). The rules apply to both stores, so a request behaves the same on a local folder and
on real S3.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import unquote

from openaml.ml.errors import InputError

MAX_URI_CHARS = 2048  # the service model's S3Url limit
MAX_KEY_BYTES = 1024  # S3's limit on a key, UTF-8 encoded

_URI = re.compile(r"s3://([^/]+)(/.*)?", re.DOTALL)
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class StorageError(InputError):
    """A URI is invalid, or an object cannot be found, read or written."""


class ObjectNotFoundError(StorageError):
    """The named object (or its bucket) does not exist."""


class S3UnavailableError(StorageError):
    """An S3 request kept failing transiently (no connection, 5xx, throttling) past its retries."""


@dataclass(frozen=True)
class S3Uri:
    """A validated location: `key` has no leading `/` and is `""` for a whole bucket."""

    bucket: str
    key: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def is_prefix(self) -> bool:
        """True for a folder-like location: a whole bucket or a key ending in `/`."""
        return self.key == "" or self.key.endswith("/")

    def child(self, key: str) -> S3Uri:
        """The URI of another key in the same bucket (validated)."""
        return parse_s3_uri(f"s3://{self.bucket}/{key}")


def parse_s3_uri(uri: str) -> S3Uri:
    """Split and validate an `s3://BUCKET/KEY` URI; raise StorageError naming URI and reason."""
    if not isinstance(uri, str):
        raise StorageError(f"{uri!r} is not an s3:// URI")
    if len(uri) > MAX_URI_CHARS:
        raise StorageError(f"{shown(uri[:80])}...: URI longer than {MAX_URI_CHARS} characters")
    match = _URI.fullmatch(uri)
    if match is None:
        raise StorageError(f"{shown(uri)}: not an s3://BUCKET/KEY URI")
    bucket, path = match.group(1), match.group(2) or "/"
    problem = bucket_name_problem(bucket) or key_problem(path[1:])
    if problem:
        raise StorageError(f"{shown(uri)}: {problem}")
    return S3Uri(bucket, path[1:])


def shown(uri: str) -> str:
    """The URI as it can be put in a message: control characters escaped (`\\x00`)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", uri)


def bucket_name_problem(bucket: str) -> str | None:
    """Why `bucket` is not a valid S3 bucket name (AWS general-purpose rules), or None."""
    if not _BUCKET.fullmatch(bucket):
        return (
            f"invalid bucket name {bucket!r} (3-63 lower-case letters, digits, '.' or '-',"
            " starting and ending with a letter or digit)"
        )
    if ".." in bucket:
        return f"invalid bucket name {bucket!r} (two adjacent periods)"
    try:
        ipaddress.IPv4Address(bucket)
        return f"invalid bucket name {bucket!r} (formatted as an IP address)"
    except ValueError:
        pass
    if bucket.startswith(_BUCKET_PREFIXES) or bucket.endswith(_BUCKET_SUFFIXES):
        return f"invalid bucket name {bucket!r} (reserved prefix or suffix)"
    return None


def key_problem(key: str) -> str | None:
    """Why `key` could escape a storage root or alias another key, or None when it is safe."""
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        return f"key longer than {MAX_KEY_BYTES} bytes"
    # Check the key as given, after percent-decoding (repeatedly: %252e -> %2e -> .), and in
    # Unicode NFKC form (U+FF0E FULLWIDTH FULL STOP -> '.'), so no spelling of '..' gets through.
    seen = {key}
    forms = [key]
    decoded = key
    for _ in range(4):
        decoded = unquote(decoded) if "%" in decoded else decoded
        if decoded in seen:
            break
        seen.add(decoded)
        forms.append(decoded)
    forms += [unicodedata.normalize("NFKC", form) for form in list(forms)]
    for index, form in enumerate(forms):
        how = "" if index == 0 else " (after decoding)"
        problem = _plain_key_problem(form)
        if problem:
            return problem + how
    return None


def _plain_key_problem(key: str) -> str | None:
    if _CONTROL.search(key):
        return "key contains a NUL or control character"
    if "\\" in key:
        return "key contains a backslash"
    if any(0xD800 <= ord(char) <= 0xDFFF for char in key):
        return "key is not valid Unicode"
    if key.startswith("/"):
        return "key is an absolute path"
    segments = key.split("/")
    if any(segment in (".", "..") for segment in segments):
        return "key contains a '.' or '..' path segment"
    if "" in segments[:-1]:
        return "key contains an empty path segment ('//')"
    return None


def join_uri(base: str, *names: str) -> str:
    """Append names to a location with exactly one `/` between parts.

    `join_uri("s3://b/out", "batch-prediction", "x.gz")` and
    `join_uri("s3://b/out/", "batch-prediction/", "x.gz")` both give
    `s3://b/out/batch-prediction/x.gz`. A trailing `/` on the last name is kept.
    """
    uri = base.rstrip("/")
    for name in names:
        stripped = name.strip("/")
        if stripped:
            uri = f"{uri}/{stripped}"
    if names and names[-1].endswith("/"):
        uri += "/"
    return uri


def folder_uri(base: str, *names: str) -> str:
    """Like `join_uri`, but always ending with one `/` (a prefix naming a folder)."""
    return join_uri(base, *names).rstrip("/") + "/"
