"""AWS Signature Version 4 verification of incoming requests, and the server credentials file.

`verify_request` recomputes the signature with botocore's own SigV4Auth over exactly the headers
the client signed, so it agrees with every botocore/boto3 version. With `lookup_secret=None`
("permissive" mode: no keys configured) any well-formed Authorization header is accepted and only
parsed. All failures are HTTP 400 (spec README "Wire protocol"):

* no Authorization header                -> MissingAuthenticationTokenException
* header or X-Amz-Date malformed/missing -> IncompleteSignatureException
* access key id not configured           -> UnrecognizedClientException
* request time > max_skew from `now`     -> InvalidSignatureException "Signature expired: ..."
* scope/service/payload/signature mismatch, Host or X-Amz-Target unsigned -> InvalidSignatureException

Credentials file (`parse_credentials` / `load_credentials`): `ACCESS_KEY_ID:SECRET` lines, then
optionally INI sections like ~/.aws/credentials (any section name, one key pair per section);
blank lines and lines starting with `#` or `;` are ignored:

    AKIDBOB:bobsecret
    [alice]
    aws_access_key_id = AKIDALICE
    aws_secret_access_key = wJalrXUtnFEMI/K7MDENG

A section's name is the IAM user its key belongs to (`CreatedByIamUser` becomes
`arn:aws:iam::<account>:user/alice`); `[default]` and `KEY:SECRET` lines belong to the root.
"""

from __future__ import annotations

import configparser
import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

from openaml.errors import (
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)

ALGORITHM = "AWS4-HMAC-SHA256"
SIGNING_NAME = "machinelearning"
MAX_SKEW = dt.timedelta(minutes=15)
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
# Headers a verified JSON-protocol request must sign (boto3, boto 2 and the JavaScript SDK do).
MUST_SIGN = ("host", "x-amz-target")

_PARAM_RE = re.compile(r"\s*(\w+)\s*=\s*([^,\s]*)\s*")
_CREDENTIAL_RE = re.compile(r"([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request")
_SIGNATURE_RE = re.compile(r"[0-9a-f]{64}")
_SIGNED_HEADERS_RE = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]+(;[a-z0-9!#$%&'*+.^_`|~-]+)*")


@dataclass(frozen=True)
class Authorization:
    """The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header."""

    access_key_id: str
    date: str  # YYYYMMDD of the credential scope
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_authorization(value: str | None) -> Authorization:
    """Parse the header; MissingAuthenticationToken if absent, IncompleteSignature if malformed."""
    if value is None or not value.strip():
        raise MissingAuthenticationTokenException("Missing Authentication Token")
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise IncompleteSignatureException(
            f"Unsupported Authorization algorithm; expected {ALGORITHM}")
    params: dict[str, str] = {}
    for part in rest.split(","):
        m = _PARAM_RE.fullmatch(part)
        if m is None:
            raise IncompleteSignatureException(
                f"Malformed Authorization parameter '{part.strip()}'")
        params[m[1]] = m[2]
    for required in ("Credential", "SignedHeaders", "Signature"):
        if not params.get(required):
            raise IncompleteSignatureException(
                f"Authorization header requires '{required}' parameter")
    cred = _CREDENTIAL_RE.fullmatch(params["Credential"])
    if cred is None:
        raise IncompleteSignatureException(
            "Credential must have the form <key>/<YYYYMMDD>/<region>/<service>/aws4_request")
    if _SIGNED_HEADERS_RE.fullmatch(params["SignedHeaders"]) is None:
        raise IncompleteSignatureException("SignedHeaders must be ';'-separated lower-case names")
    if _SIGNATURE_RE.fullmatch(params["Signature"]) is None:
        raise IncompleteSignatureException("Signature must be 64 lower-case hex digits")
    return Authorization(cred[1], cred[2], cred[3], cred[4],
                         tuple(params["SignedHeaders"].split(";")), params["Signature"])


def request_time(headers: Mapping[str, str]) -> dt.datetime:
    """The signing time from X-Amz-Date (or Date); IncompleteSignatureException if unusable."""
    amz_date, date = headers.get("x-amz-date"), headers.get("date")
    try:
        if amz_date:
            return dt.datetime.strptime(amz_date, _AMZ_DATE).replace(tzinfo=dt.UTC)
        if date:
            return parsedate_to_datetime(date).astimezone(dt.UTC)
    except (ValueError, TypeError):
        raise IncompleteSignatureException("X-Amz-Date (or Date) header is malformed") from None
    raise IncompleteSignatureException(
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header")


class _SignedHeadersOnly(SigV4Auth):  # type: ignore[misc]  # botocore has no types
    """SigV4Auth that canonicalizes exactly the headers the client listed, none added or dropped."""

    def __init__(self, credentials: Credentials, service: str, region: str,
                 signed: tuple[str, ...]) -> None:
        super().__init__(credentials, service, region)
        self._signed = signed

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        selected = HTTPHeaders()
        for name in self._signed:
            selected[name] = request.headers.get(name, "")
        return selected


def admit_request(
    headers: Mapping[str, str],
    lookup_secret: Callable[[str], str | None] | None,
    now: dt.datetime,
    max_skew: dt.timedelta = MAX_SKEW,
    service: str = SIGNING_NAME,
    must_sign: tuple[str, ...] = MUST_SIGN,
) -> Authorization:
    """Every check that needs no body: a request failing one is refused before its body is
    read. Returns the parsed Authorization (permissive mode: parsed only)."""
    lowered = _lowered(headers)
    auth = parse_authorization(lowered.get("authorization"))
    if lookup_secret is None:
        return auth
    if lookup_secret(auth.access_key_id) is None:
        raise UnrecognizedClientException("The security token included in the request is invalid.")
    signed_at = request_time(lowered)
    if abs(now - signed_at) > max_skew:
        raise InvalidSignatureException(
            f"Signature expired: {signed_at.strftime(_AMZ_DATE)} is now earlier than "
            f"{(now - max_skew).strftime(_AMZ_DATE)} or later than "
            f"{(now + max_skew).strftime(_AMZ_DATE)} "
            f"({signed_at.strftime(_AMZ_DATE)} - {max_skew} or + {max_skew})")
    _check_scope(auth, signed_at, service, must_sign)
    return auth


def verify_request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    lookup_secret: Callable[[str], str | None] | None,
    now: dt.datetime,
    max_skew: dt.timedelta = MAX_SKEW,
    service: str = SIGNING_NAME,
    must_sign: tuple[str, ...] = MUST_SIGN,
    admitted: Authorization | None = None,
) -> str:
    """Check a request's SigV4 signature and return its access key id (see module docstring).

    headers: the received headers (any case); url: the full URL as received (scheme, host, path,
    query); now: the server's aware UTC time; lookup_secret: key id -> secret, None = permissive;
    admitted: what admit_request returned for these headers, when it has run already.
    """
    auth = admitted or admit_request(headers, lookup_secret, now, max_skew, service, must_sign)
    if lookup_secret is None:
        return auth.access_key_id
    secret = lookup_secret(auth.access_key_id) or ""
    lowered = _lowered(headers)
    declared = lowered.get("x-amz-content-sha256")
    if declared is not None and declared != hashlib.sha256(body).hexdigest():
        raise InvalidSignatureException(
            "The provided 'x-amz-content-sha256' header does not match what was computed.")
    request = AWSRequest(method=method, url=url, data=body,
                         headers={h: lowered.get(h, "") for h in auth.signed_headers})
    request.context["timestamp"] = request_time(lowered).strftime(_AMZ_DATE)
    signer = _SignedHeadersOnly(Credentials(auth.access_key_id, secret), auth.service,
                                auth.region, auth.signed_headers)
    string_to_sign = signer.string_to_sign(request, signer.canonical_request(request))
    expected = signer.signature(string_to_sign, request)
    if not hmac.compare_digest(expected, auth.signature):
        raise InvalidSignatureException(
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method.")
    return auth.access_key_id


def _lowered(headers: Mapping[str, str]) -> dict[str, str]:
    """Header names in lower case; repeated headers joined with commas."""
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        lowered[key] = f"{lowered[key]},{value}" if key in lowered else value
    return lowered


def _check_scope(auth: Authorization, signed_at: dt.datetime, service: str,
                 must_sign: tuple[str, ...]) -> None:
    """Credential scope and the signed headers must agree with the request: the host and the
    operation (X-Amz-Target) must be signed, or a man in the middle could send the signature
    to another server or with another operation."""
    if auth.date != signed_at.strftime("%Y%m%d"):
        raise InvalidSignatureException(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            "from HTTP")
    if auth.service != service:
        raise InvalidSignatureException(
            f"Credential should be scoped to correct service: '{service}'.")
    for header in must_sign:
        if header not in auth.signed_headers:
            shown = "-".join(part.capitalize() for part in header.split("-"))
            raise InvalidSignatureException(
                f"'{shown}' must be a 'SignedHeader' in the AWS Authorization.")


def credential_entries(text: str) -> list[tuple[str, str, str | None]]:
    """(access key id, secret, INI section name or None) from a credentials file's text."""
    entries: list[tuple[str, str, str | None]] = []
    ini: list[str] = []
    in_section = False
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith("["):
            in_section = True
        if in_section or not line or line.startswith(("#", ";")):
            ini.append(raw)
            continue
        key, sep, secret = line.partition(":")
        if not sep or not key.strip() or not secret.strip():
            raise ValueError(f"line {number}: expected ACCESS_KEY_ID:SECRET")
        entries.append((key.strip(), secret.strip(), None))
        ini.append("")  # keeps the INI part's line numbers those of the file
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string("\n".join(ini))
    except configparser.Error as exc:
        raise ValueError(_ini_problem(exc)) from None
    for section in parser.sections():
        key_id = parser.get(section, "aws_access_key_id", fallback="").strip()
        secret = parser.get(section, "aws_secret_access_key", fallback="").strip()
        if not key_id or not secret:
            raise ValueError(f"section [{section}] needs aws_access_key_id and "
                             "aws_secret_access_key")
        entries.append((key_id, secret, section))
    return entries


def parse_credentials(text: str) -> dict[str, str]:
    """Access key id -> secret from a credentials file's text (format in the module docstring)."""
    return {key: secret for key, secret, _ in credential_entries(text)}


def _ini_problem(exc: configparser.Error) -> str:
    """configparser's error as `line N: what is wrong`."""
    if isinstance(exc, configparser.DuplicateSectionError):
        return f"line {exc.lineno}: section [{exc.section}] appears twice"
    if isinstance(exc, configparser.DuplicateOptionError):
        return f"line {exc.lineno}: {exc.option} appears twice in section [{exc.section}]"
    if isinstance(exc, configparser.ParsingError):
        number, line = exc.errors[0]
        return f"line {number}: expected KEY = VALUE in a section, not {line}"  # line: a repr
    return str(exc.message)


def load_credentials(path: str | Path) -> dict[str, str]:
    """parse_credentials on a file (UTF-8); ValueError naming the file for one that is not
    valid or holds no key (a server asked to verify signatures must have keys to verify)."""
    try:
        keys = parse_credentials(Path(path).read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"credentials file {path}: {exc}") from None
    if not keys:
        raise ValueError(f"credentials file {path} holds no access key: add ACCESS_KEY_ID:SECRET lines or "
                         "[sections] with aws_access_key_id and aws_secret_access_key")
    return keys


def load_user_names(path: str | Path) -> dict[str, str]:
    """Access key id -> IAM user name: the INI section of each key, except `default` (the
    account root). Keys given as `KEY:SECRET` lines belong to the root as well."""
    return {key: section for key, _, section in credential_entries(Path(path).read_text(encoding="utf-8"))
            if section is not None and section != "default"}
