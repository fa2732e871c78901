"""Wrong-verdict reports: ``POST /v1/feedback`` appends them to a JSON Lines file, and
``genspot feedback export`` turns them into per-image label candidates.

A report is a claim by whoever sent it, never a label: web pages choose which images a
user sees (and could script a flood of reports), so every record is stored ``unverified``,
with a salted hash of the reporting client (never its address), and the export counts
distinct reporters per image so one client cannot outvote everyone. The salt lives beside the
store (``<store>.salt``, made once), so a client is one reporter across restarts and workers. Nothing here feeds
training by itself: a person (or a pseudo-labelling run that weighs the votes) decides.

Bounds: the request body is a few small fields (``FeedbackRequest``), a client may send
``feedback_per_client_per_hour`` reports, a client's repeated report of one image is
stored once, and the file stops growing at ``MAX_STORE_BYTES`` (507 afterwards).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
import uuid
from collections import OrderedDict
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from genspot.backend.errors import GenspotError
from genspot.backend.schemas import DecidedBy, Verdict

MAX_STORE_BYTES = 256 * 1024 * 1024
_SEEN_MAX = 100_000
_SALT_BYTES = 16
Sha256Hex = Annotated[
    # the length too: Python's "$" also matches before a final newline
    str, msgspec.Meta(min_length=64, max_length=64, pattern="^[0-9a-f]{64}$", description="SHA-256 of the image (the result's `sha256`)")
]


class FeedbackRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A report that genspot's verdict on one image was wrong."""

    sha256: Sha256Hex
    correct_label: Annotated[Literal["ai", "real"], msgspec.Meta(description="what the reporter says the image is")]
    reported_verdict: Annotated[Verdict | None, msgspec.Meta(description="the verdict being reported as wrong")] = None
    decided_by: DecidedBy | None = None
    model_version: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    generator: Annotated[str, msgspec.Meta(max_length=100, description="the generator, if the reporter knows it")] | None = None
    image_url: Annotated[str, msgspec.Meta(max_length=2048, pattern="^https?://")] | None = None
    comment: Annotated[str, msgspec.Meta(max_length=1000)] | None = None


class FeedbackReceipt(msgspec.Struct, kw_only=True):
    id: str
    status: Literal["stored", "duplicate"]
    verification: Literal["unverified"] = "unverified"


class FeedbackRecord(msgspec.Struct, kw_only=True):
    """One stored report (a line of the store)."""

    id: str
    received_at: str
    sha256: str
    correct_label: Literal["ai", "real"]
    reported_verdict: Verdict | None = None
    decided_by: DecidedBy | None = None
    model_version: str | None = None
    generator: str | None = None
    image_url: str | None = None
    comment: str | None = None
    reporter: str
    verification: Literal["unverified", "verified", "rejected"] = "unverified"


class FeedbackStoreFull(GenspotError):
    code = "feedback_store_full"
    http_status = 507


class FeedbackStore:
    """Append-only JSON Lines file, safe across the threads of one process (and, by O_APPEND
    writes of whole lines, across processes sharing the file)."""

    def __init__(self, path: str | os.PathLike, max_bytes: int = MAX_STORE_BYTES):
        self.path = Path(path).expanduser()
        self.max_bytes = max_bytes
        self._salt: bytes | None = None  # reporters are told apart, never identified
        self._lock = threading.Lock()
        self._seen: OrderedDict[tuple[str, str, str], str] = OrderedDict()
        self._encode = msgspec.json.Encoder().encode

    def reporter_id(self, client: str, api_key: str | None) -> str:
        """The client's address and, where keys are configured, its (valid) key, hashed with the store's salt."""
        if self._salt is None:
            self._salt = _store_salt(self.path)
        return hashlib.sha256(self._salt + f"{client}\n{api_key or ''}".encode()).hexdigest()[:16]

    def add(self, report: FeedbackRequest, reporter: str) -> FeedbackReceipt:
        seen_key = (reporter, report.sha256, report.correct_label)
        with self._lock:
            if seen_key in self._seen:
                return FeedbackReceipt(id=self._seen[seen_key], status="duplicate")
            record = FeedbackRecord(
                id=uuid.uuid4().hex,
                received_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                reporter=reporter,
                **msgspec.structs.asdict(report),
            )
            line = self._encode(record) + b"\n"
            self.path.parent.mkdir(parents=True, exist_ok=True)
            size = self.path.stat().st_size if self.path.exists() else 0
            if size + len(line) > self.max_bytes:
                raise FeedbackStoreFull(f"the feedback store {self.path.name} is full; export and rotate it")
            descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(descriptor, line)
            finally:
                os.close(descriptor)
            self._seen[seen_key] = record.id
            if len(self._seen) > _SEEN_MAX:
                self._seen.popitem(last=False)
            return FeedbackReceipt(id=record.id, status="stored")


def _store_salt(store: Path) -> bytes:
    """The store's salt, from ``<store>.salt``; the first process to need it writes it (to a
    file of its own, then linked into place: a worker racing it reads the winner's)."""
    path = store.with_name(store.name + ".salt")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        own = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(own, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(descriptor, secrets.token_bytes(_SALT_BYTES))
        finally:
            os.close(descriptor)
        try:
            os.link(own, path)
        except FileExistsError:
            pass
        finally:
            own.unlink()
    salt = path.read_bytes()
    if len(salt) != _SALT_BYTES:
        raise OSError(f"{path} is not a {_SALT_BYTES}-byte salt; remove it to make a new one (reporters then start afresh)")
    return salt


def read_records(path: str | os.PathLike) -> tuple[list[FeedbackRecord], int]:
    """Every readable record, and the number of lines that could not be read."""
    decode = msgspec.json.Decoder(FeedbackRecord).decode
    records, bad = [], 0
    with Path(path).expanduser().open("rb") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                records.append(decode(line))
            except msgspec.DecodeError:
                bad += 1
    return records, bad


class LabelCandidate(msgspec.Struct, kw_only=True):
    """All reports about one image, as a label a person (or a pseudo-labelling run) may adopt."""

    sha256: str
    label_a: int | None  # 1 AI, 0 real, None when the reporters are evenly split
    votes_ai: int
    votes_real: int
    reporters: int
    image_url: str | None
    generators: list[str]
    model_versions: list[str]
    first_reported: str
    last_reported: str
    verification: Literal["unverified", "verified", "rejected"]


def label_candidates(records: list[FeedbackRecord], min_reporters: int = 1) -> list[LabelCandidate]:
    """One candidate per image; each reporter's latest report counts once. Images reported by
    fewer than ``min_reporters`` distinct reporters are left out."""
    latest: dict[tuple[str, str], FeedbackRecord] = {}
    for record in sorted(records, key=lambda r: r.received_at):
        latest[(record.sha256, record.reporter)] = record
    by_image: dict[str, list[FeedbackRecord]] = {}
    every_by_image: dict[str, list[FeedbackRecord]] = {}
    for (sha256, _), record in latest.items():
        by_image.setdefault(sha256, []).append(record)
    for record in records:
        every_by_image.setdefault(record.sha256, []).append(record)
    candidates = []
    for sha256, reports in sorted(by_image.items()):
        if len(reports) < min_reporters:
            continue
        ai = sum(r.correct_label == "ai" for r in reports)
        real = len(reports) - ai
        every = every_by_image[sha256]
        states = {r.verification for r in every}
        candidates.append(
            LabelCandidate(
                sha256=sha256,
                label_a=1 if ai > real else 0 if real > ai else None,
                votes_ai=ai,
                votes_real=real,
                reporters=len(reports),
                image_url=next((r.image_url for r in reversed(reports) if r.image_url), None),
                generators=sorted({r.generator for r in reports if r.generator}),
                model_versions=sorted({r.model_version for r in reports if r.model_version}),
                first_reported=min(r.received_at for r in every),
                last_reported=max(r.received_at for r in every),
                verification="verified" if states == {"verified"} else "rejected" if "rejected" in states else "unverified",
            )
        )
    return candidates
