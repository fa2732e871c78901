"""The hostile cases the drills try, shared by the tests and by the tables in docs/RELIABILITY.md.

``python -m tests.reliability.cases --bundle BUNDLE_DIR`` runs every listed case once and prints
each one's outcome as a Markdown table (the tests assert the same outcomes).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import ipaddress
import socket
import sys
import threading
import time
from collections.abc import Sequence

from genspot.backend.fetch import FetchSettings, SafeFetcher, is_blocked
from tests.reliability import hostile

# The ranges the backend issue lists, written here independently of the implementation.
MUST_BLOCK_V4 = [
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4",
    )
]
MUST_BLOCK_V6 = [ipaddress.ip_network(n) for n in ("::/128", "::1/128", "fe80::/10", "fc00::/7", "ff00::/8")]
PUBLIC_V4 = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "151.101.1.69"]

_connects: list[tuple] | None = None


def _audit(event: str, args: tuple) -> None:
    if event == "socket.connect" and _connects is not None:
        _connects.append(args[1])


sys.addaudithook(_audit)  # process-wide and permanent, but records only while a test switches it on


class Witness:
    """Records every socket.connect in this process and counts connections accepted on 127.0.0.1."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                continue
            self.accepted += 1
            connection.close()

    def __enter__(self) -> "Witness":
        global _connects
        _connects = []
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        global _connects
        self._stop.set()
        self._thread.join(2)
        self.listener.close()
        _connects = None

    @property
    def connected_to(self) -> list[str]:
        return [str(address[0]) for address in list(_connects or []) if isinstance(address, tuple)]

    def blocked_connects(self) -> list[str]:
        return [address for address in self.connected_to if _is_ip(address) and is_blocked(address.split("%")[0])]


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return False
    return True


def spellings_v4(address: ipaddress.IPv4Address) -> list[str]:
    """Ways to write an IPv4 address as a URL host that some parser or resolver accepts."""
    n, parts = int(address), [int(p) for p in str(address).split(".")]
    return [
        str(address),
        str(n),
        hex(n),
        hex(n).upper().replace("0X", "0x"),
        ".".join(f"0{p:o}" for p in parts),
        ".".join(hex(p) for p in parts),
        ".".join(f"{p:03d}" for p in parts),
        f"{parts[0]}.{parts[1]}.{parts[2] * 256 + parts[3]}",
        f"{parts[0]}.{(parts[1] << 16) + (parts[2] << 8) + parts[3]}",
        f"{address}.",
        f"[::ffff:{address}]",
        f"[::ffff:{n >> 16:x}:{n & 0xFFFF:x}]",
        f"[0:0:0:0:0:ffff:{address}]",
        f"[64:ff9b::{address}]",
        f"[2002:{n >> 16:x}:{n & 0xFFFF:x}::1]",
        f"[::{address}]",
        f"[::ffff:0:{address}]",
    ]


def fetch_all(urls: Sequence[str], fetch_settings: FetchSettings, resolver=None) -> list[BaseException | object]:
    async def run() -> list:
        kwargs = {"resolver": resolver} if resolver else {}
        async with SafeFetcher(fetch_settings, **kwargs) as fetcher:
            return await asyncio.gather(*(fetcher.fetch(url) for url in urls), return_exceptions=True)

    return asyncio.run(run())


def fetch_settings(port: int, **overrides) -> FetchSettings:
    values = {"connect_timeout": 0.5, "read_timeout": 0.5, "total_timeout": 1.5, "allowed_ports": (80, 443, port)}
    return FetchSettings(**{**values, **overrides})


LOOPBACK_HOSTS = [
    "localhost", "LOCALHOST", "localhost.", "[::1]", "[0:0:0:0:0:0:0:1]", "[::]", "0", "0.0.0.0", "[::ffff:7f00:1]",
    "%31%32%37.0.0.1", "127.0.0.1%2f", "0x7f.1", "017700000001", "[fe80::1%25lo]", "１２７.０.０.１",
    "127.0.0.1\x00.example", "127.0.0.1%00.example", "127.0.0.1\t", "[::1]\x00",
]
"""Hosts (used with the witness's port) that all mean this machine, or could be read so."""

REDIRECT_TARGETS = [
    "http://10.0.0.1/x.jpg", "http://169.254.169.254/latest/meta-data/", "http://[::ffff:a00:1]/x.jpg",
    "http://0.0.0.0:{port}/x.jpg", "http://[fd00::1]/x.jpg", "http://100.64.0.1/x.jpg", "http://2886729729/x.jpg",
    "file:///etc/passwd", "gopher://127.0.0.1:{port}/_x", "http://user:pw@8.8.8.8/x.jpg",
]
"""Where a loopback image host (allowed in the drills) redirects to; ``{port}`` is the witness's."""

HOSTILE_URLS = {
    "/hang": "timeout",
    "/hang-after-headers.jpg": "timeout",
    "/trickle.jpg": "timeout",
    "/endless.jpg": "too_large",
    "/lying-length.jpg": "not_an_image",
    "/gzip-bomb.jpg": "too_large",
    "/html-as-png.png": "not_an_image",
    "/empty.jpg": "not_an_image",
    "/truncated.jpg": "decode_failed",
    "/bomb.png": "too_large",
    "/wide.png": "too_large",
    "/not-found.jpg": "fetch_failed",
    "/server-error.jpg": "fetch_failed",
    "/redirect-loop.jpg": "fetch_failed",
    "/redirect?to=http://169.254.169.254/latest/meta-data/": "blocked_address",
    "/redirect?to=file:///etc/passwd": "unsupported_url",
    "/ok.jpg": "ok",
    "/ok-as-html.jpg": "ok",
    "/frames.gif": "ok",
}
"""Path on the hostile server -> the code its item must get (``ok`` for the good neighbours)."""


@functools.cache
def hostile_files() -> dict[str, tuple[bytes, str]]:
    """Name -> (file bytes, the code the item must get), for base64 and upload items."""
    return {
        "PNG header claiming 100000x100000": (hostile.png_declaring(100_000, 100_000), "too_large"),
        "PNG 2**31-1 pixels wide": (hostile.png_declaring(2**31 - 1, 1), "too_large"),
        "JPEG SOF claiming 65500x65500": (hostile.jpeg_declaring(65500, 65500), "too_large"),
        "GIF screen 65535x65535": (hostile.gif_declaring(65535, 65535), "too_large"),
        "truncated JPEG": (hostile.static_responses()["/truncated.jpg"][2], "decode_failed"),
        "PNG zTXt chunk inflating to 200 MB": (hostile.png_text_bomb(), "ok"),
        "PNG strip 4,000,000 x 1": (hostile.strip_png(4_000_000, 1), "too_large"),
        "PNG strip 1 x 4,000,000": (hostile.strip_png(1, 4_000_000), "too_large"),
        "GIF, 4000 frames": (hostile.animated_gif(4000), "ok"),
        "APNG, 1000 frames": (hostile.animated("PNG", 1000), "ok"),
        "WebP, 500 frames": (hostile.animated("WEBP", 500), "ok"),
        "JPEG + garbage C2PA/JUMBF segment": (hostile.jpeg_with_segment(0xEB, b"JP\x00\x01" + b"\xff" * 196), "ok"),
        "JPEG + corrupt 60 KB EXIF": (
            hostile.jpeg_with_segment(0xE1, b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\xff\xff" + bytes(60000)), "ok"
        ),
        "HTML": (b"<html><body>hi</body></html>", "not_an_image"),
        "SVG": (b'<svg xmlns="http://www.w3.org/2000/svg"></svg>', "not_an_image"),
        "random bytes": (bytes(range(256)) * 40, "not_an_image"),
    }


# ------------------------------------------------------------------------------ outcome tables


def _outcome(result: object) -> str:
    if isinstance(result, BaseException):
        return getattr(result, "code", None) or f"{type(result).__name__} (escaped)"
    return "fetched"


def ssrf_rows() -> list[tuple[str, str, str]]:
    """(case, outcome, what it reached) for every SSRF case, fetched for real, one at a time."""
    rows = []
    with Witness() as witness:

        def probe(label: str, url: str, settings: FetchSettings, resolver=None, allowed: tuple[str, ...] = ()) -> None:
            seen, accepted = len(witness.connected_to), witness.accepted
            (result,) = fetch_all([url], settings, resolver)
            time.sleep(0.01)  # let the listener thread count an accept, if there was one
            reached = [a for a in witness.connected_to[seen:] if a not in allowed and _is_ip(a) and is_blocked(a.split("%")[0])]
            reached += ["the loopback listener"] * (witness.accepted - accepted)
            rows.append((label, _outcome(result), ", ".join(reached) or "nothing"))

        plain = fetch_settings(witness.port)
        for host in LOOPBACK_HOSTS:
            probe(f"`{host!r}`", f"http://{host}:{witness.port}/x.jpg", plain)
        for address in ("127.0.0.1", "10.0.0.1", "169.254.169.254", "100.64.0.1"):
            for spelling in spellings_v4(ipaddress.IPv4Address(address)):
                probe(f"`{spelling}` ({address})", f"http://{spelling}:{witness.port}/x.jpg", plain)
        with hostile.HostileServer() as server:
            loopback_host = fetch_settings(witness.port, allowed_ports=(80, 443, witness.port, server.port), allow_loopback=True)
            for target in REDIRECT_TARGETS:
                target = target.format(port=witness.port)
                probe(f"redirect to `{target}`", server.url(f"/redirect?to={target}"), loopback_host, allowed=("127.0.0.1",))
        url = f"http://images.example:{witness.port}/x.jpg"
        probe("DNS answers 8.8.8.8 and 10.0.0.1", url, plain, _answering(["8.8.8.8", "10.0.0.1"]))
        probe("DNS answers ::ffff:127.0.0.1", url, plain, _answering(["::ffff:127.0.0.1"]))
        lookups: list[str] = []
        probe("DNS answers 8.8.8.8, then 127.0.0.1 to any later lookup", url, plain, _rebinding(lookups))
        rows[-1] = (rows[-1][0] + f" (looked up {len(lookups)} time)", *rows[-1][1:])
    return rows


def _answering(answers: list[str]):
    async def resolver(host: str, port: int) -> list[str]:
        return list(answers)

    return resolver


def _rebinding(lookups: list[str]):
    async def resolver(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["8.8.8.8"] if len(lookups) == 1 else ["127.0.0.1"]

    return resolver


def image_rows(bundle: str) -> list[tuple[str, str, str, str]]:
    """(case, expected, outcome, seconds) for every hostile host and file, through the real app."""
    from genspot.backend.api.app import create_app
    from tests.fixtures.service_app import asgi_client
    from tests.reliability.drill import drill_settings

    async def run() -> list[tuple[str, str, str, str]]:
        rows = []
        with hostile.HostileServer() as server:
            async with asgi_client(create_app(drill_settings(bundle, 80, server.port))) as client:
                cases = [(f"host `{path}`", {"url": server.url(path)}, code) for path, code in HOSTILE_URLS.items()]
                cases += [(name, {"image_b64": base64.b64encode(data).decode()}, code) for name, (data, code) in hostile_files().items()]
                for label, item, expected in cases:
                    started = time.perf_counter()
                    result = (await client.post("/v1/detect", json={"items": [item]})).json()["results"][0]
                    outcome = result["error"]["code"] if result["status"] == "error" else "ok"
                    rows.append((label, expected, outcome, f"{time.perf_counter() - started:.2f}"))
        return rows

    return asyncio.run(run())


def _table(header: Sequence[str], rows: list[tuple]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.cases", description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", required=True, help="bundle folder for the image cases (e.g. the tiny test bundle)")
    args = parser.parse_args(argv)
    print(_table(("SSRF case", "outcome", "blocked address reached"), ssrf_rows()))
    print()
    print(_table(("image case", "expected", "outcome", "seconds"), image_rows(args.bundle)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
