"""C2PA manifests (c2pa-python), read offline: no remote manifests, no OCSP, no trust list.

The whole manifest chain is read, active manifest and ingredients alike: an AI origin is
often declared only in an ingredient (e.g. ChatGPT wrapping a DALL-E manifest), or only as
a vendor parameter (Adobe's ``com.adobe.digitalSourceType`` for third-party models).
Validation problems are reported as signals but do not stop the reading. What the manifest
states (each action's source type, description and software agent, the claim generator) is
passed on field by field in each signal's ``statement``, bounded (``stated_text``).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import c2pa
import msgspec

from ._c2pa_status import EXPECTED_OFFLINE, signer_certificate, status_from_store
from ._limits import stated_text
from ._model import C2paStatus, Signal, Statement
from ._terms import classify_source_type, generator_named_in, maker_claimed_in, source_type_term

_OFFLINE = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
_MAX_MANIFESTS = 64
_MAX_ACTIONS = 1024
"""Actions read from the whole store (a hostile manifest may list millions)."""
_MAX_HISTORY = 16
_MIME_BY_MAGIC = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF8", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)
_VALID_STATES = ("Valid", "Trusted")


@dataclass(frozen=True)
class _Action:
    manifest_label: str
    manifest: dict
    depth: int
    action: dict

    @property
    def parameters(self) -> dict:
        parameters = self.action.get("parameters")
        return parameters if isinstance(parameters, dict) else {}

    @property
    def source_type(self) -> str | None:
        value = self.action.get("digitalSourceType") or self.parameters.get("com.adobe.digitalSourceType")
        return value if isinstance(value, str) else None

    @property
    def name(self) -> str:
        return stated_text(self.action.get("action")) or "an unnamed action"

    def statement(self, active_label: str | None) -> Statement:
        """What this action states, as written (Adobe puts the description among the parameters)."""
        described = self.action.get("description") or self.parameters.get("description")
        return Statement(
            source_type=stated_text(source_type_term(self.source_type)) if self.source_type else None,
            action=self.name,
            description=stated_text(described),
            software_agent=_agent(self),
            claim_generator=_tool(self.manifest),
            earlier_step=self.manifest_label != active_label,
        )


def read_c2pa(data: bytes) -> tuple[list[Signal], C2paStatus | None]:
    """The manifest store's signals, and the active manifest's validity and signer."""
    mime = _sniff_mime(data)
    if mime is None:
        return [], None
    try:
        with c2pa.Context(c2pa.Settings.from_dict(_OFFLINE)) as context:
            with c2pa.Reader(mime, io.BytesIO(data), context=context) as reader:
                store = json.loads(reader.json())
                certificate = signer_certificate(_certificate_report(reader), store.get("active_manifest"))
    except c2pa.C2paError as exc:
        return _reader_error(str(exc)), None
    status = status_from_store(store, certificate)
    signals = signals_from_store(store)
    return (_as_tampered(signals) if status.validity == "invalid" else signals), status


def _certificate_report(reader: c2pa.Reader) -> str | None:
    """c2pa's crJSON report, the one that names the certificates' subjects and issuers (None
    where this c2pa has none or cannot write it: the signer is then named without its issuer)."""
    try:
        return reader.crjson()
    except (AttributeError, c2pa.C2paError):
        return None


def _as_tampered(signals: list[Signal]) -> list[Signal]:
    """A manifest that fails validation (hash, signature or certificate) proves nothing: its
    claims are shown, marked tampered, and count for neither side."""
    return [
        signal if signal.verdict is None else
        msgspec.structs.replace(signal, detail=f"tampered (the manifest fails validation; proves nothing): {signal.detail}", verdict=None)
        for signal in signals
    ]


def signals_from_store(store: dict) -> list[Signal]:
    """Signals from a manifest store as ``c2pa.Reader.json()`` returns it."""
    manifests = store.get("manifests") or {}
    active_label = store.get("active_manifest")
    actions = list(_actions(manifests, active_label))
    active_tool = _tool(manifests.get(active_label) or {})
    signals = [_validation_signal(store)]

    with_type = [action for action in actions if action.source_type]
    ai = [action for action in with_type if classify_source_type(action.source_type) == "ai"]
    named_ai = None if ai else _named_ai_creation(actions, active_label)
    if ai:
        signals.append(_ai_signal(ai, active_label, active_tool))
    if named_ai:
        signals.append(named_ai)
    for action in with_type:
        verdict = classify_source_type(action.source_type)
        if verdict != "ai":
            signals.append(_source_type_signal(action, verdict, active_label))
    if actions and not with_type and not named_ai and store.get("validation_state") in _VALID_STATES:
        # An intact history that never declares an AI source (e.g. Photoshop opened/resized).
        # Weaker than a capture declaration, but it is what the signed record says.
        names = list(dict.fromkeys(action.name for action in actions))[:_MAX_HISTORY]
        signals.append(
            Signal(
                "c2pa", f"valid C2PA history ({', '.join(names)}) declares no AI source", verdict="not-ai", generator=active_tool,
                statement=Statement(history=names, claim_generator=active_tool),
            )
        )
    return signals


def _actions(manifests: dict, active_label: str | None) -> Iterator[_Action]:
    """Actions of the active manifest, then of its ingredients, depth first (cycle-safe)."""
    seen: set[str] = set()
    stack = [(active_label, 0)]
    read = 0
    while stack and len(seen) < _MAX_MANIFESTS:
        label, depth = stack.pop()
        if label in seen or label not in manifests:
            continue
        seen.add(label)
        manifest = manifests[label]
        for assertion in manifest.get("assertions") or []:
            if str(assertion.get("label", "")).startswith("c2pa.actions"):
                for action in (assertion.get("data") or {}).get("actions") or []:
                    read += 1
                    if read > _MAX_ACTIONS:
                        return
                    if isinstance(action, dict):
                        yield _Action(label, manifest, depth, action)
        for ingredient in manifest.get("ingredients") or []:
            stack.append((ingredient.get("active_manifest"), depth + 1))


def _ai_signal(ai: list[_Action], active_label: str | None, active_tool: str | None) -> Signal:
    """The origin is the deepest AI declaration, preferring fully generated over composite. It
    names the generator by its software agent, else by its own words' maker ("Created by Google
    Generative AI")."""
    origin = max(ai, key=lambda a: (source_type_term(a.source_type) == "trainedAlgorithmicMedia", a.depth))
    statement = origin.statement(active_label)
    generator = statement.software_agent or maker_claimed_in(statement.description)
    origin_tool = statement.claim_generator
    if origin.manifest_label != active_label and active_tool and active_tool != origin_tool:
        generator = f"{generator} -> {active_tool}" if generator else active_tool
    terms = ", ".join(sorted({source_type_term(a.source_type) for a in ai}))
    where = "active manifest" if origin.manifest_label == active_label else "ingredient manifest"
    return Signal(
        "c2pa",
        f"{origin.name} with digitalSourceType {terms} ({where}, claim generator {origin_tool})",
        verdict="ai",
        generator=generator,
        statement=statement,
    )


def _named_ai_creation(actions: list[_Action], active_label: str | None) -> Signal | None:
    """A creation without a digital source type, by a tool whose names say AI (Bing Image Creator)."""
    for action in actions:
        if action.action.get("action") != "c2pa.created":
            continue
        statement = action.statement(active_label)
        texts = [text for text in (statement.software_agent, statement.description, stated_text(action.manifest.get("claim_generator"))) if text]
        for text in texts:
            named, name = generator_named_in(text)
            if named:
                return Signal(
                    "c2pa",
                    f"c2pa.created without digitalSourceType by an AI tool: {' / '.join(texts)}",
                    verdict="ai",
                    generator=statement.software_agent or name or maker_claimed_in(statement.description),
                    statement=statement,
                )
    return None


def _source_type_signal(action: _Action, verdict: str | None, active_label: str | None) -> Signal:
    statement = action.statement(active_label)
    term = statement.source_type
    if verdict == "not-ai":
        signer = stated_text((action.manifest.get("signature_info") or {}).get("common_name"))
        tool = statement.claim_generator
        generator = f"{signer} ({tool})" if signer and tool else signer or tool
        return Signal("c2pa", f"{action.name} with digitalSourceType {term}", "not-ai", generator, statement)
    return Signal(
        "c2pa", f"digitalSourceType {term} is neither AI nor a capture", generator=statement.software_agent or statement.claim_generator,
        statement=statement,
    )


def _validation_signal(store: dict) -> Signal:
    codes = [str(status.get("code")) for status in store.get("validation_status") or []]
    unexpected = [code for code in dict.fromkeys(codes) if code not in EXPECTED_OFFLINE]
    detail = f"manifest store {store.get('validation_state', 'unvalidated')}"
    if unexpected:
        detail += f" ({', '.join(unexpected)})"
    return Signal("c2pa", detail + "; signer not checked against a trust list")


def _agent(action: _Action) -> str | None:
    """Who performed the action: softwareAgent, else a vendor's model parameters."""
    agent = action.action.get("softwareAgent")
    if isinstance(agent, dict):
        agent = " ".join(str(agent[key]) for key in ("name", "version") if agent.get(key))
    if text := stated_text(agent):
        return text
    parameters = action.parameters
    model = parameters.get("com.adobe.details") or parameters.get("com.adobe.modelId")
    if model:
        version = parameters.get("com.adobe.modelVersion")
        model = f"{model} ({version})" if version else str(model)
        tool = _tool(action.manifest)
        return stated_text(f"{model} via {tool}" if tool else model)
    return None


def _tool(manifest: dict) -> str | None:
    """The claim generator as a readable name: "Adobe_Photoshop/26.9.0 ..." -> "Adobe Photoshop 26.9.0"."""
    infos = manifest.get("claim_generator_info")
    for info in (infos if isinstance(infos, list) else [])[:_MAX_HISTORY]:
        if isinstance(info, dict) and info.get("name"):
            name = str(info["name"]).replace("_", " ")
            return stated_text(f"{name} {info['version']}" if info.get("version") else name)
    claim_generator = str(manifest.get("claim_generator") or "").split(" ")[0]
    return stated_text(claim_generator.replace("_", " ").replace("/", " "))


def _reader_error(message: str) -> list[Signal]:
    if "ManifestNotFound" in message or "JumbfNotFound" in message:
        return []
    if message.startswith("Remote"):
        url = re.search(r"https?://\S+", message)
        where = url.group(0) if url else "a remote URL"
        return [Signal("c2pa", f"manifest is stored remotely at {where}; not fetched (offline reader)")]
    return [Signal("c2pa", f"unreadable C2PA data: {message[:200]}")]


def _sniff_mime(data: bytes) -> str | None:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:12] in (b"ftypavif", b"ftypavis"):
        return "image/avif"
    if data[4:8] == b"ftyp" and data[8:12] in (b"heic", b"heix", b"mif1"):
        return "image/heic"
    return next((mime for magic, mime in _MIME_BY_MAGIC if data.startswith(magic)), None)
