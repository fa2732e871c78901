"""Item error codes come from the error classes, and every lower-layer failure is given one.

As httpx tests that every httpcore exception is mapped to one of its own, these check that
nothing the connection layer or the resolver can raise reaches the service untranslated: an
untranslated exception would answer its item with ``internal_error``, the code of a bug.
"""

from __future__ import annotations

import asyncio
import socket

import httpcore
import pytest

import genspot.backend.api.app  # noqa: F401  (every module that could define an ItemError is loaded)
import genspot.backend.pipeline.scan  # noqa: F401
from genspot.backend.errors import INTERNAL_ERROR, ITEM_ERROR_CODES, FetchError, ItemError
from genspot.backend.fetch import FetchSettings, SafeFetcher
from genspot.backend.fetch._transport import HTTPCORE_ERRORS, _as_fetch_errors

HANDLED_INSIDE_HTTPCORE = {httpcore.ConnectionNotAvailable}  # the pool retries it on another connection


def _all_subclasses(kind: type) -> set[type]:
    return {sub for direct in kind.__subclasses__() for sub in {direct, *_all_subclasses(direct)}}


def _httpcore_exceptions() -> list[type[Exception]]:
    found = [value for value in vars(httpcore).values() if isinstance(value, type) and issubclass(value, Exception)]
    return sorted(set(found) - HANDLED_INSIDE_HTTPCORE, key=lambda kind: kind.__name__)


def test_item_error_codes_are_the_codes_of_the_item_error_classes():
    codes = {kind.code for kind in _all_subclasses(ItemError)}
    assert INTERNAL_ERROR not in codes, "every ItemError class names its own code"
    assert set(ITEM_ERROR_CODES) == codes
    assert len(ITEM_ERROR_CODES) == len(codes)


def test_httpcore_exceptions_are_all_mapped():
    unmapped = [kind.__name__ for kind in _httpcore_exceptions() if not any(base in HTTPCORE_ERRORS for base in kind.__mro__)]
    assert not unmapped, f"httpcore exceptions without a FetchError: {unmapped}"


@pytest.mark.parametrize("kind", _httpcore_exceptions(), ids=lambda kind: kind.__name__)
def test_each_httpcore_exception_becomes_a_fetch_error_with_an_item_code(kind):
    with pytest.raises(FetchError) as caught:
        with _as_fetch_errors():
            raise kind("boom")
    assert caught.value.code in ITEM_ERROR_CODES and isinstance(caught.value.__cause__, kind)
    assert "boom" in caught.value.message


def test_socket_errors_under_httpcore_are_fetch_errors_too():
    with pytest.raises(FetchError, match="cannot connect"):
        with _as_fetch_errors():
            raise ConnectionResetError("reset by peer")


def _raising(exc: BaseException):
    async def resolver(host: str, port: int):
        raise exc

    return resolver


def _answering(answers: list[str]):
    async def resolver(host: str, port: int):
        return answers

    return resolver


@pytest.mark.parametrize(
    ("resolver", "code"),
    [
        (_raising(socket.gaierror(socket.EAI_NONAME, "Name or service not known")), "fetch_failed"),
        (_raising(UnicodeError("label empty or too long")), "fetch_failed"),  # IDNA encoding of the host
        (_raising(ConnectionRefusedError("resolver down")), "fetch_failed"),
        (_answering(["not-an-address"]), "fetch_failed"),
        (_answering([]), "fetch_failed"),
        (_answering(["10.0.0.1"]), "blocked_address"),
    ],
    ids=["gaierror", "unicode", "oserror", "non-address", "no-address", "private"],
)
def test_resolver_failures_become_item_codes(resolver, code):
    async def fetch():
        async with SafeFetcher(FetchSettings(connect_timeout=0.5), resolver=resolver) as fetcher:
            return await fetcher.fetch("http://images.example.test/a.png")

    with pytest.raises(FetchError) as caught:
        asyncio.run(fetch())
    assert caught.value.code == code and code in ITEM_ERROR_CODES
