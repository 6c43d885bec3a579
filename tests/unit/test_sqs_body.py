"""How an SQS body is told apart: text, base64 of text, base64 of compressed bytes."""

from __future__ import annotations

import base64
import bz2
import gzip

import pytest

from worker.sources.sqs import decode_body


def test_plain_text_stays_text() -> None:
    for body in ("2 123456789012 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 40 1 2 ACCEPT OK", "Hello", "test",
                 '{"msg": "x"}', "abcdefgh", "ZZZZZZZZ"):
        assert decode_body(body) == (body.encode(), "text")


@pytest.mark.parametrize("payload", [gzip.compress(b"a line\nanother"), bz2.compress(b"x" * 100)])
def test_base64_of_compressed_bytes(payload: bytes) -> None:
    assert decode_body(base64.b64encode(payload).decode()) == (payload, "base64")


def test_base64_of_text_with_newlines_in_the_encoding() -> None:
    text = "first line\nsecond line with ünïcödé\n" * 20
    encoded = base64.encodebytes(text.encode()).decode()  # wrapped at 76 characters
    assert decode_body(encoded) == (text.encode(), "base64")


def test_base64_of_binary_that_is_not_text_stays_text() -> None:
    body = base64.b64encode(bytes(range(256))).decode()
    assert decode_body(body)[1] == "text"
