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
    [hidden] { display: none !important; }
    .wrap { all: initial; display: block; position: relative; font: 600 12px/1.2 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
    .badge {
      all: unset; box-sizing: border-box; display: inline-block; padding: 3px 8px;
      border-radius: 999px; border: 1.5px solid rgba(255, 255, 255, 0.95); box-shadow: 0 0 0 1px rgba(0, 0, 0, 0.55), 0 1px 4px rgba(0, 0, 0, 0.4);
      color: #fff; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; cursor: pointer; pointer-events: auto;
    }
    .badge:focus-visible { outline: 3px solid #ffbf47; outline-offset: 2px; }
    .ai { background: #a4161a; }
    .real { background: #1b5e20; }
    .uncertain { background: #37474f; }
    /* "checking" and "not checked": quiet, outlined, never mistaken for a verdict */
    .checking, .error { background: rgba(255, 255, 255, 0.92); color: #37474f; border: 1.5px dashed #546e7a; font-weight: 500; }
    .checking { border-style: dotted; }
    .panel {
      display: none; position: absolute; top: calc(100% + 6px); left: 0; width: max-content; max-width: 340px; padding: 8px 10px;
      background: #fff; color: #1a1a1a; border: 1px solid #888; border-radius: 8px; box-shadow: 0 4px 16px rgba(0, 0, 0, 0.35);
      font-weight: 400; pointer-events: auto;
    }
    /* bridges the gap between badge and panel, so the pointer can travel to the panel's buttons */
    .panel::before { content: ""; position: absolute; left: 0; right: 0; top: -8px; height: 8px; }
    .panel.above::before { top: auto; bottom: -8px; }
    .wrap:hover .panel, .wrap.open .panel { display: block; }
    dl { margin: 0; display: grid; grid-template-columns: auto 1fr; gap: 3px 10px; }
    dt { font-weight: 600; color: #444; }
    dd { margin: 0; }
    details { margin-top: 6px; color: #444; font-size: 11px; }
    summary { cursor: pointer; color: #555; }
    details dl { margin-top: 4px; }
    .report { margin-top: 8px; padding-top: 6px; border-top: 1px solid #ddd; }
    .report p { margin: 0 0 4px; }
    .report .row { display: flex; flex-wrap: wrap; gap: 4px; align-items: center; }
    .report input { font: inherit; font-size: 12px; padding: 2px 6px; border: 1px solid #888; border-radius: 4px; min-width: 0; flex: 1 1 120px; color: #1a1a1a; background: #fff; }
    .report button { font: inherit; font-size: 12px; padding: 2px 8px; border: 1px solid #888; border-radius: 4px; background: #f4f4f4; color: #1a1a1a; cursor: pointer; }
    .report .status { margin: 4px 0 0; color: #555; }
    .report .done { color: #1b5e20; font-weight: 600; }
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

  function definitionList(rows) {
    return rows.flatMap(([term, value]) => [element("dt", {}, [term]), element("dd", {}, [value])]);
  }

  const REPORTED_WORDS = { ai: "it is AI-made", real: "it is real" };

  /**
   * The panel's report part: an optional note and one button per correct answer; a click sends
   * the report at once. The note field is made once, so a redraw never loses what is typed.
   */
  function createReport(onReport) {
    const note = element("input", { type: "text", maxlength: "1000", placeholder: "Note (optional)", "aria-label": "Note for your report (optional)" });
    const choices = element("span", { class: "row" });
    const status = element("p", { class: "status", role: "status" });
    const form = element("div", {}, [element("p", {}, ["Think this is wrong? Tell genspot:"]), element("div", { class: "row" }, [note, choices]), status]);
    const done = element("p", { class: "done" });
    const section = element("div", { class: "report" }, [form, done]);
    choices.addEventListener("click", async (event) => {
      const button = event.target.closest("button[data-label]");
      if (!button || !event.isTrusted) return; // only the user's own click reports, never the page's script
      choices.querySelectorAll("button").forEach((choice) => { choice.disabled = true; });
      status.textContent = "Sending the report…";
      const answer = await onReport(button.dataset.label, note.value.trim());
      choices.querySelectorAll("button").forEach((choice) => { choice.disabled = false; });
      status.textContent = answer?.error ? `Not sent: ${answer.error.message}` : "";
    });
    return { section, form, choices, note, done };
  }

  function createBadge(onReport) {
    const host = document.createElement("genspot-badge");
    setImportant(host, HOST_STYLE);
    const root = host.attachShadow({ mode: "open" });
    if (!sheet) {
      sheet = new CSSStyleSheet();
      sheet.replaceSync(STYLE);
    }
    root.adoptedStyleSheets = [sheet];
    const panelId = `genspot-details-${++panelIds}`;
    const button = element("button", { class: "badge", type: "button", "aria-expanded": "false", "aria-controls": panelId, "aria-describedby": `${panelId}-rows` });
    const list = element("dl", { id: `${panelId}-rows` });
    const technical = element("dl");
    const details = element("details", {}, [element("summary", {}, ["Technical details"]), technical]);
    const report = createReport(onReport);
    const panel = element("div", { class: "panel", id: panelId, role: "group", "aria-label": "genspot details" }, [list, details, report.section, element("div", { class: "brand" }, ["genspot"])]);
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
    wrap.addEventListener("keydown", (event) => {
      if (event.key !== "Escape") return;
      toggle(false);
      button.focus(); // from the panel's note or buttons, back to the badge
    });
    wrap.addEventListener("focusin", (event) => {
      if (event.target !== button && !wrap.classList.contains("open")) toggle(true); // typing a note keeps the panel open
    });
    wrap.addEventListener("focusout", (event) => {
      if (!wrap.contains(event.relatedTarget)) toggle(false);
    });
    return { host, button, list, technical, details, report, panel, toggle };
  }

  /**
   * Shifts a showing panel left, or above its badge, so it stays inside the viewport: a panel
   * sticking out would widen or lengthen the page (new scrollbars) instead of floating over it.
   */
  function fitInViewport(panel) {
    panel.style.left = panel.style.top = panel.style.bottom = "";
    panel.classList.remove("above");
    const box = panel.getBoundingClientRect();
    const { clientWidth, clientHeight } = document.documentElement;
    const overflowRight = box.right - (clientWidth - PANEL_MARGIN);
    if (overflowRight > 0) panel.style.left = `${-Math.min(overflowRight, Math.max(0, box.left - PANEL_MARGIN))}px`;
    if (box.bottom > clientHeight - PANEL_MARGIN && box.top - box.height - 2 * PANEL_MARGIN > 0) {
      panel.style.top = "auto";
      panel.style.bottom = "calc(100% + 6px)";
      panel.classList.add("above");
    }
  }

  function fill(badge, view) {
    badge.button.className = `badge ${view.kind}`;
    badge.button.textContent = view.text;
    badge.button.setAttribute("aria-label", view.ariaLabel);
    badge.host.dataset.verdict = view.kind;
    badge.list.replaceChildren(...definitionList(view.rows));
    badge.technical.replaceChildren(...definitionList(view.technical));
    badge.details.hidden = view.technical.length === 0;
    const { report } = badge;
    const reported = view.reported;
    report.section.hidden = !reported && view.choices.length === 0;
    report.form.hidden = Boolean(reported);
    report.done.hidden = !reported;
    badge.host.dataset.reported = reported ? reported.correct_label : "";
    if (reported) report.done.textContent = `You reported: ${REPORTED_WORDS[reported.correct_label] ?? reported.correct_label}${reported.comment ? ` (“${reported.comment}”)` : ""}. Thanks.`;
    const shown = report.choices.querySelectorAll("button");
    if ([...shown].map((button) => button.dataset.label).join() !== view.choices.map(([label]) => label).join()) {
      report.choices.replaceChildren(...view.choices.map(([label, text]) => element("button", { type: "button", "data-label": label }, [text])));
    }
  }

  function place(badge, img) {
    const box = img.getBoundingClientRect();
    const shown = img.isConnected && box.width > 0 && box.height > 0;
    badge.button.style.maxWidth = `${Math.max(28, box.width - 2 * INSET)}px`; // stays on its image, whole wherever the image has room
    setImportant(badge.host, {
      display: shown ? "block" : "none",
      left: `${Math.round(box.left + window.scrollX + INSET)}px`,
      top: `${Math.round(box.top + window.scrollY + INSET)}px`,
    });
  }

  /** All badges of the page, kept on their images as the page scrolls, resizes and changes. */
  class BadgeLayer {
    /** `onReport(img, correctLabel, note)` sends a report from an image's panel; it answers {error?}. */
    constructor({ onReport }) {
      this.onReport = onReport;
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
        badge = createBadge((label, note) => this.onReport(img, label, note));
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
