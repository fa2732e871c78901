"""The extension's pure parts, run inside an extension page of the real browser (no backend):
how results become badges, how settings are parsed, and how the service worker batches."""

from __future__ import annotations

import pytest
from extension_browser import launch_extension

pytestmark = pytest.mark.browser

LOAD_MODULES = """async () => {
  await import("/shared/settings.js");
  await import("/content/verdicts.js");
  globalThis.batcher = await import("/background/batcher.js");
  globalThis.detector = await import("/background/detector.js");
}"""


@pytest.fixture(scope="module")
def extension_page(tmp_path_factory):
    with launch_extension(tmp_path_factory.mktemp("profile")) as browser:
        page = browser.context.new_page()
        page.goto(browser.extension_url("options/options.html"))
        page.evaluate(LOAD_MODULES)
        yield page


def describe(page, result: dict, **settings) -> dict | None:
    return page.evaluate(
        "([result, settings]) => genspot.verdicts.describe(result, { ...genspot.settings.DEFAULT_SETTINGS, ...settings })",
        [result, settings],
    )


def ok(verdict: str, p: float, label: str = "midjourney_v3_2022", provenance=None) -> dict:
    return {
        "status": "ok", "verdict": verdict, "ai_probability": p, "source": {"label": label, "probability": 0.7},
        "sources": [{"label": label, "probability": 0.7}, {"label": "dalle2", "probability": 0.2}],
        "provenance": provenance, "model_version": "tiny-1", "via": "bytes",
    }


@pytest.mark.parametrize(
    ("label", "name"),
    [("midjourney_v3_2022", "Midjourney v3"), ("dalle2", "DALL·E 2"), ("dalle_mini", "DALL·E Mini"), ("stylegan", "StyleGAN"),
     ("latent_diffusion_ldm_txt2img", "Latent Diffusion LDM Txt2img"), ("glid3_xl", "Glid3 XL"), ("crn", "CRN"), ("blocky_gan", "Blocky GAN"), ("Adobe Firefly", "Adobe Firefly")],
)
def test_generator_display_names(extension_page, label, name):
    assert extension_page.evaluate("(label) => genspot.verdicts.displayName(label)", label) == name


def test_badge_texts_and_labels(extension_page):
    ai = describe(extension_page, ok("ai", 0.936))
    assert ai["kind"] == "ai" and ai["text"] == "AI 94% · Midjourney v3"
    assert ai["ariaLabel"].startswith("genspot: likely AI-generated, 94% probability, most likely Midjourney v3")
    rows = dict(ai["rows"])
    assert ai["rows"][:2] == [["Verdict", "Likely AI-generated"], ["Decided by", "the model: AI probability 94%"]], "deciding evidence first"
    assert rows["AI probability"] == "94%" and rows["Likely sources"] == "Midjourney v3 70%, DALL·E 2 20%"
    assert rows["Model"] == "tiny-1" and rows["Provenance"] == "no metadata found" and rows["Checked"] == "your browser sent the image bytes"

    assert describe(extension_page, ok("uncertain", 0.55))["text"] == "?"
    assert describe(extension_page, ok("real", 0.1, label="real")) is None, "'Likely real' badges are off by default"
    real = describe(extension_page, ok("real", 0.1, label="real"), showReal=True)
    assert real["text"] == "Likely real" and "AI probability 10%" in real["ariaLabel"]
    unchecked = describe(extension_page, {"status": "error", "error": {"code": "fetch_failed", "message": "HTTP 403"}})
    assert unchecked["kind"] == "error" and unchecked["text"] == "not checked", "could not check: its own quiet badge, never 'real'"
    assert "could not check" in unchecked["ariaLabel"] and dict(unchecked["rows"])["Reason"] == "HTTP 403"


def test_threshold_only_makes_ai_badges_stricter(extension_page):
    assert describe(extension_page, ok("ai", 0.8), threshold=0.9)["text"] == "?"
    assert describe(extension_page, ok("ai", 0.95), threshold=0.9)["kind"] == "ai"
    signals = [{"kind": "c2pa", "detail": "c2pa.created", "verdict": "ai", "generator": "DALL-E 3"}, {"kind": "exif", "detail": "x"}]
    proven = ok("ai", 0.3, label="DALL-E 3", provenance={"verdict": "ai", "generator": "DALL-E 3", "signals": signals})
    shown = describe(extension_page, proven, threshold=0.9)
    assert shown["kind"] == "ai", "metadata that proves AI beats the threshold"
    assert shown["text"] == "AI (metadata) · DALL-E 3"
    assert dict(shown["rows"])["Provenance"] == "AI-generated (DALL-E 3) · C2PA, EXIF"


def test_settings_parsing(extension_page):
    parse = "(text) => genspot.settings.parseSiteList(text)"
    assert extension_page.evaluate(parse, "Example.com\nhttps://news.example.org/path  example.com, ,") == ["example.com", "news.example.org"]
    normalize = "(text) => genspot.settings.normalizeBackendUrl(text)"
    assert extension_page.evaluate(normalize, " https://Detect.example.com:8443/api/ ") == "https://detect.example.com:8443/api"
    error = extension_page.evaluate(f"(text) => {{ try {{ ({normalize})(text); }} catch (e) {{ return e.message; }} }}", "ftp://x")
    assert error == "the backend URL must start with http:// or https://, got ftp:"
    sites = extension_page.evaluate(
        """() => {
          const s = genspot.settings, base = { ...s.DEFAULT_SETTINGS, disabledSites: ["example.com"] };
          const on = s.withSiteEnabled(base, "www.example.com", true);
          return [s.isSiteEnabled(base, "www.example.com"), s.isSiteEnabled(base, "notexample.com"), on.disabledSites,
                  s.withSiteEnabled(on, "a.org", false).disabledSites];
        }"""
    )
    assert sites == [False, True, [], ["a.org"]]


def test_batcher_sends_16_items_or_waits_50_ms(extension_page):
    batches = extension_page.evaluate(
        """async () => {
          const sizes = [];
          const b = new batcher.MicroBatcher(async (items) => { sizes.push(items.length); return items.map((i) => i * 10); },
                                             { maxItems: 16, maxWaitMs: 50 });
          const started = performance.now();
          const results = await Promise.all(Array.from({ length: 20 }, (_, i) => b.submit(i)));
          const lone = await b.submit(7);
          return { sizes, results, lone, ms: performance.now() - started };
        }"""
    )
    assert batches["sizes"] == [16, 4, 1]
    assert batches["results"] == [i * 10 for i in range(20)] and batches["lone"] == 70
    assert batches["ms"] >= 100, "the partial batches each waited for more items"


def test_batcher_sends_the_most_urgent_first_one_priority_a_request(extension_page):
    """6 images near the viewport, then 10 in it: the 16th item sends the 10; the rest, with two
    more, leave on the next turn, the more urgent alone."""
    sent = extension_page.evaluate(
        """async () => {
          const sent = [];
          const b = new batcher.MicroBatcher(async (items) => { sent.push(items.map((item) => item.name)); return items; },
                                             { maxItems: 16, maxWaitMs: 50, priorityOf: (item) => item.priority });
          const near = (n) => ({ name: `near ${n}`, priority: 4 }), seen = (n) => ({ name: `seen ${n}`, priority: 1 });
          const items = [...[0, 1, 2, 3, 4, 5].map(near), ...[0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map(seen), seen(10), near(6)];
          await Promise.all(items.map((item) => b.submit(item)));
          return sent;
        }"""
    )
    assert sent == [[f"seen {i}" for i in range(10)], ["seen 10"], [f"near {i}" for i in range(7)]]


def test_unsure_source_head_says_unknown_generator_and_manifest_names_win(extension_page):
    unsure = ok("ai", 0.9)
    unsure["source"] = {"label": "dalle_mini", "probability": 0.3}
    assert describe(extension_page, unsure)["text"] == "AI 90% · unknown generator"
    named = ok("ai", 0.9)
    named["source"] = {"label": "dalle_mini", "probability": 0.7, "name": "DALL·E Mini (2022)"}
    named["sources"] = [named["source"]]
    shown = describe(extension_page, named)
    assert shown["text"] == "AI 90% · DALL·E Mini (2022)" and dict(shown["rows"])["Likely sources"] == "DALL·E Mini (2022) 70%"


def test_uncertain_details_explain_the_backend_band_and_the_users_limit(extension_page):
    band = ok("uncertain", 0.55)
    band["thresholds"] = {"threshold": 0.5, "uncertain_band": 0.15}
    why = dict(describe(extension_page, band)["rows"])["Why “?”"]
    assert why == 'AI probability 55% is between the backend\'s limits: below 35% is "real", from 65% "AI"'
    stricter = ok("ai", 0.7)
    stricter["thresholds"] = band["thresholds"]
    rows = dict(describe(extension_page, stricter, threshold=0.8)["rows"])
    assert "at or above the backend's AI limit (65%) but below your minimum (80%" in rows["Why “?”"]
    assert describe(extension_page, stricter)["kind"] == "ai", "the default follows the backend's own AI limit"


def test_conflicting_evidence_is_shown_after_the_deciding_one(extension_page):
    c2pa = {"validity": "untrusted", "signer": "Adobe C2PA", "issuer": "Adobe Inc.", "codes": ["signingCredential.untrusted"]}
    signals = [{"kind": "c2pa", "detail": "valid C2PA history (c2pa.opened) declares no AI source", "verdict": "not-ai", "generator": "Adobe Photoshop"}]
    edit = ok("real", 0.4, label="real", provenance={"verdict": "not-ai", "generator": "Adobe Photoshop", "signals": signals, "c2pa": c2pa})
    edit["decided_by"] = "provenance"
    shown = describe(extension_page, edit, showReal=True)
    assert shown["text"] == "Real (C2PA)"
    assert shown["rows"][1][0] == "Decided by" and shown["rows"][1][1].startswith("the file's metadata: no AI declared (Adobe Photoshop)")
    assert dict(shown["rows"])["C2PA"] == "intact, but the signer is on no trust list · signed by Adobe C2PA, Adobe Inc."
    clash = dict(edit, verdict="uncertain", ai_probability=0.89, conflict="the model alone says ai (AI probability 89%), but ...")
    clashed = describe(extension_page, clash)
    assert clashed["text"] == "? · evidence disagrees"
    assert [row[0] for row in clashed["rows"][:4]] == ["Verdict", "Decided by", "Disagrees", "Why “?”"]
    invalid = dict(c2pa, validity="invalid", codes=["signingCredential.untrusted", "signingCredential.invalid"])
    assert dict(describe(extension_page, dict(clash, provenance=dict(edit["provenance"], c2pa=invalid)))["rows"])["C2PA"].startswith(
        "INVALID (signingCredential.invalid)"
    )


@pytest.mark.parametrize(
    ("error", "fallback"),
    [
        ({"code": "fetch_failed", "message": "HTTP 403"}, True),
        ({"code": "blocked_address", "message": "private address"}, True),
        ({"code": "unsupported_url", "message": "port 8080 is not allowed (allowed: 80, 443)"}, True),
        ({"code": "unsupported_url", "message": "only http and https URLs are fetched, not 'ftp'"}, False),
        ({"code": "not_an_image", "message": "HTML"}, False),
    ],
)
def test_bytes_fallback_triggers(extension_page, error, fallback):
    assert extension_page.evaluate("(error) => detector.needsBytes(error)", error) is fallback
