"""One error base for the backend, mapped to HTTP responses at the edge.

Per-item errors (a URL that cannot be fetched, bytes that are not an image) never fail a
request: they become ``{"status": "error", "error": {"code", "message"}}`` in that item's
result. Request-level errors become RFC 7807 problem details.
"""

from __future__ import annotations

INTERNAL_ERROR = "internal_error"
"""The code of a failure nobody planned for (a bug): a request's 500, or one item's error."""


class GenspotError(Exception):
    """Base of every error the backend raises on purpose."""

    code: str = INTERNAL_ERROR
    http_status: int = 500

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ItemError(GenspotError):
    """A problem with one item of a request; reported in that item's result."""

    http_status = 422


class FetchError(ItemError):
    """The image at a URL could not be obtained."""

    code = "fetch_failed"


class FetchTimeout(FetchError):
    code = "timeout"


class TooLarge(FetchError):
    code = "too_large"


class BlockedAddress(FetchError):
    code = "blocked_address"


class UnsupportedUrl(FetchError):
    code = "unsupported_url"


class ImageDecodeError(ItemError):
    """Bytes were obtained but are not a usable image."""

    code = "decode_failed"


class NotAnImage(ImageDecodeError):
    code = "not_an_image"


class ImageTooLarge(ImageDecodeError):
    """Too many pixels (decompression bomb guard)."""

    code = "too_large"


class ModelError(ItemError):
    """Inference failed for the batch this item was in."""

    code = "model_failed"
    http_status = 500


class UnreadableFile(ItemError):
    """``genspot scan``: a local file that vanished or cannot be read."""

    code = "unreadable_file"


def _subclasses(kind: type) -> list[type]:
    found = []
    for sub in kind.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


ITEM_ERROR_CODES: tuple[str, ...] = tuple(dict.fromkeys(kind.code for kind in _subclasses(ItemError) if kind.code != INTERNAL_ERROR))
"""The codes of deliberate item failures, one per code of the :class:`ItemError` classes above;
an item answered with :data:`INTERNAL_ERROR` is a bug to fix."""


class RequestError(GenspotError):
    """A malformed request as a whole: answered with RFC 7807 problem details naming ``field``."""

    code = "invalid_request"
    http_status = 400

    def __init__(self, message: str, *, field: str):
        super().__init__(message)
        self.field = field
