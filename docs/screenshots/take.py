"""Retake the extension screenshots in docs/img/ with the default model on a small article page.

    .venv/bin/python docs/screenshots/take.py [--bundle bundles/default] [--out docs/img]

What it does, all on 127.0.0.1:

1. starts `genspot serve --bundle bundles/default` on a free port (in-process cache, no
   Redis), allowed to fetch from the page's server (loopback is refused by default);
2. serves `article.html` (below): a travel-blog post with four pictures, every one of them a
   file anybody may commit:
   - `summer-palace.jpg`: scikit-learn's sample photo china.jpg (CC BY 2.0, danielbuechele
     on Flickr), as a plain JPEG;
   - `flower.jpg`: scikit-learn's sample photo flower.jpg (CC BY 2.0, vultilion on Flickr);
   - `grace-hopper.jpg`: matplotlib's sample photo grace_hopper.jpg (a US Navy portrait);
   - `roof-illustration.png`: a crop of china.jpg (the pavilion's roof) saved as a PNG with
     a Stable Diffusion `parameters` text chunk, as SD web UIs write it, so the backend's
     provenance reads it as AI by its metadata whatever the model says;
3. loads extension/ unpacked in Debian's Chromium (Playwright, tests/extension's helpers),
   saves the backend address and "show likely real" in the options page, opens the page and
   waits for every badge;
4. writes, each scaled and palette-quantised to stay under 300 KB:
   - `badges.png`: the page with its badges;
   - `badge-details.png`: one badge's details panel, opened by a click;
   - `popup.png`: the popup's per-image list for that tab (opened as a page: a toolbar
     click cannot be scripted).

The badges are the bundle's real answers: nothing is edited or pinned. Each image's badge
and details are printed at the end. Needs Debian's chromium and the bundle (`make bundle`);
nothing else is downloaded.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler
from pathlib import Path

import httpx
from PIL import Image, PngImagePlugin

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests" / "extension")]

from extension_browser import CHROMIUM, ExtensionBrowser, launch_extension  # noqa: E402
from playwright.sync_api import expect  # noqa: E402

from tests.fixtures.services import BackloggedHTTPServer, free_port  # noqa: E402

MAX_BYTES = 300_000
VIEWPORT = {"width": 1100, "height": 860}
DOC_WIDTH = 860  # px of the page screenshot in the docs
SD_PARAMETERS = (
    "ornate glazed roof of a chinese pavilion, blue sky, photorealistic, highly detailed\n"
    "Negative prompt: blurry, lowres\n"
    "Steps: 28, Sampler: DPM++ 2M Karras, CFG scale: 6.5, Seed: 2718281828, Size: 512x512, "
    "Model hash: 31e35c80fc, Model: sd_xl_base_1.0, Version: v1.9.4"
)
IMAGE_COUNT = 4  # pictures on the page, each badged
DETAILS_FOR = "roof-illustration.png"  # the image whose badge details are shown open: metadata decides, the model disagrees

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Three days in Beijing - Slow Travel Notes</title>
<style>
  body { margin: 0; font: 16px/1.55 Georgia, serif; color: #222; background: #faf8f4; }
  header { background: #2c3e50; color: #fff; padding: 14px 32px; display: flex; align-items: baseline; gap: 28px; }
  header b { font: 700 20px sans-serif; } header nav a { color: #cfd8e3; margin-right: 18px; font: 14px sans-serif; text-decoration: none; }
  main { max-width: 1000px; margin: 0 auto; padding: 18px 32px; }
  h1 { font-size: 30px; margin: 6px 0 4px; } .byline { color: #777; font: 13px sans-serif; margin: 0 0 14px; }
  .hero { display: block; width: 100%; height: 300px; object-fit: cover; object-position: center 65%; border-radius: 4px; }
  .grid { display: grid; grid-template-columns: repeat(3, 1fr); gap: 22px; margin-top: 18px; }
  figure { margin: 0; } figure img { display: block; width: 100%; height: 220px; object-fit: cover; border-radius: 4px; }
  figcaption, .hero-caption { color: #666; font: 13px/1.4 sans-serif; margin-top: 6px; }
  p { margin: 14px 0; }
</style></head>
<body>
  <header><b>Slow Travel Notes</b><nav><a href="#">Journal</a><a href="#">Maps</a><a href="#">About</a></nav></header>
  <main>
    <h1>Three days in Beijing</h1>
    <p class="byline">By M. Lin &middot; 12 May &middot; 6 min read</p>
    <img class="hero" src="/img/summer-palace.jpg" alt="A pavilion by the lake at the Summer Palace">
    <div class="hero-caption">The Summer Palace on our first morning.</div>
    <p>We arrived on a clear spring day and walked straight to the lake. What follows is a short
    diary: where we went, what we ate, and a few pictures from the trip and from our archive.</p>
    <div class="grid">
      <figure><img src="/img/flower.jpg" alt="A flower in the palace garden">
        <figcaption>In the palace garden.</figcaption></figure>
      <figure><img src="/img/grace-hopper.jpg" alt="Portrait of Grace Hopper in uniform">
        <figcaption>From our archive: Grace Hopper, who we read about on the flight.</figcaption></figure>
      <figure><img src="/img/roof-illustration.png" alt="An illustration of a glazed pavilion roof">
        <figcaption>Illustration for this post, made with Stable Diffusion.</figcaption></figure>
    </div>
    <p>Day two took us to the hutongs and a long lunch of dumplings; day three was for the Wall.</p>
  </main>
</body></html>"""


def sample_photos() -> dict[str, Image.Image]:
    from matplotlib import cbook
    from sklearn.datasets import load_sample_image

    return {
        "china": Image.fromarray(load_sample_image("china.jpg")),
        "flower": Image.fromarray(load_sample_image("flower.jpg")),
        "grace_hopper": Image.open(cbook.get_sample_data("grace_hopper.jpg")).convert("RGB"),
    }


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def site_files() -> dict[str, bytes]:
    """URL path under /img/ -> file bytes."""
    photos = sample_photos()
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", SD_PARAMETERS)
    roof = photos["china"].crop((80, 18, 340, 278)).resize((512, 512), Image.Resampling.LANCZOS)
    return {
        "summer-palace.jpg": encode(photos["china"], "JPEG", quality=92),
        "flower.jpg": encode(photos["flower"], "JPEG", quality=92),
        "grace-hopper.jpg": encode(photos["grace_hopper"], "JPEG", quality=92),
        "roof-illustration.png": encode(roof, "PNG", pnginfo=info),
    }


def serve_site(root: Path) -> tuple[BackloggedHTTPServer, int]:
    (root / "img").mkdir(parents=True)
    (root / "article.html").write_text(PAGE, encoding="utf-8")
    for name, data in site_files().items():
        (root / "img" / name).write_bytes(data)

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    port = free_port()
    server = BackloggedHTTPServer(("127.0.0.1", port), partial(Quiet, directory=str(root)))
    return server.start("screenshot-site"), port


def start_backend(bundle: Path, site_port: int, workdir: Path) -> tuple[subprocess.Popen, str, Path]:
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("GENSPOT_")}
    env |= {"GENSPOT_ALLOW_LOOPBACK": "true", "GENSPOT_ALLOWED_PORTS": f"80,443,{site_port}", "GENSPOT_FEEDBACK_PATH": str(workdir / "feedback.jsonl")}
    log = workdir / "serve.log"
    command = [sys.executable, "-m", "genspot", "serve", "--bundle", str(bundle), "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as log_file:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"genspot serve exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return process, url, log
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.terminate()
    sys.exit(f"genspot serve not ready after 300 s:\n{log.read_text()[-3000:]}")


def small_png(png: bytes, width: int | None = None) -> bytes:
    """Scaled to `width` (if given) and palette-quantised until under MAX_BYTES."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    if width and image.width > width:
        image = image.resize((width, round(image.height * width / image.width)), Image.Resampling.LANCZOS)
    for colours in (256, 192, 128, 64):
        data = encode(image.quantize(colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG), "PNG", optimize=True)
        if len(data) < MAX_BYTES:
            return data
    raise SystemExit(f"screenshot still {len(data)} bytes at 64 colours")


def take(browser: ExtensionBrowser, page_url: str, out: Path) -> list[dict]:
    page = browser.context.new_page()
    page.set_viewport_size(VIEWPORT)
    page.goto(page_url)
    # Every image gets a badge ("Checking…" first); the shot waits for all the answers.
    page.wait_for_function(
        f"[...document.querySelectorAll('genspot-badge')].filter((h) => h.dataset.verdict !== 'checking').length >= {IMAGE_COUNT}",
        timeout=180_000,
    )
    page.mouse.move(VIEWPORT["width"] - 5, VIEWPORT["height"] - 5)
    page.evaluate("document.activeElement && document.activeElement.blur()")
    time.sleep(0.5)
    (out / "badges.png").write_bytes(small_png(page.screenshot(), DOC_WIDTH))

    badges = page.evaluate(
        """() => [...document.querySelectorAll("genspot-badge")].map((host) => {
          const box = host.getBoundingClientRect();
          const img = [...document.images].find((i) => { const r = i.getBoundingClientRect(); return Math.abs(r.left + 4 - box.left) <= 1 && Math.abs(r.top + 4 - box.top) <= 1; });
          return { image: img ? img.src.split("/").pop() : null, verdict: host.dataset.verdict,
                   text: host.shadowRoot.querySelector("button").textContent,
                   details: [...host.shadowRoot.querySelectorAll(".panel dt")].map((dt) => `${dt.textContent}: ${dt.nextElementSibling.textContent}`) };
        })"""
    )

    # One badge's details, opened as a click opens them; the shot is the panel with its picture around it.
    page.set_viewport_size({"width": VIEWPORT["width"], "height": 1400})  # room below the badge: the panel opens downwards
    time.sleep(0.5)
    index = next(i for i, badge in enumerate(badges) if badge["image"] == DETAILS_FOR)
    host = page.locator("genspot-badge").nth(index)
    host.locator("button.badge").click()
    panel = host.locator(".panel")
    expect(panel).to_be_visible()
    box, image_box = panel.bounding_box(), page.locator(f"img[src$='{DETAILS_FOR}']").bounding_box()
    left, top = min(box["x"], image_box["x"]) - 12, min(box["y"], image_box["y"]) - 12
    right = max(box["x"] + box["width"], image_box["x"] + image_box["width"]) + 12
    bottom = max(box["y"] + box["height"], image_box["y"] + image_box["height"]) + 12
    clip = {"x": max(0, left), "y": max(0, top), "width": right - max(0, left), "height": bottom - max(0, top)}
    (out / "badge-details.png").write_bytes(small_png(page.screenshot(clip=clip)))

    popup = browser.open_popup(page_url)
    expect(popup.locator("#images li")).to_have_count(len(badges))
    popup.set_viewport_size({"width": 384, "height": 600})
    popup.evaluate("document.querySelector('#images').scrollTop = 1e6")  # the list scrolls: its last row in full
    (out / "popup.png").write_bytes(small_png(popup.locator("body").screenshot()))
    return badges


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, default=REPO_ROOT / "bundles" / "default")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "img")
    args = parser.parse_args()
    if not CHROMIUM.exists():
        sys.exit(f"{CHROMIUM} is missing (apt-get install chromium)")
    if not (args.bundle / "manifest.json").is_file():
        sys.exit(f"no bundle in {args.bundle} (make bundle)")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="genspot-screenshots-") as tmp:
        workdir = Path(tmp)
        site, site_port = serve_site(workdir / "site")
        backend, backend_url, log = start_backend(args.bundle.resolve(), site_port, workdir)
        try:
            with launch_extension(workdir / "profile", viewport=VIEWPORT) as browser:
                browser.configure(backend_url, show_real=True)
                badges = take(browser, f"http://127.0.0.1:{site_port}/article.html", args.out)
        finally:
            backend.terminate()
            backend.wait(30)
            site.stop()
    for badge in badges:
        print(f"{badge['image']}: {badge['verdict']} | {badge['text']} | {' / '.join(badge['details'])}")
    for name in ("badges.png", "badge-details.png", "popup.png"):
        print(f"{args.out / name}: {(args.out / name).stat().st_size} bytes")


if __name__ == "__main__":
    main()
