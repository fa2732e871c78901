"""What a C2PA manifest states and who signed it, field by field (``Signal.statement``, the
signer's names in ``Provenance.c2pa``): on the real files in ../shared/data/provenance
(skipped where absent), and on files signed here with made-up certificates, hostile ones
included (tests/fixtures/c2pa_files.py)."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genspot.backend.provenance import Provenance, Statement, read_provenance
from genspot.backend.provenance._c2pa import signals_from_store
from genspot.backend.provenance._c2pa_status import signer_certificate
from genspot.backend.provenance._limits import MAX_STATED_CHARS, stated_text
from genspot.backend.provenance._terms import maker_claimed_in
from tests.fixtures.c2pa_files import AI, GOOGLE_LIKE, signed_jpeg, tampered

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "provenance"
UNSHOWN = [chr(c) for c in (*range(0x20), *range(0x7F, 0xA0), *range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2060, 0x206A), 0xFEFF)]


def real(name: str) -> Provenance:
    path = DATA / name
    if not path.exists():
        pytest.skip(f"provenance test data not found at {path}")
    return read_provenance(path.read_bytes())


def stated(provenance: Provenance, kind: str = "c2pa") -> Statement | None:
    """The statement of the first signal of ``kind`` that has one."""
    return next((signal.statement for signal in provenance.signals if signal.kind == kind and signal.statement), None)


AI_TERM = "trainedAlgorithmicMedia"
REAL_STATEMENTS = {
    "c2pa/ai_firefly_text2image.jpg": Statement(
        source_type=AI_TERM, action="c2pa.created", software_agent="Adobe Firefly", claim_generator="Adobe Firefly"
    ),
    # the AI origin is declared in the ingredient (OpenAI-API), not in ChatGPT's active manifest
    "c2pa/ai_openai_dalle.webp": Statement(
        source_type=AI_TERM, action="c2pa.created", software_agent="DALL·E", claim_generator="OpenAI-API", earlier_step=True
    ),
    # no digital source type: the description and the software agent are all it says (and it fails validation)
    "c2pa/ai_bing_image_creator_no_dst.jpg": Statement(
        action="c2pa.created", description="AI Generated Image", software_agent="Image Creator from Designer",
        claim_generator="Microsoft Responsible AI Image Provenance 1.0",
    ),
    "c2pa/capture_pixel10pro_computational.jpg": Statement(
        source_type="computationalCapture", action="c2pa.created", description="Created by Pixel Camera.",
        claim_generator="Google C2PA SDK for Android 792394983:792394983",
    ),
    "c2pa/edit_photoshop_no_ai.jpg": Statement(history=["c2pa.opened", "c2pa.resized"], claim_generator="Adobe Photoshop 26.8.1"),
    # the source type only as Adobe's vendor parameter, the model in vendor parameters
    "iptc_xmp/ai_gemini_via_firefly_xmp_dst.png": Statement(
        source_type=AI_TERM, action="c2pa.opened", software_agent="Gemini Flash (nano-banana-2) via Adobe Firefly",
        claim_generator="Adobe Firefly", earlier_step=True,
    ),
}


@pytest.mark.parametrize("name", sorted(REAL_STATEMENTS))
def test_what_real_manifests_state(name):
    assert stated(real(name)) == REAL_STATEMENTS[name]


def test_an_iptc_label_states_its_source_type_and_credit():
    statement = stated(real("iptc_xmp/ai_gemini_via_firefly_xmp_dst.png"), kind="iptc_xmp")
    assert statement == Statement(source_type=AI_TERM, credit="Made with Google AI")


# signer (common name), its organisation, the organisation that issued its certificate, whether validation passed
REAL_SIGNERS = {
    "c2pa/ai_firefly_text2image.jpg": ("Adobe Firefly C2PA Stage", "Adobe Inc.", "Adobe Systems Incorporated", True),
    "c2pa/ai_openai_dalle.webp": ("Truepic Lens CLI in ChatGPT", "OpenAI", "Truepic", True),
    "c2pa/ai_bing_image_creator_no_dst.jpg": ("Microsoft Corporation", "Microsoft Corporation", "Microsoft Corporation", False),
    "c2pa/capture_pixel10pro_computational.jpg": ("Pixel Camera", "Google LLC", "Google LLC", False),
    "c2pa/edge_tampered_datahash_XCA.jpg": ("C2PA Signer", "C2PA Test Signing Cert", "C2PA Test Intermediate Root CA", False),
}


@pytest.mark.parametrize("name", sorted(REAL_SIGNERS))
def test_who_signed_real_manifests_and_that_no_trust_list_was_checked(name):
    status = real(name).c2pa
    signer, organization, certificate_issuer, passed = REAL_SIGNERS[name]
    assert (status.signer, status.signer_organization, status.certificate_issuer) == (signer, organization, certificate_issuer)
    assert status.validation_passed is passed and (status.validity == "invalid") is not passed
    assert status.trust_list_checked is False and status.validity != "valid"


# --- files signed here --------------------------------------------------------------------


def test_a_manifest_that_names_no_tool_is_read_for_its_own_words():
    provenance = read_provenance(signed_jpeg(GOOGLE_LIKE))
    assert provenance.verdict == "ai"
    assert provenance.generator == "Google Generative AI", "the maker its own words name, for want of a software agent"
    assert stated(provenance) == Statement(
        source_type=AI_TERM, action="c2pa.created", description="Created by Google Generative AI", claim_generator="Example Generator 1.0"
    )
    status = provenance.c2pa
    assert (status.signer, status.signer_organization, status.certificate_issuer) == (
        "Example Image Service", "Example Generative AI Inc.", "Example Certificate Authority"
    )
    assert (status.validity, status.validation_passed, status.trust_list_checked) == ("untrusted", True, False)


def test_a_tampered_file_still_says_what_it_states_but_proves_nothing():
    provenance = read_provenance(tampered(signed_jpeg(GOOGLE_LIKE)))
    assert provenance.verdict == "unknown"
    [claim] = [signal for signal in provenance.signals if signal.statement]
    assert claim.verdict is None and claim.detail.startswith("tampered")
    assert claim.statement.description == "Created by Google Generative AI"
    assert provenance.c2pa.validation_passed is False and "assertion.dataHash.mismatch" in provenance.c2pa.codes


def test_hostile_texts_are_cut_and_cleaned():
    spoof = "\u202eevil\u202c by \u2066Adobe\u2069\x00\x1b[31m"
    actions = [{
        "action": "c2pa.created", "digitalSourceType": AI, "description": "Created by " + "A" * 100_000 + spoof,
        "softwareAgent": {"name": spoof, "version": "1\n2"},
    }]
    data = signed_jpeg(actions, claim_generator={"name": "Tool\r\n" + "T" * 5_000, "version": "9"}, signer=(spoof, "Org" + spoof))
    provenance = read_provenance(data)
    texts = [text for text in msgspec.structs.astuple(stated(provenance)) if isinstance(text, str)]
    texts += [provenance.c2pa.signer, provenance.c2pa.signer_organization, *(signal.detail for signal in provenance.signals)]
    for text in texts:
        assert not [c for c in text if c in UNSHOWN], repr(text)
    statement = stated(provenance)
    assert len(statement.description) == MAX_STATED_CHARS and statement.description.endswith("…")
    assert statement.software_agent == "evil by Adobe [31m 1 2"
    assert len(statement.claim_generator) == MAX_STATED_CHARS and provenance.c2pa.signer == "evil by Adobe [31m"


def store_with(actions: list, state: str = "Valid") -> dict:
    manifest = {"claim_generator": "Tool/1", "assertions": [{"label": "c2pa.actions.v2", "data": {"actions": actions}}]}
    return {"active_manifest": "a", "validation_state": state, "manifests": {"a": manifest}}


def test_fields_that_are_not_text_are_not_passed_on():
    action = {"action": "c2pa.created", "digitalSourceType": AI, "description": {"text": "x"}, "softwareAgent": ["Midjourney"], "parameters": [1]}
    [statement] = [signal.statement for signal in signals_from_store(store_with([action])) if signal.statement]
    assert statement == Statement(source_type=AI_TERM, action="c2pa.created", claim_generator="Tool 1")


def test_actions_past_the_limit_are_not_read():
    ai = {"action": "c2pa.created", "digitalSourceType": AI}
    edits = [{"action": f"c2pa.edit{i}"} for i in range(2_000)]
    assert any(signal.verdict == "ai" for signal in signals_from_store(store_with([*edits[:10], ai])))
    signals = signals_from_store(store_with([*edits, ai]))
    assert not any(signal.verdict == "ai" for signal in signals)
    [history] = [signal.statement.history for signal in signals if signal.statement]
    assert history == [f"c2pa.edit{i}" for i in range(16)], "an AI-free history names its first 16 actions"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=300),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=20), inner, max_size=4),
    max_leaves=20,
)
ACTION = st.fixed_dictionaries(
    {},
    optional={
        key: JSON | st.sampled_from([AI, "digitalCapture"]) for key in ("action", "digitalSourceType", "description", "softwareAgent", "parameters")
    },
)


@settings(max_examples=200, deadline=None)
@given(st.lists(ACTION, max_size=6), st.sampled_from(["Valid", "Trusted", "Invalid"]))
def test_any_action_fields_give_bounded_statements(actions, state):
    for signal in signals_from_store(store_with(actions, state)):
        for text in msgspec.structs.astuple(signal.statement) if signal.statement else ():
            assert not isinstance(text, str) or (len(text) <= MAX_STATED_CHARS and not [c for c in text if c in UNSHOWN])


@pytest.mark.parametrize(
    "report",
    [None, "", "not json", "[1, 2]", '{"manifests": {"a": 1}}', '{"manifests": [{"label": "a", "signature": [1]}]}', " " * (8 * 1024 * 1024 + 1)],
)
def test_a_missing_or_odd_certificate_report_names_no_issuer(report):
    assert signer_certificate(report, "a") == {}


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("  Created by\tGoogle\nGenerative AI ", "Created by Google Generative AI"),
        ("\u202eAdobe\u202c", "Adobe"),
        ("\x00\x07", None),
        (42, None),
        (["a"], None),
        ("x" * 1_000, "x" * (MAX_STATED_CHARS - 1) + "…"),
    ],
)
def test_stated_text(value, shown):
    assert stated_text(value) == shown


@pytest.mark.parametrize(
    ("words", "maker"),
    [
        ("Created by Google Generative AI", "Google Generative AI"),
        ("Made with Google AI", "Google AI"),
        ("Generated using Acme Diffusion 2.1. Edited by hand.", "Acme Diffusion 2.1"),
        ("Edited with Acme Studio (beta)", "Acme Studio"),
        ("Made with AI", None),
        ("Created using a generative AI model", None),
        ("Generative Fill", None),
        ("Created by " + "A" * 200, None),
        ("", None),
        (None, None),
    ],
)
def test_the_maker_a_labels_own_words_name(words, maker):
    assert maker_claimed_in(words) == maker


def test_a_label_without_a_software_agent_or_a_maker_names_no_generator():
    generic = [{"action": "c2pa.created", "digitalSourceType": AI, "description": "Made with AI"}]
    provenance = read_provenance(signed_jpeg(generic))
    assert provenance.verdict == "ai" and provenance.generator is None
