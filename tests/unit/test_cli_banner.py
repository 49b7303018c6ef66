"""The start-up banner: sentences, not dicts, and code that works as pasted (run live in
tests/e2e/test_readme.py)."""

from __future__ import annotations

import ast
import shlex
from pathlib import Path
from typing import Any

from openaml.cli.banner import banner_lines
from openaml.settings import Settings

LOCAL = {"kind": "local", "root": "/srv/openaml-data/s3", "reachable": True}


def snippet(lines: list[str]) -> tuple[str, str]:
    """The Python code and the AWS CLI command the banner offers."""
    start = next(i for i, line in enumerate(lines) if line.startswith("Try it from Python"))
    cli = next(i for i, line in enumerate(lines) if line.startswith("or with the AWS CLI"))
    return "\n".join(lines[start + 1:cli]).strip(), next(line for line in lines[cli + 1:] if line)


def settings(**changes: Any) -> Settings:
    return Settings(data_dir=Path("/srv/openaml-data"), port=8080, **changes).resolved()


def test_the_embedded_setup_is_told_in_sentences() -> None:
    lines = banner_lines(settings(), "sqlite:////srv/openaml-data/openaml.db", LOCAL, unverified=True)
    text = "\n".join(lines)
    assert "{" not in text and "'reachable'" not in text and "False" not in text
    assert "  Metadata: SQLite database /srv/openaml-data/openaml.db" in lines
    assert ("  Objects: s3://BUCKET/KEY is the file /srv/openaml-data/s3/BUCKET/KEY (the embedded "
            "object store); copy a file there to upload it.") in lines
    assert "  Web console: http://127.0.0.1:8080/console/" in lines
    assert any(line.startswith("  Signatures: not verified") for line in lines)


def test_the_snippets_carry_credentials_and_paste_unindented() -> None:
    code, command = snippet(banner_lines(settings(), "sqlite:///x.db", LOCAL, unverified=True))
    tree = ast.parse(code)  # unindented: valid as pasted, line by line
    call = next(node for node in ast.walk(tree) if isinstance(node, ast.Call)
                and getattr(node.func, "attr", "") == "client")
    keywords = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    assert keywords == {"endpoint_url": "http://127.0.0.1:8080", "region_name": "us-east-1",
                        "aws_access_key_id": "any", "aws_secret_access_key": "any"}
    words = shlex.split(command)
    assert words[:2] == ["AWS_ACCESS_KEY_ID=any", "AWS_SECRET_ACCESS_KEY=any"]
    assert words[2:] == ["aws", "machinelearning", "describe-ml-models", "--endpoint-url",
                         "http://127.0.0.1:8080", "--region", "us-east-1"]


def test_with_access_keys_the_snippets_ask_for_one() -> None:
    lines = banner_lines(settings(), "sqlite:///x.db", LOCAL, unverified=False)
    code, command = snippet(lines)
    assert '"any"' not in code and "=any" not in command
    assert 'aws_access_key_id="YOUR_KEY_ID"' in code and "AWS_SECRET_ACCESS_KEY=YOUR_SECRET" in command
    assert any(line.startswith("  Signatures: verified") for line in lines)


def test_other_stores_and_problems_are_sentences_too() -> None:
    s3 = {"kind": "s3", "endpoint": "http://127.0.0.1:9000", "region": "us-east-1", "reachable": False}
    lines = banner_lines(settings(http_workers=2), "postgresql+psycopg://aml:***@db/aml", s3, True)
    assert "  Metadata: the database at postgresql+psycopg://aml:***@db/aml" in lines
    assert ("  Objects: s3:// URIs are objects of the S3 server at http://127.0.0.1:9000 (region "
            "us-east-1), with credentials from the standard AWS chain. It cannot be reached now "
            "(no answer, or no credentials).") in lines
    assert "  2 HTTP processes share the port." in lines
    unwritable = banner_lines(settings(), "sqlite:///x.db", {**LOCAL, "reachable": False}, True)
    assert any("The folder /srv/openaml-data/s3 cannot be written by this server." in line
               for line in unwritable)
