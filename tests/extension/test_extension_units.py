"""The extension's pure parts, run inside an extension page of the real browser (no backend):
how results become badges, how settings are parsed, and how the service worker batches."""

from __future__ import annotations

import pytest
from extension_browser import launch_extension

pytestmark = pytest.mark.browser

LOAD_MODULES = """async () => {
  await import("/shared/messages.js");
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


def ok(verdict: str, p: float, label: str = "midjourney_v3_2022", provenance=None, generator: dict | None = None) -> dict:
    return {
        "status": "ok", "verdict": verdict, "ai_probability": p, "source": {"label": label, "probability": 0.7},
        "sources": [{"label": label, "probability": 0.7}, {"label": "dalle2", "probability": 0.2}], "generator": generator,
        "provenance": provenance, "model_version": "tiny-1", "via": "bytes", "sha256": "ab" * 32,
    }


NAMED = {"label": "midjourney_v3_2022", "probability": 0.86, "named_by": "model"}


@pytest.mark.parametrize(
    ("label", "name"),
    [("midjourney_v3_2022", "Midjourney v3"), ("dalle2", "DALL·E 2"), ("dalle_mini", "DALL·E Mini"), ("stylegan", "StyleGAN"),
     ("latent_diffusion_ldm_txt2img", "Latent Diffusion LDM Txt2img"), ("glid3_xl", "Glid3 XL"), ("crn", "CRN"), ("blocky_gan", "Blocky GAN"), ("Adobe Firefly", "Adobe Firefly")],
)
def test_generator_display_names(extension_page, label, name):
    assert extension_page.evaluate("(label) => genspot.verdicts.displayName(label)", label) == name


def test_badge_texts_and_labels(extension_page):
    ai = describe(extension_page, ok("ai", 0.936, generator=NAMED))
    assert ai["kind"] == "ai" and ai["text"] == "Very likely AI · Midjourney v3", "words, no number, on the badge"
    assert ai["ariaLabel"] == "genspot: very likely AI-generated, Midjourney v3. Press Enter for details."
    rows, technical = dict(ai["rows"]), dict(ai["technical"])
    assert ai["rows"][:2] == [["Verdict", "Very likely AI-generated"], ["Why", "genspot's detector puts the chance it is AI-generated at 94%"]]
    assert rows["Generator"] == "Midjourney v3 (genspot's detector, 86% sure)" and rows["Label"] == "none in the file"
    assert "Model" not in rows and technical["Model"] == "tiny-1", "the model id only behind the technical details line"
    assert technical["Detector's guesses"] == "Midjourney v3 70%, DALL·E 2 20%" and technical["Sent"] == "your browser sent the image to genspot's service"
    assert ai["choices"] == [["real", "It is real"]], "one click reports it real"

    assert [describe(extension_page, ok("ai", p))["text"] for p in (0.65, 0.89, 0.9)] == ["Likely AI", "Likely AI", "Very likely AI"]
    uncertain = describe(extension_page, ok("uncertain", 0.55))
    assert uncertain["text"] == "Uncertain" and uncertain["choices"] == [["ai", "It is AI-made"], ["real", "It is real"]], "never a bare '?'"
    real = describe(extension_page, ok("real", 0.3, label="real"))
    assert real is not None and real["text"] == "Likely real", "'Likely real' badges are on by default"
    assert describe(extension_page, ok("real", 0.1, label="real"))["text"] == "Very likely real"
    assert describe(extension_page, ok("real", 0.1, label="real"), showReal=False) is None
    unchecked = describe(extension_page, {"status": "error", "error": {"code": "fetch_failed", "message": "HTTP 403"}})
    assert unchecked["kind"] == "error" and unchecked["text"] == "Not checked", "could not check: its own quiet badge, never 'real'"
    assert dict(unchecked["rows"]) == {"Verdict": "Not checked: it failed", "Why": "HTTP 403", "Try": "Rescan in the genspot popup, or right-click → Check this image with genspot"}
    skipped = describe(extension_page, {"status": "error", "error": {"code": "unsupported_image", "message": "an SVG drawing"}})
    assert dict(skipped["rows"])["Verdict"] == "Not checked: skipped"
    down = describe(extension_page, {"status": "error", "error": {"code": "backend_unreachable", "message": "not running"}})
    assert "tries again by itself" in dict(down["rows"])["Next"]
    checking = extension_page.evaluate("() => genspot.verdicts.CHECKING")
    assert (checking["kind"], checking["text"]) == ("checking", "Checking…")


def test_real_verdicts_name_no_generator_and_list_no_guesses(extension_page):
    """However sure the source head, an image judged real shows no AI generator anywhere."""
    real = describe(extension_page, ok("real", 0.2, label="real", generator=NAMED))
    shown = " ".join(value for row in real["rows"] + real["technical"] for value in row)
    assert "Midjourney" not in shown and "DALL·E" not in shown and "Generator" not in dict(real["rows"]), shown


def test_only_the_backends_generator_is_named_in_one_phrasing(extension_page):
    unknown = describe(extension_page, ok("ai", 0.93))  # the backend named none: its source head was not sure enough
    assert unknown["text"] == "Very likely AI" and dict(unknown["rows"])["Generator"] == "generator unknown"
    assert unknown["ariaLabel"] == "genspot: very likely AI-generated, generator unknown. Press Enter for details."
    named = ok("ai", 0.9, generator={"label": "dalle_mini", "probability": 0.91, "name": "DALL·E Mini (2022)", "named_by": "model"})
    assert describe(extension_page, named)["text"] == "Very likely AI · DALL·E Mini (2022)", "the manifest's display name wins"


def statement(**fields) -> dict:
    return {"source_type": None, "action": None, "description": None, "software_agent": None, "claim_generator": None,
            "earlier_step": False, "history": [], "credit": None, **fields}


FIREFLY = {  # what the backend reads from ../shared/data/provenance/c2pa/ai_firefly_text2image.jpg
    "verdict": "ai", "generator": "Adobe Firefly",
    "signals": [
        {"kind": "c2pa", "detail": "manifest store Valid; signer not checked against a trust list", "verdict": None, "generator": None, "statement": None},
        {"kind": "c2pa", "detail": "c2pa.created with digitalSourceType trainedAlgorithmicMedia (active manifest, claim generator Adobe Firefly)",
         "verdict": "ai", "generator": "Adobe Firefly",
         "statement": statement(source_type="trainedAlgorithmicMedia", action="c2pa.created", software_agent="Adobe Firefly", claim_generator="Adobe Firefly")},
    ],
    "c2pa": {"validity": "untrusted", "signer": "Adobe Firefly C2PA Stage", "issuer": "Adobe Inc.", "codes": ["signingCredential.untrusted"],
             "signer_organization": "Adobe Inc.", "certificate_issuer": "Adobe Systems Incorporated", "validation_passed": True, "trust_list_checked": False},
}
INTACT_UNCHECKED = (
    "The signature checks out: the file has not changed since it was signed. "
    "No trust list was checked, so who signed it is as the certificate states, unconfirmed."
)


def test_a_c2pa_label_says_what_the_manifest_says_who_signed_it_and_that_no_trust_list_was_checked(extension_page):
    proven = dict(ok("ai", 0.2, generator={"label": "Adobe Firefly", "probability": 1.0, "named_by": "provenance"}, provenance=FIREFLY), decided_by="provenance")
    shown = describe(extension_page, proven, threshold=0.9)
    assert shown["kind"] == "ai" and shown["text"] == "Labelled AI · Adobe Firefly", "the label outranks the threshold and the model"
    rows = dict(shown["rows"])
    assert rows["Why"] == "the file's own label (below) outranks genspot's detector"
    assert rows["Generator"] == "Adobe Firefly (named in the file's label)"
    assert rows["Label"] == "Content Credentials (C2PA) in the file: made with generative AI by Adobe Firefly"
    assert rows["Signed"] == f"By Adobe Firefly C2PA Stage (Adobe Inc.), with a certificate issued by Adobe Systems Incorporated. {INTACT_UNCHECKED}"
    assert "trust list" not in shown["text"] and "untrusted" not in " ".join(rows.values())
    unnamed = dict(proven, generator=None, provenance=dict(FIREFLY, generator=None))
    shown = describe(extension_page, unnamed)
    assert shown["text"] == "Labelled AI", "the model's guess never stands in for the label"
    assert dict(shown["rows"])["Generator"] == "not named in the file's label"
    guessed = describe(extension_page, dict(unnamed, generator=NAMED))  # an answer naming the detector's guess beside the label
    assert guessed["text"] == "Labelled AI" and guessed["ariaLabel"].endswith(", generator unknown. Press Enter for details.")
    assert dict(guessed["rows"])["Generator"] == "not named in the file's label; genspot's detector guesses Midjourney v3 (86% sure)"


def test_the_panel_quotes_the_manifests_own_words_and_reads_no_detail_text(extension_page):
    """A manifest that names no tool but describes itself ("Created by Google Generative AI"), an
    earlier step's, a tampered one's; every wording comes from the structured fields: the
    `detail` strings say something else here, and are not read."""
    google = statement(source_type="trainedAlgorithmicMedia", action="c2pa.created", description="Created by Google Generative AI",
                       claim_generator="Example Generator 1.0")
    signals = [{"kind": "c2pa", "detail": "digitalSourceType digitalCapture (claim generator Decoy)", "verdict": "ai", "generator": None, "statement": google}]
    c2pa = dict(FIREFLY["c2pa"], signer="Example Image Service", issuer="Example Generative AI Inc.",
                signer_organization="Example Generative AI Inc.", certificate_issuer="Example Certificate Authority")
    proven = dict(ok("ai", 0.2, provenance={"verdict": "ai", "generator": None, "signals": signals, "c2pa": c2pa}), decided_by="provenance")
    rows = dict(describe(extension_page, proven)["rows"])
    assert rows["Label"] == (
        "Content Credentials (C2PA) in the file: made with generative AI; in its own words: “Created by Google Generative AI”; recorded by Example Generator 1.0"
    )
    assert rows["Signed"] == (
        f"By Example Image Service (Example Generative AI Inc.), with a certificate issued by Example Certificate Authority. {INTACT_UNCHECKED}"
    )

    dalle = statement(source_type="trainedAlgorithmicMedia", action="c2pa.created", software_agent="DALL·E", claim_generator="OpenAI-API", earlier_step=True)
    earlier = dict(proven, provenance=dict(proven["provenance"], signals=[dict(signals[0], statement=dalle)]))
    assert dict(describe(extension_page, earlier)["rows"])["Label"] == (
        "Content Credentials (C2PA) in the file: made with generative AI by DALL·E; recorded by OpenAI-API (in an earlier version of the image)"
    )

    bing = statement(action="c2pa.created", description="AI Generated Image", software_agent="Image Creator from Designer",
                     claim_generator="Microsoft Responsible AI Image Provenance 1.0")
    invalid = dict(c2pa, validity="invalid", validation_passed=False, codes=["signingCredential.untrusted", "signingCredential.invalid"])
    broken = {"verdict": "unknown", "generator": None, "c2pa": invalid,
              "signals": [{"kind": "c2pa", "detail": "tampered: decoy", "verdict": None, "generator": None, "statement": bing}]}
    rows = dict(describe(extension_page, ok("real", 0.2, label="real", provenance=broken))["rows"])
    assert rows["Label"] == (
        "Content Credentials (C2PA) that prove nothing (see below); they say: created by Image Creator from Designer; "
        "in its own words: “AI Generated Image”; recorded by Microsoft Responsible AI Image Provenance 1.0"
    )
    assert rows["Signed"].startswith("By Example Image Service (Example Generative AI Inc.), with a certificate issued by Example Certificate Authority. "
                                     "The signature does not check out (signingCredential.invalid)")
    shown = " ".join(rows.values())
    assert "Decoy" not in shown and "decoy" not in shown and "untrusted" not in shown


def test_trust_list_wording_follows_the_flags_and_older_answers_their_validity(extension_page):
    def signed(c2pa: dict) -> str:
        provenance = {"verdict": "unknown", "generator": None, "signals": [], "c2pa": c2pa}
        return dict(describe(extension_page, ok("real", 0.2, label="real", provenance=provenance))["rows"])["Signed"]

    older = {"validity": "untrusted", "signer": "Adobe C2PA", "issuer": "Adobe Inc.", "codes": ["signingCredential.untrusted"]}
    assert signed(older) == f"By Adobe C2PA (Adobe Inc.). {INTACT_UNCHECKED}"
    listed = dict(older, validity="valid", codes=[], validation_passed=True, trust_list_checked=True)
    assert signed(listed).endswith("The signer is on a trust list genspot's service checked.")
    unlisted = dict(older, validation_passed=True, trust_list_checked=True)
    assert signed(unlisted).endswith("The signer is not on the trust list genspot's service checked.")
    assert signed({"validity": "untrusted", "codes": []}).startswith("By an unnamed signer. The signature checks out")


def test_threshold_only_makes_ai_badges_stricter(extension_page):
    assert describe(extension_page, ok("ai", 0.8), threshold=0.9)["text"] == "Uncertain"
    assert describe(extension_page, ok("ai", 0.95), threshold=0.9)["kind"] == "ai"
    signals = [{"kind": "c2pa", "detail": "c2pa.created", "verdict": "ai", "generator": "DALL-E 3"}, {"kind": "exif", "detail": "x"}]
    proven = ok("ai", 0.3, label="DALL-E 3", provenance={"verdict": "ai", "generator": "DALL-E 3", "signals": signals},
                generator={"label": "DALL-E 3", "probability": 1.0, "named_by": "provenance"})
    shown = describe(extension_page, proven, threshold=0.9)
    assert shown["kind"] == "ai", "metadata that proves AI beats the threshold"
    assert shown["text"] == "Labelled AI · DALL-E 3"
    assert dict(shown["rows"])["Label"] == "Content Credentials (C2PA) in the file: made with DALL-E 3"


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


def test_uncertain_details_explain_the_backend_band_and_the_users_limit(extension_page):
    band = ok("uncertain", 0.55)
    band["thresholds"] = {"threshold": 0.5, "uncertain_band": 0.15}
    why = dict(describe(extension_page, band)["rows"])["Why"]
    assert why == "genspot's detector puts the chance it is AI-generated at 55%: between 35% and 65% it says neither AI nor real"
    stricter = ok("ai", 0.7)
    stricter["thresholds"] = band["thresholds"]
    rows = dict(describe(extension_page, stricter, threshold=0.8)["rows"])
    assert rows["Why"].endswith("at 70%; your options ask for at least 80% before saying AI")
    assert describe(extension_page, stricter)["kind"] == "ai", "the default follows the backend's own AI limit"


def test_conflicting_evidence_is_shown_after_the_deciding_one(extension_page):
    c2pa = {"validity": "untrusted", "signer": "Adobe C2PA", "issuer": "Adobe Inc.", "codes": ["signingCredential.untrusted"]}
    signals = [{"kind": "c2pa", "detail": "valid C2PA history (c2pa.opened, c2pa.resized) declares no AI source", "verdict": "not-ai",
                "generator": "Adobe Photoshop", "statement": statement(history=["c2pa.opened", "c2pa.resized"], claim_generator="Adobe Photoshop")}]
    edit = ok("real", 0.4, label="real", provenance={"verdict": "not-ai", "generator": "Adobe Photoshop", "signals": signals, "c2pa": c2pa})
    edit["decided_by"] = "provenance"
    shown = describe(extension_page, edit)
    assert shown["text"] == "Labelled real"
    assert dict(shown["rows"])["Label"] == "Content Credentials (C2PA) in the file: its edit history (opened, resized) declares no AI, recorded by Adobe Photoshop"
    clash = dict(edit, verdict="uncertain", model_verdict="ai", ai_probability=0.89, conflict="the model alone says ai (AI probability 89%), but ...")
    clashed = describe(extension_page, clash)
    assert clashed["text"] == "Uncertain · evidence disagrees"
    assert [row[0] for row in clashed["rows"][:3]] == ["Verdict", "Why", "But"]
    assert dict(clashed["rows"])["But"] == "genspot's detector puts the chance it is AI-generated at 89%: alone, it would say AI-generated"
    invalid = dict(c2pa, validity="invalid", codes=["signingCredential.untrusted", "signingCredential.invalid"])
    assert dict(describe(extension_page, dict(clash, provenance=dict(edit["provenance"], c2pa=invalid)))["rows"])["Signed"].startswith(
        "By Adobe C2PA (Adobe Inc.). The signature does not check out (signingCredential.invalid)"
    )
    camera = {"verdict": "not-ai", "generator": "Canon EOS", "signals": [{"kind": "exif", "detail": "camera EXIF Make/Model: Canon EOS", "verdict": "not-ai", "generator": "Canon EOS"}]}
    weak = dict(ok("uncertain", 0.9, provenance=camera), decided_by="model", model_verdict="ai", conflict="the model alone says ai, but ...")
    assert dict(describe(extension_page, weak)["rows"])["But"] == (
        "the file's camera and software details (EXIF): taken with a Canon EOS (such details are easy to copy onto any file)"
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
