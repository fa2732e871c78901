"""Connections that send their request too slowly are closed, on a real `genspot serve`."""

from __future__ import annotations

import select
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

DEADLINE_S = 1.0
GIVE_UP_S = 10.0
HEADERS = b"POST /v1/detect HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n"


def _seconds_open(port: int, sent_at_once: bytes, trickled: bytes) -> float:
    """Send ``sent_at_once``, then ``trickled`` a byte every 0.2 s (then nothing): seconds until the server closes."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=GIVE_UP_S) as sock:
        sock.sendall(sent_at_once)
        while time.monotonic() - started < GIVE_UP_S:
            readable, _, _ = select.select([sock], [], [], 0.2)
            if readable:  # closed (b"") or answered before closing: either way the server is done with it
                break
            try:
                sock.sendall(trickled[:1])
            except OSError:
                break
            trickled = trickled[1:]
    return time.monotonic() - started


SLOW_KINDS = {
    "silent": (b"", b""),  # opens a connection and never sends a request
    "trickled headers": (b"", b"POST /v1/detect HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100),
    "trickled body": (HEADERS, b"[" * 100),
}


def test_slow_requests_are_cut_off_while_others_are_served(backend_server, tiny_bundle):
    server = backend_server(tiny_bundle, header_timeout_s=DEADLINE_S, body_timeout_s=DEADLINE_S)
    with ThreadPoolExecutor(3 * 4) as pool:
        slow = {kind: [pool.submit(_seconds_open, server.port, *sent) for _ in range(4)] for kind, sent in SLOW_KINDS.items()}
        answered = httpx.get(server.url + "/healthz", timeout=5)  # meanwhile, others are served
        seconds = {kind: max(future.result() for future in futures) for kind, futures in slow.items()}
    assert answered.status_code == 200
    assert all(open_s < DEADLINE_S + 3.0 for open_s in seconds.values()), f"seconds open: {seconds}"
