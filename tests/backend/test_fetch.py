"""SafeFetcher against real local HTTP servers: limits, redirects, blocking, DNS pinning.

Positive cases use a threaded server on 127.0.0.1 with ``allow_loopback=True``; blocked
cases use the default policy and check, through the server's accept count and a spy on the
socket-dialling layer, that no connection was ever attempted.
"""

from __future__ import annotations

import asyncio
import gzip
import http.server
import io
import ssl
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpcore
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from genspot.backend.errors import BlockedAddress, FetchError, FetchTimeout, TooLarge, UnsupportedUrl
from genspot.backend.fetch import FetchSettings, SafeFetcher, is_blocked


def _png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


PNG = _png_bytes()
MAX_BYTES = 1_000_000


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # close-delimited bodies, so /endless can stream forever

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        self.server.paths.append(self.path)
        self.server.referers.append(self.headers.get("Referer"))
        url = urlsplit(self.path)
        route = getattr(self, "route_" + url.path.strip("/").split("/")[0].replace("-", "_"), None)
        if route is None:
            self._reply(404, b"not found", "text/plain")
        else:
            route(url.path, parse_qs(url.query))

    def _reply(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def route_image(self, path: str, query: dict) -> None:
        self._reply(200, PNG, "image/png")

    def route_html(self, path: str, query: dict) -> None:
        self._reply(200, b"<!doctype html><html><body>not an image</body></html>", "image/png")

    def route_status(self, path: str, query: dict) -> None:
        self._reply(int(path.rsplit("/", 1)[1]), b"", "text/plain")

    def route_hops(self, path: str, query: dict) -> None:
        left = int(path.rsplit("/", 1)[1])
        if left == 0:
            self.route_image(path, query)
        else:
            self._redirect(f"/hops/{left - 1}")

    def route_to(self, path: str, query: dict) -> None:
        self._redirect(query["url"][0])

    def route_declared_big(self, path: str, query: dict) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(50 * MAX_BYTES))
        self.end_headers()
        self.wfile.write(PNG)

    def route_endless(self, path: str, query: dict) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()
        self._stream(b"\0" * 65536, count=2000, pause=0.0)

    def route_trickle(self, path: str, query: dict) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()
        self._stream(b"x", count=200, pause=0.1)

    def route_hang(self, path: str, query: dict) -> None:
        time.sleep(3)

    def route_gzip_bomb(self, path: str, query: dict) -> None:
        self._reply(200, self.server.gzip_bomb, "image/png", Content_Encoding="gzip")

    def route_gzip(self, path: str, query: dict) -> None:
        self._reply(200, gzip.compress(PNG), "image/png", Content_Encoding="gzip")

    def route_deflate(self, path: str, query: dict) -> None:
        raw = "raw" in query
        compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS if raw else zlib.MAX_WBITS)
        self._reply(200, compressor.compress(PNG) + compressor.flush(), "image/png", Content_Encoding="deflate")

    def route_brotli(self, path: str, query: dict) -> None:
        self._reply(200, PNG, "image/png", Content_Encoding="br")

    def _stream(self, chunk: bytes, *, count: int, pause: float) -> None:
        try:
            for _ in range(count):
                self.wfile.write(chunk)
                self.wfile.flush()
                time.sleep(pause)
        except OSError:
            pass  # the client hung up, as it should


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64
    gzip_bomb = gzip.compress(b"\0" * (40 * MAX_BYTES), compresslevel=9)

    def __init__(self, host: str, port: int = 0) -> None:
        super().__init__((host, port), _Handler)
        self.accepted = 0
        self.paths: list[str] = []
        self.referers: list[str | None] = []

    def get_request(self):
        connection = super().get_request()
        self.accepted += 1
        return connection

    @property
    def port(self) -> int:
        return self.server_address[1]


def _serve(host: str, port: int = 0) -> Iterator[_Server]:
    server = _Server(host, port)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def server() -> Iterator[_Server]:
    yield from _serve("127.0.0.1")


@pytest.fixture
def dialled(monkeypatch) -> list[tuple[str, int]]:
    """Every (address, port) the fetcher dials; dials outside loopback fail at once
    (there is no internet here, and a test must never reach it)."""
    calls: list[tuple[str, int]] = []
    real_connect = httpcore.AnyIOBackend.connect_tcp

    async def spy(self, host, port, *args, **kwargs):
        calls.append((host, port))
        if not host.startswith("127."):
            raise httpcore.ConnectError(f"test network: {host} unreachable")
        return await real_connect(self, host, port, *args, **kwargs)

    monkeypatch.setattr(httpcore.AnyIOBackend, "connect_tcp", spy)
    return calls


def _settings(port: int, **overrides) -> FetchSettings:
    values = dict(
        allow_loopback=True,
        allowed_ports=(80, 443, port),
        connect_timeout=1.0,
        read_timeout=1.0,
        total_timeout=2.0,
        max_bytes=MAX_BYTES,
    )
    return FetchSettings(**(values | overrides))


def fetch(url: str, settings: FetchSettings, resolver=None, page_url: str | None = None):
    async def run():
        kwargs = {"resolver": resolver} if resolver else {}
        async with SafeFetcher(settings, **kwargs) as fetcher:
            return await fetcher.fetch(url, page_url)

    return asyncio.run(run())


class FixedResolver:
    """Answers every lookup from a script of answers (the last one repeats); counts calls."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        return self.answers[min(len(self.calls), len(self.answers)) - 1]


# --- positive cases -------------------------------------------------------------------


def test_fetches_an_image(server):
    image = fetch(f"http://127.0.0.1:{server.port}/image", _settings(server.port))
    assert image.data == PNG
    assert image.content_type == "image/png"
    assert image.final_url == f"http://127.0.0.1:{server.port}/image"


@pytest.mark.parametrize("route", ["gzip", "deflate", "deflate?raw=1"])
def test_decodes_compressed_bodies(server, route):
    assert fetch(f"http://127.0.0.1:{server.port}/{route}", _settings(server.port)).data == PNG


def test_follows_up_to_three_redirects(server):
    image = fetch(f"http://127.0.0.1:{server.port}/hops/3", _settings(server.port))
    assert image.data == PNG
    assert image.final_url.endswith("/hops/0")


def test_every_redirect_hop_sends_only_the_page_origin(server):
    fetch(f"http://127.0.0.1:{server.port}/hops/2", _settings(server.port), page_url="http://news.example/a/b?id=7#c")
    assert server.referers == ["http://news.example/"] * 3


def test_no_referer_without_a_page(server):
    fetch(f"http://127.0.0.1:{server.port}/hops/1", _settings(server.port))
    assert server.referers == [None, None]


def test_refuses_a_fourth_redirect(server):
    with pytest.raises(FetchError, match="more than 3 redirects") as error:
        fetch(f"http://127.0.0.1:{server.port}/hops/4", _settings(server.port))
    assert error.value.code == "fetch_failed"
    assert len(server.paths) == 4


# --- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 500])
def test_http_errors_are_fetch_failed(server, status):
    with pytest.raises(FetchError, match=f"HTTP {status}") as error:
        fetch(f"http://127.0.0.1:{server.port}/status/{status}", _settings(server.port))
    assert error.value.code == "fetch_failed"


def test_connection_refused_is_fetch_failed(server):
    port = server.port
    server.shutdown()
    server.server_close()
    with pytest.raises(FetchError) as error:
        fetch(f"http://127.0.0.1:{port}/image", _settings(port))
    assert error.value.code == "fetch_failed"


def test_unresolvable_host_is_fetch_failed():
    async def no_such_host(host, port):
        raise OSError(f"Name or service not known: {host}")

    with pytest.raises(FetchError, match="cannot resolve") as error:
        fetch("http://no-such-host.test/x.png", FetchSettings(), resolver=no_such_host)
    assert error.value.code == "fetch_failed"


def test_unsupported_content_encoding_is_fetch_failed(server):
    with pytest.raises(FetchError, match="content-encoding"):
        fetch(f"http://127.0.0.1:{server.port}/brotli", _settings(server.port))


def test_html_is_fetched_and_left_to_the_decoder(server):
    """The fetcher does not trust Content-Type; the decoder rejects what is not an image."""
    from genspot.backend.errors import NotAnImage
    from genspot.backend.model.decode import decode_image

    body = fetch(f"http://127.0.0.1:{server.port}/html", _settings(server.port)).data
    with pytest.raises(NotAnImage):
        decode_image(body)


# --- size and time limits -------------------------------------------------------------


@pytest.mark.parametrize("route", ["declared-big", "endless", "gzip-bomb"])
def test_oversize_bodies_are_cut_off(server, route):
    started = time.monotonic()
    with pytest.raises(TooLarge) as error:
        fetch(f"http://127.0.0.1:{server.port}/{route}", _settings(server.port, total_timeout=10.0))
    assert error.value.code == "too_large"
    assert time.monotonic() - started < 5


def test_trickling_server_is_cut_off_by_the_total_timeout(server):
    started = time.monotonic()
    with pytest.raises(FetchTimeout) as error:
        fetch(f"http://127.0.0.1:{server.port}/trickle", _settings(server.port, total_timeout=1.0))
    assert error.value.code == "timeout"
    assert 0.9 < time.monotonic() - started < 2.5


def test_silent_server_hits_the_read_timeout(server):
    started = time.monotonic()
    with pytest.raises(FetchTimeout):
        fetch(f"http://127.0.0.1:{server.port}/hang", _settings(server.port, read_timeout=0.5, total_timeout=5.0))
    assert time.monotonic() - started < 2


def test_slow_dns_is_a_timeout():
    async def slow(host, port):
        await asyncio.sleep(5)
        return ["8.8.8.8"]

    with pytest.raises(FetchTimeout, match="looking up"):
        fetch("http://slow-dns.test/x.png", FetchSettings(connect_timeout=0.3), resolver=slow)


# --- URL policy -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/a.png", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("gopher://example.com/", "only http and https"),
        ("/relative.png", "relative"),
        ("http://user:pass@example.com/a.png", "credentials"),
        ("http://user@example.com/a.png", "credentials"),
        ("http://example.com:8080/a.png", "port 8080"),
        ("https://example.com:22/a.png", "port 22"),
        ("http:///a.png", "no host"),
        ("http://exa mple.com/", "malformed host"),
        ("http://%31%32%37.0.0.1/", "malformed host"),
        ("http://example.com:abc/", "malformed"),
        ("http://127.0.0.1\x00.example/", "malformed"),
        ("http://exa\tmple.com/", "malformed"),
        ("http://[::1/", "malformed"),
        ("http://example.com/" + "a" * 9000, "longer than"),
    ],
)
def test_unsupported_urls_are_refused_before_any_lookup(url, message, dialled):
    resolver = FixedResolver(["8.8.8.8"])
    with pytest.raises(UnsupportedUrl, match=message) as error:
        fetch(url, FetchSettings(), resolver=resolver)
    assert error.value.code == "unsupported_url"
    assert resolver.calls == [] and dialled == []


# --- blocked destinations: nothing is ever dialled ------------------------------------


LOCAL_SPELLINGS = [
    "127.0.0.1",
    "127。0。0。1",  # ideographic full stops, mapped to dots by IDNA
    "127.1",
    "127.0.1",
    "2130706433",
    "0x7f000001",
    "0x7f.1",
    "0x7f.0.0.1",
    "0x7F.0x0.0x0.0x1",
    "017700000001",
    "0177.0.0.1",
    "0177.1",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[64:ff9b::127.0.0.1]",
    "[::1]",
    "[0:0:0:0:0:ffff:7f00:1]",
    "[::ffff:127.0.0.1%25lo]",
    "0",  # 0.0.0.0: connecting to it reaches this host on Linux
    "0.0.0.0",
    "[::]",
    "localhost",
    "LOCALHOST",
]


@pytest.mark.parametrize("host", LOCAL_SPELLINGS)
def test_this_host_in_any_spelling_is_blocked_without_a_connection(server, dialled, host):
    settings = _settings(server.port, allow_loopback=False)
    with pytest.raises(BlockedAddress) as error:
        fetch(f"http://{host}:{server.port}/image", settings)
    assert error.value.code == "blocked_address"
    assert server.accepted == 0 and dialled == []


@pytest.mark.parametrize(
    "answer",
    [
        ["10.1.2.3"],
        ["172.16.0.1"],
        ["192.168.1.1"],
        ["169.254.169.254"],  # cloud metadata service
        ["100.64.0.1"],
        ["0.0.0.0"],
        ["224.0.0.1"],
        ["255.255.255.255"],
        ["fd00::1"],
        ["fe80::1"],
        ["::"],
        ["::ffff:10.0.0.1"],
        ["2002:a00:1::"],
        ["2001::1"],
        ["64:ff9b:1::a00:1"],
        ["8.8.8.8", "10.0.0.1"],  # one bad answer refuses the whole name
        ["2001:4860:4860::8888", "::1"],
    ],
)
def test_names_resolving_to_blocked_addresses_are_refused(dialled, answer):
    resolver = FixedResolver(answer)
    with pytest.raises(BlockedAddress):
        fetch("http://images.example.test/a.png", FetchSettings(), resolver=resolver)
    assert resolver.calls == ["images.example.test"] and dialled == []


def test_redirect_to_a_blocked_address_is_refused(server, dialled):
    resolver = FixedResolver(["127.0.0.1"])
    settings = _settings(server.port)
    target = "http://169.254.169.254/latest/meta-data/"
    with pytest.raises(BlockedAddress, match="link-local"):
        fetch(f"http://127.0.0.1:{server.port}/to?url={target}", settings, resolver=resolver)
    assert server.paths == [f"/to?url={target}"]
    assert dialled == [("127.0.0.1", server.port)]


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://example.com/", "http://user:pw@example.com/"])
def test_redirect_to_an_unsupported_url_is_refused(server, target):
    with pytest.raises(UnsupportedUrl):
        fetch(f"http://127.0.0.1:{server.port}/to?url={target}", _settings(server.port))


def test_loopback_name_needs_the_explicit_setting(server):
    """allow_loopback opens 127.0.0.0/8 and ::1 only; it is off by default."""
    assert FetchSettings().allow_loopback is False
    resolver = FixedResolver(["127.0.0.1"])
    url = f"http://images.test:{server.port}/image"
    assert fetch(url, _settings(server.port), resolver=resolver).data == PNG
    with pytest.raises(BlockedAddress):
        fetch(url, _settings(server.port, allow_loopback=False), resolver=resolver)


def test_allow_loopback_does_not_open_private_ranges(dialled):
    with pytest.raises(BlockedAddress, match="private"):
        fetch("http://10.0.0.1/a.png", FetchSettings(allow_loopback=True))
    assert dialled == []


# --- DNS rebinding --------------------------------------------------------------------


def test_connection_goes_to_the_checked_address_not_a_second_lookup(dialled):
    """A name that answers 127.0.0.1 first and 127.0.0.2 afterwards: the fetch is served by
    the first (checked) address, the name is resolved once, the second server is untouched."""
    first_servers = _serve("127.0.0.1")
    first = next(first_servers)
    second_servers = _serve("127.0.0.2", first.port)
    second = next(second_servers)
    try:
        resolver = FixedResolver(["127.0.0.1"], ["127.0.0.2"])
        image = fetch(f"http://rebind.test:{first.port}/image", _settings(first.port), resolver=resolver)
        assert image.data == PNG
        assert resolver.calls == ["rebind.test"]
        assert first.paths == ["/image"] and second.accepted == 0
        assert dialled == [("127.0.0.1", first.port)]
    finally:
        for servers in (first_servers, second_servers):
            servers.close()


def test_rebinding_to_loopback_after_a_public_answer_never_reaches_loopback(server, dialled):
    resolver = FixedResolver(["93.184.215.14"], ["127.0.0.1"])
    settings = _settings(server.port, allow_loopback=False)
    with pytest.raises(FetchError) as error:
        fetch(f"http://rebind.test:{server.port}/image", settings, resolver=resolver)
    assert error.value.code == "fetch_failed"
    assert resolver.calls == ["rebind.test"]
    assert dialled == [("93.184.215.14", server.port)]
    assert server.accepted == 0


def test_each_redirect_hop_is_resolved_and_checked_again(server, dialled):
    """Redirect to another name: that name is looked up (once) and its answer checked."""
    resolver = FixedResolver(["127.0.0.1"], ["10.0.0.7"])
    url = f"http://first.test:{server.port}/to?url=http://second.test:{server.port}/image"
    with pytest.raises(BlockedAddress, match="second.test"):
        fetch(url, _settings(server.port), resolver=resolver)
    assert resolver.calls == ["first.test", "second.test"]
    assert dialled == [("127.0.0.1", server.port)]


# --- TLS on a pinned connection -------------------------------------------------------


def _certificates(directory, host: str) -> tuple[str, str, str]:
    """A throwaway CA and a server certificate for ``host``: (ca.pem, cert.pem, key.pem)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def certificate(subject, issuer, public_key, signing_key, *, ca: bool, san: str | None = None):
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            ).add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False)
        return builder.sign(signing_key, hashes.SHA256())

    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_cert = certificate("genspot test CA", "genspot test CA", ca_key.public_key(), ca_key, ca=True)
    server_cert = certificate(host, "genspot test CA", server_key.public_key(), ca_key, ca=False, san=host)
    paths = [str(directory / name) for name in ("ca.pem", "cert.pem", "key.pem")]
    for path, blob in zip(
        paths,
        (
            ca_cert.public_bytes(serialization.Encoding.PEM),
            server_cert.public_bytes(serialization.Encoding.PEM),
            server_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        ),
    ):
        Path(path).write_bytes(blob)
    return paths[0], paths[1], paths[2]


@pytest.fixture
def tls_server(tmp_path, monkeypatch) -> Iterator[tuple[_Server, list[str]]]:
    """An HTTPS server on 127.0.0.1 with a certificate for images.test only; the fetcher
    trusts its CA through SSL_CERT_FILE (read by httpx's SSL context). Yields the server
    and the SNI names it was offered."""
    ca, cert, key = _certificates(tmp_path, "images.test")
    monkeypatch.setenv("SSL_CERT_FILE", ca)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    offered: list[str] = []
    context.sni_callback = lambda connection, name, context: offered.append(name)
    servers = _serve("127.0.0.1")
    server = next(servers)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    try:
        yield server, offered
    finally:
        servers.close()


def test_tls_uses_the_host_name_for_sni_and_verification_while_dialling_the_pinned_ip(tls_server, dialled):
    server, offered = tls_server
    resolver = FixedResolver(["127.0.0.1"])
    image = fetch(f"https://images.test:{server.port}/image", _settings(server.port), resolver=resolver)
    assert image.data == PNG
    assert offered == ["images.test"]
    assert dialled == [("127.0.0.1", server.port)]


def test_an_https_page_origin_is_not_sent_after_a_redirect_to_http(tls_server, server):
    """strict-origin-when-cross-origin per hop: the https hop gets the origin, the http hop nothing."""
    tls, _ = tls_server
    url = f"https://images.test:{tls.port}/to?url=http://127.0.0.1:{server.port}/image"
    settings = _settings(tls.port, allowed_ports=(tls.port, server.port))
    image = fetch(url, settings, resolver=FixedResolver(["127.0.0.1"]), page_url="https://news.example/story")
    assert image.data == PNG
    assert tls.referers == ["https://news.example/"]
    assert server.referers == [None]


def test_tls_certificate_for_another_name_is_refused(tls_server):
    server, offered = tls_server
    resolver = FixedResolver(["127.0.0.1"])
    with pytest.raises(FetchError, match="certificate|CERTIFICATE") as error:
        fetch(f"https://elsewhere.test:{server.port}/image", _settings(server.port), resolver=resolver)
    assert error.value.code == "fetch_failed"
    assert offered == ["elsewhere.test"] and server.paths == []


# --- the transport's own guard --------------------------------------------------------


def test_transport_refuses_any_connection_that_was_not_pinned(server):
    from genspot.backend.fetch._transport import PinnedTransport

    async def unpinned():
        transport = PinnedTransport()
        try:
            await transport.handle_async_request(httpx.Request("GET", f"http://127.0.0.1:{server.port}/image"))
        finally:
            await transport.aclose()

    with pytest.raises(FetchError, match="unchecked destination"):
        asyncio.run(unpinned())
    assert server.accepted == 0


def test_concurrent_fetches_keep_their_own_pins(dialled):
    """Pins live in each task's context: concurrent fetches of two names that resolve to
    two different checked addresses each reach their own server."""
    first_servers = _serve("127.0.0.1")
    first = next(first_servers)
    second_servers = _serve("127.0.0.2", first.port)
    second = next(second_servers)
    answers = {"one.test": ["127.0.0.1"], "two.test": ["127.0.0.2"]}

    async def resolver(host, port):
        await asyncio.sleep(0)
        return answers[host]

    async def run():
        async with SafeFetcher(_settings(first.port), resolver=resolver) as fetcher:
            urls = [f"http://{name}:{first.port}/image?{i}" for i in range(10) for name in answers]
            return await asyncio.gather(*(fetcher.fetch(url) for url in urls))

    try:
        results = asyncio.run(run())
        assert all(result.data == PNG for result in results)
        assert len(first.paths) == 10 and len(second.paths) == 10
    finally:
        for servers in (first_servers, second_servers):
            servers.close()


@pytest.mark.parametrize(
    "bad", [{"total_timeout": 0}, {"max_bytes": -1}, {"max_redirects": -1}, {"allowed_ports": ()}, {"allowed_ports": (0,)}]
)
def test_settings_reject_impossible_values(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        FetchSettings(**bad)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.sampled_from(["http://", "https://", "HTTP://", "", "//", "http:\\\\"]),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=40),
    st.sampled_from([["8.8.8.8"], ["10.0.0.1"], ["::1"], []]),
)
def test_arbitrary_urls_only_ever_raise_fetch_errors(dialled, scheme, rest, answer):
    dialled.clear()
    with pytest.raises(FetchError):
        fetch(scheme + rest, FetchSettings(connect_timeout=0.5), resolver=FixedResolver(answer))
    assert all(is_blocked(address) is None for address, _ in dialled)
