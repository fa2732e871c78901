// Draws one badge per checked image. Each badge is an absolutely positioned element appended
// to <html>, outside the page's layout flow, with its content in a Shadow DOM: page CSS can
// neither restyle it nor be shifted by it.
globalThis.genspot = globalThis.genspot || {};

(() => {
  const INSET = 4; // px from the image's top-left corner
  const PANEL_MARGIN = 8; // px kept between a details panel and the viewport's edges
  const SAFETY_REFRESH_MS = 1000; // catches layout shifts that fire no event

  // White text on dark fills (contrast >= 7:1) inside a white ring and a dark halo: readable
  // on light, dark and busy images alike.
  const STYLE = `
    :host { all: initial; }
    .wrap { all: initial; display: block; position: relative; font: 600 12px/1.2 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
    .badge {
      all: unset; box-sizing: border-box; display: inline-block; padding: 3px 8px;
      border-radius: 999px; border: 1.5px solid rgba(255, 255, 255, 0.95); box-shadow: 0 0 0 1px rgba(0, 0, 0, 0.55), 0 1px 4px rgba(0, 0, 0, 0.4);
      color: #fff; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; cursor: pointer; pointer-events: auto;
    }
    .badge:focus-visible { outline: 3px solid #ffbf47; outline-offset: 2px; }
    .ai { background: #a4161a; }
    .real { background: #1b5e20; }
    .uncertain { background: #37474f; min-width: 24px; text-align: center; }
    /* "could not check": quiet, outlined, never mistaken for a verdict */
    .error { background: rgba(255, 255, 255, 0.92); color: #37474f; border: 1.5px dashed #546e7a; font-weight: 500; }
    .panel {
      display: none; position: absolute; top: calc(100% + 6px); left: 0; width: max-content; max-width: 320px; padding: 8px 10px;
      background: #fff; color: #1a1a1a; border: 1px solid #888; border-radius: 8px; box-shadow: 0 4px 16px rgba(0, 0, 0, 0.35);
      font-weight: 400; pointer-events: auto;
    }
    .wrap:hover .panel, .wrap.open .panel { display: block; }
    dl { margin: 0; display: grid; grid-template-columns: auto 1fr; gap: 3px 10px; }
    dt { font-weight: 600; color: #444; }
    dd { margin: 0; }
    .brand { margin-top: 6px; color: #666; font-size: 11px; }
  `;

  // `all: initial` first: the page's own rules for <genspot-badge> (opacity, transform, filter…)
  // lose against inline !important declarations.
  const HOST_STYLE = { all: "initial", position: "absolute", display: "block", top: "0px", left: "0px", width: "0px", height: "0px", margin: "0px", padding: "0px", border: "0px", overflow: "visible", "z-index": "2147483646" };
  const Z_ON_TOP = "2147483647"; // the badge whose details are showing covers its neighbours

  function setImportant(element, styles) {
    for (const [name, value] of Object.entries(styles)) element.style.setProperty(name, value, "important");
  }

  let panelIds = 0;
  let sheet = null; // one constructed stylesheet for all badges; not subject to the page's style-src CSP

  function element(tag, attributes = {}, children = []) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    node.append(...children);
    return node;
  }

  function createBadge() {
    const host = document.createElement("genspot-badge");
    setImportant(host, HOST_STYLE);
    const root = host.attachShadow({ mode: "open" });
    if (!sheet) {
      sheet = new CSSStyleSheet();
      sheet.replaceSync(STYLE);
    }
    root.adoptedStyleSheets = [sheet];
    const panelId = `genspot-details-${++panelIds}`;
    const button = element("button", { class: "badge", type: "button", "aria-expanded": "false", "aria-describedby": panelId });
    const list = element("dl");
    const panel = element("div", { class: "panel", id: panelId, role: "tooltip" }, [list, element("div", { class: "brand" }, ["genspot"])]);
    const wrap = element("div", { class: "wrap" }, [button, panel]);
    root.append(wrap);
    const raise = (onTop) => {
      setImportant(host, { "z-index": onTop ? Z_ON_TOP : HOST_STYLE["z-index"] });
      if (onTop) fitInViewport(panel);
    };
    const toggle = (open) => {
      wrap.classList.toggle("open", open);
      button.setAttribute("aria-expanded", String(open));
      raise(open);
    };
    wrap.addEventListener("mouseenter", () => raise(true));
    wrap.addEventListener("mouseleave", () => raise(wrap.classList.contains("open")));
    button.addEventListener("click", (event) => {
      event.preventDefault();
      event.stopPropagation();
      toggle(!wrap.classList.contains("open"));
    });
    button.addEventListener("keydown", (event) => {
      if (event.key === "Escape") toggle(false); // focus stays on the badge
    });
    button.addEventListener("blur", () => toggle(false));
    return { host, button, list, toggle };
  }

  /**
   * Shifts a showing panel left, or above its badge, so it stays inside the viewport: a panel
   * sticking out would widen or lengthen the page (new scrollbars) instead of floating over it.
   */
  function fitInViewport(panel) {
    panel.style.left = panel.style.top = panel.style.bottom = "";
    const box = panel.getBoundingClientRect();
    const { clientWidth, clientHeight } = document.documentElement;
    const overflowRight = box.right - (clientWidth - PANEL_MARGIN);
    if (overflowRight > 0) panel.style.left = `${-Math.min(overflowRight, Math.max(0, box.left - PANEL_MARGIN))}px`;
    if (box.bottom > clientHeight - PANEL_MARGIN && box.top - box.height - 2 * PANEL_MARGIN > 0) {
      panel.style.top = "auto";
      panel.style.bottom = "calc(100% + 6px)";
    }
  }

  function fill(badge, view) {
    badge.button.className = `badge ${view.kind}`;
    badge.button.textContent = view.text;
    badge.button.setAttribute("aria-label", view.ariaLabel);
    badge.host.dataset.verdict = view.kind;
    badge.list.replaceChildren(...view.rows.flatMap(([term, value]) => [element("dt", {}, [term]), element("dd", {}, [value])]));
  }

  function place(badge, img) {
    const box = img.getBoundingClientRect();
    const shown = img.isConnected && box.width > 0 && box.height > 0;
    badge.button.style.maxWidth = `${Math.max(28, Math.min(240, box.width - 2 * INSET))}px`; // stays on its image
    setImportant(badge.host, {
      display: shown ? "block" : "none",
      left: `${Math.round(box.left + window.scrollX + INSET)}px`,
      top: `${Math.round(box.top + window.scrollY + INSET)}px`,
    });
  }

  /** All badges of the page, kept on their images as the page scrolls, resizes and changes. */
  class BadgeLayer {
    constructor() {
      this.badges = new Map(); // img -> badge
      this.frame = 0;
      this.interval = 0;
      this.schedule = () => {
        if (!this.frame) this.frame = requestAnimationFrame(() => this.reposition());
      };
      this.resizes = new ResizeObserver(this.schedule);
    }

    show(img, view) {
      let badge = this.badges.get(img);
      if (!badge) {
        badge = createBadge();
        this.badges.set(img, badge);
        document.documentElement.append(badge.host);
        this.resizes.observe(img);
        this.listen();
      }
      fill(badge, view);
      place(badge, img);
    }

    remove(img) {
      const badge = this.badges.get(img);
      if (!badge) return;
      badge.host.remove();
      this.resizes.unobserve(img);
      this.badges.delete(img);
      if (this.badges.size === 0) this.unlisten();
    }

    clear() {
      [...this.badges.keys()].forEach((img) => this.remove(img));
    }

    /** Scrolls to an image and opens its badge's details (the popup's "show"); false without a badge. */
    reveal(img) {
      img.scrollIntoView({ block: "center", inline: "nearest" });
      const badge = this.badges.get(img);
      if (!badge) return false;
      place(badge, img);
      badge.button.focus({ preventScroll: true });
      badge.toggle(true);
      return true;
    }

    /** Moves every badge to its image; drops badges whose image left the page. */
    reposition() {
      this.frame = 0;
      for (const [img, badge] of this.badges) {
        if (img.isConnected) place(badge, img);
        else this.remove(img);
      }
    }

    listen() {
      if (this.interval) return;
      window.addEventListener("resize", this.schedule, { passive: true });
      document.addEventListener("scroll", this.schedule, { capture: true, passive: true }); // inner scrollers too
      this.resizes.observe(document.documentElement);
      this.interval = setInterval(this.schedule, SAFETY_REFRESH_MS);
    }

    unlisten() {
      window.removeEventListener("resize", this.schedule);
      document.removeEventListener("scroll", this.schedule, { capture: true });
      this.resizes.unobserve(document.documentElement);
      clearInterval(this.interval);
      this.interval = 0;
    }
  }

  globalThis.genspot.badges = Object.freeze({ BadgeLayer });
})();
