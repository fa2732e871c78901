"""One item's way through the service: bytes -> hash -> cache, or provenance + decode + model ->
verdict -> cache (``service``); the queue bounds in front of it (``admission``); opening and
closing what it needs (``resources``); and the commands that run it without a server
(``genspot scan``, ``genspot alt-text-check``)."""
