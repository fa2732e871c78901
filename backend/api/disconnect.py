"""A request whose client disconnects before its answer is cancelled, and its work with it.

ASGI servers keep running a request after its client has gone; only ``receive()`` says so, with
``http.disconnect``. Once the app has read the whole body, this middleware keeps listening on
``receive()`` and, at a disconnect before the response has started, cancels the request: its
downloads and queued decoding and model work are dropped where no other request waits for
them (:mod:`genspot.backend.pipeline.service`), so a page closed mid-way costs no more model time.
"""

from __future__ import annotations

import asyncio

from litestar.types import ASGIApp, Message, Receive, Scope, Send


def cancel_on_disconnect(app: ASGIApp) -> ASGIApp:
    """ASGI middleware: see the module docstring."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        request = asyncio.current_task()
        started = gone = False
        listener: asyncio.Task | None = None

        async def listen() -> None:
            nonlocal gone
            if (await receive())["type"] == "http.disconnect" and not started:
                gone = True
                request.cancel()

        async def receive_body() -> Message:
            nonlocal listener
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False) and listener is None:
                listener = asyncio.create_task(listen())
            return message

        async def send_started(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await app(scope, receive_body, send_started)
        except asyncio.CancelledError:
            if not gone:
                raise
            request.uncancel()
            resources = getattr(scope["app"].state, "resources", None)
            if resources is not None:
                resources.metrics.disconnected.inc()
        finally:
            if listener is not None:
                listener.cancel()

    return middleware
