"""Whether a C2PA manifest store holds up, and who signed its active manifest, from c2pa's reports.

No trust list is loaded, so c2pa can confirm that the hashes and the signature check out
(the file has not changed since it was signed) but not who signed it: the names are what the
signer's certificate states.
"""

from __future__ import annotations

import json

from ._limits import stated_text
from ._model import C2paStatus

EXPECTED_OFFLINE = ("signingCredential.untrusted", "cawg.x509.credential.untrusted")
"""What c2pa reports about every signer when no trust list is loaded: no fault of the file."""
_MAX_REPORT_CHARS = 8 * 1024 * 1024
"""A certificate report (c2pa's crJSON of the whole store) longer than this is not parsed."""


def status_from_store(store: dict, certificate: dict | None = None) -> C2paStatus:
    """``valid`` / ``untrusted`` / ``invalid`` from c2pa's validation state and codes, and the
    signer, from ``Reader.json()``'s store and the signer's ``certificate`` (its crJSON
    ``certificateInfo``, see :func:`signer_certificate`)."""
    codes = list(dict.fromkeys(str(status.get("code")) for status in store.get("validation_status") or []))
    state = store.get("validation_state")
    if state == "Trusted":
        validity = "valid"
    elif state == "Valid" or (state is None and not [code for code in codes if code not in EXPECTED_OFFLINE]):
        validity = "untrusted"  # c2pa says "Trusted" only when a trust list vouches for the signer
    else:
        validity = "invalid"
    signature = (store.get("manifests") or {}).get(store.get("active_manifest"), {}).get("signature_info") or {}
    signer = stated_text(signature.get("common_name"))
    organization = _organization(certificate, "subject") or stated_text(signature.get("issuer"))
    return C2paStatus(
        validity=validity,
        signer=signer,
        issuer=organization if organization != signer else None,
        codes=codes,
        signer_organization=organization,
        certificate_issuer=_organization(certificate, "issuer"),
        validation_passed=validity != "invalid",
        trust_list_checked=state == "Trusted",
    )


def signer_certificate(report: str | None, active_label: object) -> dict:
    """The active manifest's signing certificate (``certificateInfo``: ``subject``, ``issuer``)
    from c2pa's crJSON report of the store; {} when the report is missing, too long or lacks it."""
    if not report or len(report) > _MAX_REPORT_CHARS:
        return {}
    try:
        manifests = json.loads(report).get("manifests")
    except (ValueError, AttributeError):
        return {}
    for manifest in manifests if isinstance(manifests, list) else []:
        if isinstance(manifest, dict) and manifest.get("label") == active_label:
            signature = manifest.get("signature")
            info = signature.get("certificateInfo") if isinstance(signature, dict) else None
            return info if isinstance(info, dict) else {}
    return {}


def _organization(certificate: dict | None, name: str) -> str | None:
    """The organisation (``O``) of a certificate's subject or issuer."""
    distinguished = (certificate or {}).get(name)
    return stated_text(distinguished.get("O")) if isinstance(distinguished, dict) else None
