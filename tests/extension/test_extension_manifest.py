"""The manifest asks for no more than the extension needs, and every file it names exists.

Runs without a browser, so a machine without Chromium still checks the extension's shape.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

EXTENSION_DIR = Path(__file__).resolve().parents[2] / "extension"
MANIFEST = json.loads((EXTENSION_DIR / "manifest.json").read_text(encoding="utf-8"))


def referenced_files() -> list[str]:
    files = [MANIFEST["background"]["service_worker"], *MANIFEST["background"]["scripts"], MANIFEST["action"]["default_popup"], MANIFEST["options_ui"]["page"]]
    files += [path for script in MANIFEST["content_scripts"] for path in script["js"]]
    files += list(MANIFEST["icons"].values()) + list(MANIFEST["action"]["default_icon"].values())
    return files


def test_manifest_v3_with_minimal_permissions():
    assert MANIFEST["manifest_version"] == 3
    assert MANIFEST["permissions"] == ["storage", "contextMenus"]
    assert MANIFEST["host_permissions"] == ["http://*/*", "https://*/*"]
    assert "web_accessible_resources" not in MANIFEST
    assert "externally_connectable" not in MANIFEST
    assert MANIFEST["background"]["type"] == "module"


def test_one_background_script_for_chromium_and_firefox():
    """Chromium runs `service_worker`, Firefox `scripts` (as an event page): the same module,
    so the two browsers cannot drift apart; Firefox needs the add-on id to keep its storage."""
    background = MANIFEST["background"]
    assert background["scripts"] == [background["service_worker"]]
    assert MANIFEST["browser_specific_settings"]["gecko"]["id"] == "genspot@genspot.example"


def test_every_referenced_file_exists():
    missing = [path for path in referenced_files() if not (EXTENSION_DIR / path).is_file()]
    assert missing == []


def test_module_imports_resolve():
    """Every relative `import` in the extension's modules names a file that exists."""
    importing = re.compile(r"""^\s*import\s+(?:[^"']*\sfrom\s+)?["'](\.[^"']+)["']""", re.MULTILINE)
    missing = [
        f"{path.relative_to(EXTENSION_DIR)} -> {target}"
        for path in EXTENSION_DIR.rglob("*.js")
        for target in importing.findall(path.read_text(encoding="utf-8"))
        if not (path.parent / target).resolve().is_file()
    ]
    assert missing == []


def test_message_names_come_from_the_shared_module():
    """No file spells a message name itself: they all use genspot.MSG from shared/messages.js."""
    spelled = [
        str(path.relative_to(EXTENSION_DIR))
        for path in EXTENSION_DIR.rglob("*.js")
        if path.name != "messages.js" and re.search(r"""["']genspot/[a-z-]+["']""", path.read_text(encoding="utf-8"))
    ]
    assert spelled == []


def test_no_remote_code_or_other_hosts():
    """Extension pages load only their own files, and no code names a network address but the
    default backend (and the reserved example.com in comments)."""
    for page in EXTENSION_DIR.rglob("*.html"):
        assert not re.search(r"""(src|href)=["']https?:""", page.read_text(encoding="utf-8")), page
    addresses = re.compile(r"""https?://(?!127\.0\.0\.1:8000|example\.com)[\w.-]+""", re.IGNORECASE)
    for script in EXTENSION_DIR.rglob("*.js"):
        assert not addresses.findall(script.read_text(encoding="utf-8")), script
