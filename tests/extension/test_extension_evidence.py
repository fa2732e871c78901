"""The extension in real Chromium explains its badges: which evidence decided, which disagrees,
what Content Credentials say and who signed them, "could not check" apart from real, the bytes
fallback for a page on a non-80/443 port, the context-menu check of a CSS background and of an
image in an iframe, and a wrong-verdict report that reaches /v1/feedback.

The site (evidence_site.py) runs on a free port and the backend keeps its default allowed
ports (80, 443), so it refuses every image URL of the page with `unsupported_url` and the
extension must send the bytes. The backend's thresholds pin the tiny test model's verdict
("real" for every picture, or "ai" for every picture), so the metadata's part is what varies;
the test first checks that the model's probabilities for the two photos lie between them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re

import httpx
import pytest
from evidence_site import (
    C2PA_EDIT,
    C2PA_NAMES_PAGE_PATH,
    C2PA_PAGE_PATH,
    FRAME_PATH,
    FRAMED_IMAGE_PATH,
    FRAMED_PAGE_PATH,
    SHOWN_ONLY_PATH,
    running_c2pa_site,
    running_evidence_site,
)
from extension_browser import launch_extension
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect
from test_extension_browser import BACKEND_USER_AGENT, metric, wait_until

from tests.fixtures.bundles import bundle_with

pytestmark = pytest.mark.browser

SHOWN = ["camera", "c2pa-edit", "sd", "shown-only"]
MODEL_SAYS_REAL = {"threshold": 0.999, "uncertain_band": 0.0}
MODEL_SAYS_AI = {"threshold": 0.001, "uncertain_band": 0.0}

# The context menu's handler run for each frame of a tab in turn, as a click in that frame would
# (info.frameId): an extension without the webNavigation permission cannot list a tab's frames.
# Answers the first frame id whose content script checked an image, with its answer.
CHECK_IN_FRAMES_JS = """async ([tabId, srcUrl]) => {
  for (let frameId = 0; frameId < 5000; frameId += 1) {
    const answer = await genspot.handleContextMenu({ menuItemId: "genspot-check", frameId, srcUrl, pageUrl: "" }, { id: tabId });
    if (answer?.checked) return { frameId, answer };
  }
  return null;
}"""

# Every badge keyed by the data-test name of the element (an <img> or not) whose corner it sits on.
BADGES_JS = """() => {
  const targets = [...document.querySelectorAll("[data-test]")];
  const found = {};
  for (const host of document.querySelectorAll("genspot-badge")) {
    const left = parseFloat(host.style.left), top = parseFloat(host.style.top);
    const on = targets.find((el) => { const b = el.getBoundingClientRect(); return Math.abs(b.left + scrollX + 4 - left) <= 1 && Math.abs(b.top + scrollY + 4 - top) <= 1; });
    const button = host.shadowRoot.querySelector("button");
    if (on) found[on.dataset.test] = {
      verdict: host.dataset.verdict, text: button.textContent, details: host.shadowRoot.querySelector(".panel").textContent,
      open: host.shadowRoot.querySelector(".wrap").classList.contains("open"),
    };
  }
  return found;
}"""


# The index (among all badges) of the badge on the element with a given data-test name.
BADGE_INDEX_JS = """(name) => {
  const box = document.querySelector(`[data-test="${name}"]`).getBoundingClientRect();
  return [...document.querySelectorAll("genspot-badge")].findIndex((h) =>
    Math.abs(box.left + scrollX + 4 - parseFloat(h.style.left)) <= 1 && Math.abs(box.top + scrollY + 4 - parseFloat(h.style.top)) <= 1);
}"""
# What a page's own script could try: click a badge's report button.
SCRIPTED_REPORT_JS = """(index) => document.querySelectorAll("genspot-badge")[index].shadowRoot.querySelector(".report button[data-label]").click()"""


def badge_of(page, name: str):
    return page.locator("genspot-badge").nth(page.evaluate(BADGE_INDEX_JS, name))


def natural_width(image) -> int:
    image.wait_for()
    return image.evaluate("(img) => img.decode().then(() => img.naturalWidth, () => 0)")


def shown_badges(page) -> dict[str, dict]:
    return page.evaluate(BADGES_JS)


def wait_for_badges(page, condition: str, what: str, timeout_ms: float = 45_000) -> dict[str, dict]:
    """The badges, once `condition` (JS of `badges`, the BADGES_JS map) holds; else a failure saying what was shown."""
    try:
        page.wait_for_function(f"() => {{ const badges = ({BADGES_JS})(); return {condition}; }}", timeout=timeout_ms)
    except PlaywrightTimeout:
        shown = {name: (badge["verdict"], badge["text"], badge["details"]) for name, badge in shown_badges(page).items()}
        pytest.fail(f"timed out after {timeout_ms / 1000:g} s waiting until {what}; shown: {shown or 'no badge'}")
    return shown_badges(page)


def badges(page, names: list[str], timeout_ms: float = 45_000) -> dict[str, dict]:
    """The badges, once each of `names` has one on its element that is no longer checking."""
    condition = f"{json.dumps(names)}.every((name) => badges[name] && badges[name].verdict !== 'checking')"
    return wait_for_badges(page, condition, f"{', '.join(names)} have answered badges", timeout_ms)


@pytest.fixture
def site():
    """A fresh site (and request log) for each test."""
    if not C2PA_EDIT.exists():
        pytest.skip(f"provenance test data not found at {C2PA_EDIT}")
    with running_evidence_site() as running:
        yield running


@pytest.fixture
def browser(tmp_path):
    with launch_extension(tmp_path / "profile") as launched:
        yield launched


def start(backend_server, bundle, feedback_path, thresholds):
    # allowed_ports stays 80,443: the site's port is refused, which is the point
    return backend_server(bundle, allow_loopback=True, feedback_path=str(feedback_path), **thresholds)


def c2pa_site_badges(browser, backend, path: str, names: list[str]) -> dict[str, dict]:
    """The badges of `names` on a page of the Content Credentials site, checked by `backend`."""
    browser.configure(backend.url, show_real=True)
    with running_c2pa_site() as site:
        page = browser.context.new_page()
        page.goto(site.url(path))
        return badges(page, names)


def model_probabilities(backend, site, paths) -> dict[str, float]:
    """The model's AI probability for each of the site's images, asked directly (as bytes)."""
    items = [{"id": path, "image_b64": base64.b64encode(site.files[path][0]).decode()} for path in paths]
    response = httpx.post(f"{backend.url}/v1/detect", json={"items": items}, timeout=60)
    response.raise_for_status()
    return {result["id"]: result["ai_probability"] for result in response.json()["results"]}


def test_non_standard_port_gets_badges_through_bytes_with_their_deciding_evidence(browser, site, tiny_bundle, backend_server, tmp_path):
    backend = start(backend_server, tiny_bundle, tmp_path / "feedback.jsonl", MODEL_SAYS_REAL)
    # Both backends' thresholds must turn the model's own verdict on the two photos around.
    scores = model_probabilities(backend, site, ["/img/camera.jpg", "/img/c2pa-edit.jpg"])
    assert all(MODEL_SAYS_AI["threshold"] <= p < MODEL_SAYS_REAL["threshold"] for p in scores.values()), scores
    browser.configure(backend.url, show_real=True)
    page = browser.context.new_page()
    page.goto(site.url())
    shown = badges(page, SHOWN)

    # The port: the backend refused every URL, the browser fetched each image and sent its bytes.
    for name in ("camera", "c2pa-edit", "sd"):
        assert f"your browser sent the image to genspot's service, as the service downloads only from the usual web ports, and this site uses port {site.port}" in shown[name]["details"], name
    assert not [r for r in site.requests if r.user_agent.startswith(BACKEND_USER_AGENT)], "the backend never fetched from the site"
    assert {r.path for r in site.requests if r.fetch_dest == "empty" and r.status == 200} == {"/img/camera.jpg", "/img/c2pa-edit.jpg", "/img/sd.png"}
    sent = browser.sent_items()
    assert {item["url"] for item in sent if "url" in item} == {site.url(p) for p in ("/img/camera.jpg", "/img/c2pa-edit.jpg", "/img/sd.png", SHOWN_ONLY_PATH)}
    assert len([item for item in sent if "image_b64" in item]) == 3

    # Each badge shows what decided: the model for the camera photo, the signed manifest for the
    # edit, Stable Diffusion's parameters for the AI image (the model's "real" named as disagreeing).
    camera, edit, sd = shown["camera"], shown["c2pa-edit"], shown["sd"]
    assert camera["verdict"] == "real" and camera["text"] in ("Likely real", "Very likely real")
    assert "Whygenspot's detector puts the chance it is AI-generated at" in camera["details"]
    assert (edit["verdict"], edit["text"]) == ("real", "Labelled real")
    assert "Whythe file's own label (below) outranks genspot's detector" in edit["details"]
    assert "LabelContent Credentials (C2PA) in the file: its edit history (opened, resized) declares no AI" in edit["details"]
    assert "SignedBy Adobe C2PA (Adobe Inc.), with a certificate issued by Adobe Systems Incorporated. The signature checks out" in edit["details"]
    assert "No trust list was checked" in edit["details"] and "untrusted" not in edit["details"]
    assert sd["verdict"] == "ai" and sd["text"].startswith("Labelled AI · AUTOMATIC1111")
    assert "Whythe file's own label" in sd["details"] and "alone, it would say real" in sd["details"]

    # "Could not check" is its own quiet badge, never confused with real.
    unchecked = shown["shown-only"]
    assert (unchecked["verdict"], unchecked["text"]) == ("error", "Not checked")
    assert "the browser could not fetch the image either (HTTP 500)" in unchecked["details"]
    popup = browser.open_popup(site.url())
    expect(popup.locator("#count-error")).to_have_text("1")
    assert browser.popup_counts(popup) == {"ai": 1, "real": 2, "uncertain": 0, "error": 1}

    # A backend whose model calls everything AI: the camera EXIF and the unconfirmed signer are shown
    # as disagreeing, and move nothing (anyone can write them).
    lenient = start(backend_server, tiny_bundle, tmp_path / "feedback2.jsonl", MODEL_SAYS_AI)
    browser.configure(lenient.url, show_real=True)
    page.reload()
    wait_for_badges(page, "badges.camera?.verdict === 'ai' && badges['c2pa-edit']?.verdict === 'ai'", "the photos' badges say AI")
    shown = badges(page, SHOWN)
    camera, edit = shown["camera"], shown["c2pa-edit"]
    assert re.match(r"(Very l|L)ikely AI", camera["text"]) and "Whygenspot's detector puts the chance" in camera["details"]
    assert "Butthe file's camera and software details (EXIF): taken with a " in camera["details"] and "Canon EOS REBEL T3" in camera["details"]
    assert re.match(r"(Very l|L)ikely AI", edit["text"]) and "Whygenspot's detector puts the chance" in edit["details"]
    assert "ButContent Credentials (C2PA) in the file: its edit history" in edit["details"] and "SignedBy Adobe C2PA" in edit["details"]
    assert shown["sd"]["text"].startswith("Labelled AI")


def test_content_credentials_say_what_the_manifest_says_who_signed_it_and_that_no_trust_list_was_checked(browser, tiny_bundle, backend_server, tmp_path):
    """A manifest that names no tool, only its own words ("Created by Google Generative AI"), signed
    by a made-up certificate: the details quote it, name the signer and its certificate's issuer
    as the certificate states them, and say no trust list was checked. The same file changed after
    signing proves nothing, and its details say what it claims all the same."""
    backend = start(backend_server, tiny_bundle, tmp_path / "feedback.jsonl", MODEL_SAYS_REAL)
    shown = c2pa_site_badges(browser, backend, C2PA_PAGE_PATH, ["signed", "tampered"])
    signed, broken = shown["signed"], shown["tampered"]
    says = "made with generative AI; in its own words: “Created by Google Generative AI”; recorded by Example Generator 1.0"
    signer = "By Example Image Service (Example Generative AI Inc.), with a certificate issued by Example Certificate Authority."

    assert signed["verdict"] == "ai" and signed["text"].startswith("Labelled AI"), "the label outranks the model's real"
    assert f"LabelContent Credentials (C2PA) in the file: {says}" in signed["details"]
    assert (
        f"Signed{signer} The signature checks out: the file has not changed since it was signed. "
        "No trust list was checked, so who signed it is as the certificate states, unconfirmed."
    ) in signed["details"]
    assert "untrusted" not in signed["details"]

    assert broken["verdict"] == "real" and broken["text"] in ("Likely real", "Very likely real"), "a broken label moves nothing"
    assert f"LabelContent Credentials (C2PA) that prove nothing (see below); they say: {says}" in broken["details"]
    assert f"Signed{signer} The signature does not check out (assertion.dataHash.mismatch)" in broken["details"]


def test_a_labelled_ai_badge_names_what_the_label_names_never_the_detectors_guess(browser, tiny_bundle, backend_server, tmp_path):
    """A bundle that lets its detector name any guess (source_name_min_confidence 0): beside a
    Content Credentials label that decides, the badge names the maker the label's own words name
    ("Created by Google Generative AI"), or none when it names none ("Made with AI"); the
    detector's guesses show only among the technical details, as its guesses."""
    bundle = bundle_with(tiny_bundle, tmp_path / "bundle", 0.0)
    backend = start(backend_server, bundle, tmp_path / "feedback.jsonl", MODEL_SAYS_REAL)
    shown = c2pa_site_badges(browser, backend, C2PA_NAMES_PAGE_PATH, ["signed", "unnamed"])
    named, unnamed = shown["signed"], shown["unnamed"]

    assert (named["verdict"], named["text"]) == ("ai", "Labelled AI · Google Generative AI")
    assert "GeneratorGoogle Generative AI (named in the file's label)" in named["details"]
    assert "in its own words: “Created by Google Generative AI”" in named["details"]

    assert (unnamed["verdict"], unnamed["text"]) == ("ai", "Labelled AI"), "the label names no generator, so neither does the badge"
    assert "Generatornot named in the file's labelLabel" in unnamed["details"], "and the backend named none either"
    assert "in its own words: “Made with AI”" in unnamed["details"]
    for badge in (named, unnamed):
        assert "genspot's detector, " not in badge["details"], "no guess of the detector's passed off as a name"
        assert re.search(r"Detector's guesses[^%]+ \d+%", badge["details"]), "the detector's guesses, as such, among the technical details"


def test_context_menu_checks_a_css_background_and_a_badge_reports_a_wrong_verdict(browser, site, tiny_bundle, backend_server, tmp_path):
    feedback = tmp_path / "feedback.jsonl"
    backend = start(backend_server, tiny_bundle, feedback, MODEL_SAYS_REAL)
    browser.configure(backend.url, show_real=True)
    page = browser.context.new_page()
    page.goto(site.url())
    assert "background" not in badges(page, SHOWN), "a CSS background is not checked by itself"

    # Right-click the text over the background, then run the context menu's handler in the
    # service worker (what a click on "Check this image with genspot" runs; native menus
    # cannot be clicked by automation).
    page.click("[data-test=background] span", button="right")
    answer = browser.service_worker.evaluate(
        "(tabId) => genspot.handleContextMenu({ menuItemId: 'genspot-check', frameId: 0, pageUrl: '' }, { id: tabId })",
        browser.tab_id(site.url()),
    )
    assert answer == {"checked": True, "url": site.url("/img/background.png"), "status": "ok"}
    background = badges(page, ["background"])["background"]
    assert background["text"].startswith("Labelled AI") and "Whythe file's own label" in background["details"]

    # The popup lists every checked image with a thumbnail; "Show" opens its badge, "Recheck" asks again.
    popup = browser.open_popup(site.url())
    expect(popup.locator("#images li")).to_have_count(5)
    camera_row = popup.locator("#images li", has_text="/img/camera.jpg")
    expect(camera_row.locator(".chip")).to_have_text(re.compile(r"^(Very l|L)ikely real$"))
    assert natural_width(camera_row.locator("img.thumb")) > 0, "a thumbnail, drawn from the picture the page shows"
    camera_row.get_by_role("button", name="Show").click()
    wait_for_badges(page, "badges.camera?.open", "the camera photo's details are open")

    asked = metric(backend, "genspot_items_total")
    camera_row.get_by_role("button", name="Recheck").click()
    wait_until(lambda: metric(backend, "genspot_items_total") > asked, "the recheck asked the backend again")

    # Reporting happens where the doubt arises: in the badge's panel, one click, with an optional note.
    # The page's own script cannot report: its synthetic click is ignored.
    page.bring_to_front()
    camera = badge_of(page, "camera")
    page.evaluate(SCRIPTED_REPORT_JS, page.evaluate(BADGE_INDEX_JS, "camera"))
    page.wait_for_timeout(500)
    assert not feedback.exists() or not feedback.read_text().strip(), "a page script's click sent a report"
    if not shown_badges(page)["camera"]["open"]:
        camera.locator("button.badge").click()
    camera.get_by_placeholder("Note (optional)").fill("I took this photo myself")
    camera.get_by_role("button", name="It is AI-made").click()
    expect(camera.locator(".done")).to_have_text("You reported: it is AI-made (“I took this photo myself”). Thanks.")
    [record] = [json.loads(line) for line in feedback.read_text().splitlines()]
    assert record["sha256"] == hashlib.sha256(site.files["/img/camera.jpg"][0]).hexdigest()
    assert (record["correct_label"], record["reported_verdict"], record["decided_by"]) == ("ai", "real", "model")
    assert record["image_url"] == site.url("/img/camera.jpg") and record["verification"] == "unverified"
    assert record["comment"] == "I took this photo myself"
    assert [r for r in browser.worker_requests() if r.url == f"{backend.url}/v1/feedback"], "sent by the service worker"

    # The popup marks the reported row and lists the report with its thumbnail and note.
    expect(camera_row.locator(".reported-mark")).to_have_text("Reported: it is AI-made")
    report = popup.locator("#reports li")
    expect(report).to_have_count(1)
    expect(report).to_contain_text("You said: it is AI-made")
    expect(report).to_contain_text("“I took this photo myself”")
    assert popup.locator("#reports img.thumb").get_attribute("src").startswith("data:image/jpeg")
    assert natural_width(popup.locator("#reports img.thumb")) > 0


def test_context_menu_checks_an_image_inside_an_iframe(browser, site, tiny_bundle, backend_server, tmp_path):
    backend = start(backend_server, tiny_bundle, tmp_path / "feedback.jsonl", MODEL_SAYS_REAL)
    browser.configure(backend.url, show_real=True)
    page = browser.context.new_page()
    page.goto(site.url(FRAMED_PAGE_PATH))
    frame = page.frame(url=site.url(FRAME_PATH))
    frame.wait_for_function("() => document.querySelector('img').complete")
    assert shown_badges(frame) == {}, "images in iframes are checked on request only"

    frame.click("[data-test=framed]", button="right")
    image_url = site.url(FRAMED_IMAGE_PATH)
    checked = browser.service_worker.evaluate(CHECK_IN_FRAMES_JS, [browser.tab_id(site.url(FRAMED_PAGE_PATH)), image_url])
    assert checked and checked["frameId"] != 0, "the iframe's content script checked it, not the top page's"
    assert checked["answer"] == {"checked": True, "url": image_url, "status": "ok"}
    framed = badges(frame, ["framed"])["framed"]
    assert framed["text"].startswith("Labelled AI") and "Whythe file's own label" in framed["details"]
    assert "your browser sent the image to genspot's service" in framed["details"], "the site's port is refused, so the bytes went"
    assert shown_badges(page) == {}, "the badge is drawn inside the iframe, on its image"
