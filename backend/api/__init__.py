"""The HTTP face of the service: the Litestar app and its routes, the guards in front of them
(API keys, Origin and media types, slow connections, duplicate JSON keys), RFC 7807 problems,
cancelling work of clients that hung up, the SIGTERM countdown, the wrong-verdict report store,
and the commands that serve it (``genspot serve``, ``genspot feedback``)."""
