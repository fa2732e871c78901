"""JSON bodies with a key given twice are refused, never read as "the last one wins".

msgspec (Litestar's decoder) keeps the last of duplicate keys, so ``{"items": [a], "items": [b]}``
would be judged as ``[b]`` while a proxy, a log or a WAF in front that reads the first saw ``[a]``.
The body is checked by the standard library's C parser first: one pass, one call per object.
"""

from __future__ import annotations

import json
from typing import Any

from litestar import Request

from genspot.backend.errors import RequestError


class StrictJsonRequest(Request):
    """Litestar's request, whose JSON body must not repeat a key within an object (400 if it does)."""

    async def json(self) -> Any:
        refuse_duplicate_keys(await self.body())
        return await super().json()


def refuse_duplicate_keys(body: bytes) -> None:
    """Raise :class:`RequestError` (400) naming the first key given twice in one object; bodies
    that are not JSON are left for the decoder to refuse in its own words."""
    try:
        json.loads(body or b"null", object_pairs_hook=_unique)
    except (ValueError, RecursionError):  # not JSON, or nested too deeply: the decoder answers it
        return


def _unique(pairs: list[tuple[str, Any]]) -> None:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise RequestError(f"body: the key {key!r} appears twice in one JSON object; give each key once", field=key)
        seen.add(key)
