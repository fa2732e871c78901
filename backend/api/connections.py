"""Connections that send their request too slowly are closed.

uvicorn times out idle keep-alive connections only: a client that opens a connection and sends
nothing, or trickles its headers or body a byte at a time, holds the connection (and, for a
body, the request's handler) for as long as it likes. :class:`TimedH11Protocol` is uvicorn's h11
protocol with two deadlines: a request's headers must be in within ``header_timeout_s`` of the
connection's opening or of the request's first byte, and its body within ``body_timeout_s`` of
its headers. A connection past a deadline is closed (a handler still reading the body sees the
client gone). ``genspot serve`` names it as uvicorn's ``http`` protocol; the deadlines come from
the ``GENSPOT_*`` settings of the worker process.
"""

from __future__ import annotations

import asyncio
import functools
import logging

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from genspot.backend.settings import Settings

log = logging.getLogger(__name__)
PROTOCOL = "genspot.backend.api.connections:TimedH11Protocol"
"""uvicorn's ``http`` setting for this protocol (an import string: worker processes import it)."""


@functools.cache
def _deadlines() -> dict[type, float]:
    settings = Settings.from_env()
    return {h11.IDLE: settings.header_timeout_s, h11.SEND_BODY: settings.body_timeout_s}


class TimedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, closing connections whose request headers or body are late."""

    _phase: type | None = None
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def _watch(self) -> None:
        """(Re)arm the deadline of the part of the request being read; none once it is all in."""
        phase = self.conn.their_state if self.conn.their_state in _deadlines() else None
        if phase is self._phase:
            return
        self._cancel_deadline()
        self._phase = phase
        if phase is not None and not self.transport.is_closing():
            self._deadline = self.loop.call_later(_deadlines()[phase], self._late, phase)

    def _late(self, phase: type) -> None:
        self._deadline = None
        part = "headers" if phase is h11.IDLE else "body"
        log.info("closing a connection from %s: its request %s did not arrive in time", self.client, part)
        self.transport.close()

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
