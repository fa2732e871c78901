"""Shutting down with work still queued: every in-flight request is answered, none with a 500.

On SIGTERM (or SIGINT) uvicorn stops accepting connections, waits ``graceful_shutdown_s`` for
the requests in flight, then cancels the rest, and a cancelled request is answered 500. So the
app counts down as well: from the signal on, a request still waiting for its answer (queued
model work, a slow download) has until ``ANSWER_MARGIN_S`` before uvicorn's deadline; then its
work is cancelled and it gets ``503`` with ``Retry-After`` (problem+json), the cue for a client
or a load balancer to try again elsewhere or later. A request whose response has started runs
to its end. The countdown needs a server that handles the signals itself and runs the app in
the main thread (uvicorn does): the app chains its handler in front of the server's.

The grace period is a promise to whoever sent the signal (an orchestrator kills the process after
it), so the process ends ``EXIT_MARGIN_S`` before it even when the server is still closing: a
model call or a decode cannot be interrupted, and uvicorn's shutdown waits for them (a batch
computing past the deadline kept the process 13-14.5 s after a signal with 10 s of grace).
Every request has been answered by then.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator

import msgspec
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from genspot.backend.api.problems import PROBLEM_JSON
from genspot.backend.schemas import Problem

ANSWER_MARGIN_S = 0.5
"""How long before the server's own deadline the still-waiting requests are answered 503."""
EXIT_MARGIN_S = 0.2
"""How long before the end of the grace period the process exits if it is still shutting down."""
RETRY_AFTER_S = 5
"""What a 503 tells clients to wait: about what a restarted worker needs to load its model."""
_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_watchdog: threading.Timer | None = None


class Drain:
    """The shutdown countdown of one worker process; :meth:`middleware` applies it to requests."""

    def __init__(self, graceful_shutdown_s: float):
        self.grace_s = graceful_shutdown_s
        self.budget_s = max(0.0, graceful_shutdown_s - ANSWER_MARGIN_S)
        self.deadline: float | None = None  # event-loop time; None until shutdown begins
        self._waiting: set[asyncio.Timeout] = set()

    def begin(self) -> None:
        """Start the countdown (once): every waiting request, and every later one, gets the budget."""
        if self.deadline is not None:
            return
        self.deadline = asyncio.get_running_loop().time() + self.budget_s
        for timeout in self._waiting:
            timeout.reschedule(self.deadline)

    @contextlib.contextmanager
    def on_signals(self) -> Iterator[None]:
        """While the block runs, SIGTERM and SIGINT begin the countdown, then reach the server's
        own handlers; nothing is installed off the main thread or where no handler is callable."""
        previous = {sig: signal.getsignal(sig) for sig in _SIGNALS}
        if threading.current_thread() is not threading.main_thread() or not all(map(callable, previous.values())):
            yield
            return
        loop = asyncio.get_running_loop()

        def handler(signum, frame) -> None:
            _exit_when_overdue(max(0.0, self.grace_s - EXIT_MARGIN_S))
            loop.call_soon_threadsafe(self.begin)
            previous[signum](signum, frame)

        for sig in _SIGNALS:
            signal.signal(sig, handler)
        try:
            yield
        finally:
            for sig, earlier in previous.items():
                if signal.getsignal(sig) is handler:
                    signal.signal(sig, earlier)

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """ASGI middleware: cancel a request's work at the deadline and answer it 503 instead."""

        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            timeout = asyncio.timeout(self.deadline)

            async def send_started(message: Message) -> None:
                if message["type"] == "http.response.start":  # a started response is never cut short here
                    self._waiting.discard(timeout)
                    timeout.reschedule(None)
                await send(message)

            try:
                async with timeout:
                    self._waiting.add(timeout)
                    await app(scope, receive, send_started)
            except TimeoutError:
                if not timeout.expired():
                    raise
                await _send_unavailable(scope, send)
            finally:
                self._waiting.discard(timeout)

        return middleware


def _exit_when_overdue(after_s: float) -> None:
    """End the process ``after_s`` from now if it is still running then (once: a second signal
    changes nothing)."""
    global _watchdog
    if _watchdog is not None:
        return

    def overdue() -> None:
        # straight to stderr: Litestar's log records go through a queue that os._exit would drop
        print(f"genspot serve: still shutting down {after_s:.1f} s after the signal; exiting with work still running "
              "(a model call or a decode)", file=sys.stderr, flush=True)
        os._exit(0)

    _watchdog = threading.Timer(after_s, overdue)
    _watchdog.daemon = True
    _watchdog.start()



async def _send_unavailable(scope: Scope, send: Send) -> None:
    body = msgspec.json.encode(
        Problem(
            type="about:blank",
            title="Service Unavailable",
            status=503,
            detail=f"the service is shutting down; retry in {RETRY_AFTER_S} s",
            instance=scope["path"],
        )
    )
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(RETRY_AFTER_S).encode()),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})
