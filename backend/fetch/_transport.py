"""An httpx transport whose connections can only go to addresses the fetcher checked.

The fetcher resolves a host once, checks every address, and pins the result for the
current task (a context variable). The network backend dials the pinned address instead of
resolving the host name again, so DNS cannot change between the check and the connection
(no rebinding window), while TLS still sends SNI and verifies the certificate against the
host name, because httpcore passes the URL's host to ``start_tls``. A connection attempt
without a matching pin is refused: nothing reaches the network unchecked.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar
from dataclasses import dataclass

import httpcore
import httpx

from genspot.backend.errors import FetchError, FetchTimeout


@dataclass(frozen=True, slots=True)
class Pin:
    """The checked addresses that connections to (host, port) may use, in order."""

    host: str
    port: int
    addresses: tuple[str, ...]


_PIN: ContextVar[Pin | None] = ContextVar("genspot_fetch_pin", default=None)


@contextlib.contextmanager
def pinned(pin: Pin) -> Iterator[None]:
    """Allow connections to ``pin`` from the current task while the block runs."""
    token = _PIN.set(pin)
    try:
        yield
    finally:
        _PIN.reset(token)


class PinnedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Dials the pinned addresses for the host httpcore asks for; refuses anything else."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        pin = _PIN.get()
        if pin is None or (pin.host, pin.port) != (host, port):
            raise httpcore.ConnectError(f"refusing a connection to unchecked destination {host}:{port}")
        failure: Exception | None = None
        for address in pin.addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure or httpcore.ConnectError(f"no address to connect to for {host}")

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise httpcore.ConnectError("unix sockets are never used for fetching")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


HTTPCORE_ERRORS: dict[type[Exception], tuple[type[FetchError], str]] = {
    httpcore.ConnectTimeout: (FetchTimeout, "connect timed out"),
    httpcore.ReadTimeout: (FetchTimeout, "read timed out"),
    httpcore.WriteTimeout: (FetchTimeout, "write timed out"),
    httpcore.PoolTimeout: (FetchTimeout, "no free connection in the pool in time"),
    httpcore.TimeoutException: (FetchTimeout, "timed out"),
    httpcore.ConnectError: (FetchError, "cannot connect"),
    OSError: (FetchError, "cannot connect"),
    httpcore.ProtocolError: (FetchError, "bad HTTP response"),
    httpcore.NetworkError: (FetchError, "network error"),
    httpcore.UnsupportedProtocol: (FetchError, "unsupported protocol"),
    httpcore.ProxyError: (FetchError, "proxy error"),
}
"""What each exception of the connection layer becomes, looked up along the exception's classes
(the most specific first). ``httpcore.ConnectionNotAvailable`` is absent: the pool retries it itself."""


@contextlib.contextmanager
def _as_fetch_errors() -> Iterator[None]:
    try:
        yield
    except tuple(HTTPCORE_ERRORS) as exc:
        error, what = next(HTTPCORE_ERRORS[kind] for kind in type(exc).__mro__ if kind in HTTPCORE_ERRORS)
        raise error(f"{what}: {exc}" if str(exc) else what) from exc


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, stream) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_fetch_errors():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        with _as_fetch_errors():
            await self._stream.aclose()


class PinnedTransport(httpx.AsyncBaseTransport):
    """httpx transport over an httpcore pool that uses :class:`PinnedNetworkBackend`.

    Errors come out as our FetchError/FetchTimeout. Proxies, cookies and redirects are not
    handled here on purpose: the fetcher sends requests straight to this transport.
    """

    def __init__(self, *, max_connections: int = 100, keepalive_expiry: float = 5.0) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=max_connections,
            keepalive_expiry=keepalive_expiry,
            network_backend=PinnedNetworkBackend(),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _as_fetch_errors():
            response = await self._pool.handle_async_request(core_request)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream),
            extensions=response.extensions,
            request=request,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()
