// Finding the images worth checking on a page: which <img> elements, in what order, with
// which caption, and how to send each one (by URL, or as bytes for data:/blob: images).
globalThis.genspot = globalThis.genspot || {};

(() => {
  const { PRIORITY } = globalThis.genspot;
  const MIN_SIZE = 64; // px, natural and rendered: smaller images are icons, avatars, spacers
  const SENDABLE_DATA_URL = /^data:image\/(png|jpe?g|webp|gif);base64,/i;
  const MAX_BASE64_CHARS = 14_000_000; // about the backend's 10 MB cap
  const LOOKAHEAD = "50% 0px"; // also check images half a screen above and below the viewport

  /** Alt text, else title / aria-label / the enclosing figure's caption; whitespace collapsed. */
  function captionOf(img) {
    const text =
      img.getAttribute("alt") ||
      img.getAttribute("title") ||
      img.getAttribute("aria-label") ||
      img.closest("figure")?.querySelector("figcaption")?.textContent ||
      "";
    return text.replace(/\s+/g, " ").trim();
  }

  /** The URL the browser actually shows (srcset and <picture> resolved). */
  function imageUrl(img) {
    return img.currentSrc || img.src || "";
  }

  /** Whether any of the element shows in the viewport now (not only in the lookahead). */
  function inViewport(element) {
    const box = element.getBoundingClientRect();
    return box.bottom > 0 && box.right > 0 && box.top < innerHeight && box.left < innerWidth;
  }

  /** The images in the viewport first (in page order), then the others: they are asked about first. */
  function viewportFirst(elements) {
    const shown = [];
    const others = [];
    for (const element of elements) (inViewport(element) ? shown : others).push(element);
    return [...shown, ...others];
  }

  function isBigEnough(img) {
    const box = img.getBoundingClientRect();
    return img.naturalWidth >= MIN_SIZE && img.naturalHeight >= MIN_SIZE && box.width >= MIN_SIZE && box.height >= MIN_SIZE;
  }

  function blobToBase64(blob) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(String(reader.result).split(",", 2)[1]);
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(blob);
    });
  }

  /** The request item for an image, or null when it cannot be sent (SVG, other data: URIs). */
  async function itemFor(url, altText) {
    if (/^https?:/i.test(url)) {
      return new URL(url).pathname.toLowerCase().endsWith(".svg") ? null : { url, alt_text: altText };
    }
    if (SENDABLE_DATA_URL.test(url)) {
      const imageB64 = url.slice(url.indexOf(",") + 1);
      return imageB64.length <= MAX_BASE64_CHARS ? { image_b64: imageB64, alt_text: altText } : null;
    }
    if (url.startsWith("blob:")) {
      const blob = await (await fetch(url)).blob(); // same document, so the page's blob is readable
      return blob.type.startsWith("image/svg") ? null : { image_b64: await blobToBase64(blob), alt_text: altText };
    }
    return null;
  }

  const THUMBNAIL_PX = 48;

  /**
   * A small JPEG data: URL of a shown <img> for the popup's lists, drawn from the picture the page
   * already loaded (no new download); the image's own address when the browser forbids reading its
   * pixels (a cross-origin image), or null.
   */
  function thumbnailOf(element, url) {
    if (element instanceof HTMLImageElement && element.naturalWidth > 0) {
      try {
        const scale = Math.min(1, THUMBNAIL_PX / Math.max(element.naturalWidth, element.naturalHeight));
        const canvas = document.createElement("canvas");
        canvas.width = Math.max(1, Math.round(element.naturalWidth * scale));
        canvas.height = Math.max(1, Math.round(element.naturalHeight * scale));
        canvas.getContext("2d").drawImage(element, 0, 0, canvas.width, canvas.height);
        return canvas.toDataURL("image/jpeg", 0.7);
      } catch {
        // a cross-origin picture taints the canvas
      }
    }
    return /^https?:/i.test(url ?? "") ? url.slice(0, 2048) : null;
  }

  const CSS_URL = /url\(\s*(["']?)(.*?)\1\s*\)/g;
  const ANCESTORS = 6; // how far up a right-clicked element's parents a background image is looked for

  /** The first http(s), data: or blob: image URL of an element's CSS background, or "". */
  function backgroundUrl(element) {
    const value = getComputedStyle(element).backgroundImage || "";
    for (const match of value.matchAll(CSS_URL)) {
      if (/^(https?:|data:image\/|blob:)/i.test(match[2])) return new URL(match[2], document.baseURI).href;
    }
    return "";
  }

  /**
   * What a right-click meant to check: the <img> showing `srcUrl` (the context menu's image),
   * else the nearest element at or above `element` with a CSS background image.
   * Returns {element, url, caption} or null.
   */
  function contextTarget(element, srcUrl) {
    if (srcUrl) {
      const images = [element, ...document.querySelectorAll("img")].filter((node) => node instanceof HTMLImageElement);
      const img = images.find((node) => imageUrl(node) === srcUrl || node.src === srcUrl);
      if (img) return { element: img, url: imageUrl(img), caption: captionOf(img) };
    }
    for (let node = element, depth = 0; node instanceof Element && depth < ANCESTORS; node = node.parentElement, depth += 1) {
      const url = node instanceof HTMLImageElement ? imageUrl(node) : backgroundUrl(node);
      if (url) {
        const caption = node instanceof HTMLImageElement ? captionOf(node) : (node.getAttribute("aria-label") || node.getAttribute("title") || "").replace(/\s+/g, " ").trim();
        return { element: node, url, caption };
      }
    }
    return null;
  }

  /**
   * Calls `onImage(img, url, priority)` once per image and URL, when the image is near the
   * viewport, loaded and at least 64x64: those in the viewport first (PRIORITY.VISIBLE), then
   * those near it (PRIORITY.NEARBY), lazy and script-added images as they appear, and again if
   * an image switches source (srcset, <picture>, a new src).
   */
  class ImageWatcher {
    constructor({ onImage, onChange }) {
      this.onImage = onImage;
      this.onChange = onChange;
      this.dispatched = new WeakMap(); // img -> the URL already handed to onImage
      this.nearViewport = new WeakSet();
      this.intersections = new IntersectionObserver((entries) => this.onIntersections(entries), { rootMargin: LOOKAHEAD });
      this.mutations = new MutationObserver((records) => this.onMutations(records));
      this.onLoad = (event) => {
        if (event.target instanceof HTMLImageElement) this.consider(event.target);
        this.onChange();
      };
    }

    start() {
      document.querySelectorAll("img").forEach((img) => this.intersections.observe(img));
      this.mutations.observe(document.documentElement, { childList: true, subtree: true });
      document.addEventListener("load", this.onLoad, true); // image loads do not bubble; capture sees them
    }

    stop() {
      this.intersections.disconnect();
      this.mutations.disconnect();
      document.removeEventListener("load", this.onLoad, true);
      this.dispatched = new WeakMap();
      this.nearViewport = new WeakSet();
    }

    /** Forget what was handed out and offer every image near the viewport again. */
    rescan() {
      this.dispatched = new WeakMap();
      viewportFirst([...document.querySelectorAll("img")]).forEach((img) => this.consider(img));
    }

    forget(img) {
      this.dispatched.delete(img);
    }

    currentUrl(img) {
      return this.dispatched.get(img);
    }

    onIntersections(entries) {
      for (const entry of entries) {
        if (entry.isIntersecting) this.nearViewport.add(entry.target);
        else this.nearViewport.delete(entry.target);
      }
      viewportFirst(entries.filter((entry) => entry.isIntersecting).map((entry) => entry.target)).forEach((img) => this.consider(img));
    }

    onMutations(records) {
      for (const record of records) {
        for (const node of record.addedNodes) {
          if (node instanceof HTMLImageElement) this.intersections.observe(node);
          else if (node instanceof Element) node.querySelectorAll("img").forEach((img) => this.intersections.observe(img));
        }
      }
      this.onChange();
    }

    consider(img) {
      if (!this.nearViewport.has(img) || !img.complete || img.naturalWidth === 0) return;
      const url = imageUrl(img);
      if (!url || this.dispatched.get(img) === url || !isBigEnough(img)) return;
      this.dispatched.set(img, url);
      this.onImage(img, url, inViewport(img) ? PRIORITY.VISIBLE : PRIORITY.NEARBY);
    }
  }

  globalThis.genspot.images = Object.freeze({ captionOf, itemFor, thumbnailOf, contextTarget, ImageWatcher });
})();
