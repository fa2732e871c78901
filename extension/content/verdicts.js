// Turns a backend result into what the user sees: the verdict kind that is counted, the
// badge text, the screen-reader label and the rows of the details panel.
globalThis.genspot = globalThis.genspot || {};

(() => {
  const WORDS = { dalle: "DALL·E", dalle2: "DALL·E 2", sd: "SD", sdxl: "SDXL", xl: "XL", ldm: "LDM", gan: "GAN", vqgan: "VQGAN" };

  /**
   * Model labels read better: "midjourney_v3_2022" -> "Midjourney v3", "stylegan" -> "StyleGAN",
   * "dalle_mini" -> "DALL·E Mini". Names taken from metadata ("DALL-E 3") are kept as written.
   */
  function displayName(label) {
    if (!/^[a-z0-9_.]+$/.test(label)) return String(label);
    const words = label
      .split(/[_\s-]+/)
      .filter((word) => word && !/^(19|20)\d\d$/.test(word));
    return words
      .map((word) => {
        const lower = word.toLowerCase();
        if (WORDS[lower]) return WORDS[lower];
        if (/^v\d/.test(lower)) return lower;
        if (lower.length <= 4 && !/[aeiou]/.test(lower.slice(1))) return lower.toUpperCase(); // crn, san, imle
        const name = lower[0].toUpperCase() + lower.slice(1);
        return name.endsWith("gan") && name.length > 3 ? `${name.slice(0, -3)}GAN` : name;
      })
      .join(" ");
  }

  function percent(probability) {
    return `${Math.round(Number(probability) * 100)}%`;
  }

  const SIGNAL_NAMES = { c2pa: "C2PA", iptc_xmp: "IPTC/XMP", exif: "EXIF", png_text: "PNG text", stealth_png: "stealth PNG" };
  const PROVENANCE_WORDS = { ai: "AI-generated", "not-ai": "no AI declared", unknown: "nothing conclusive" };

  /** One line about what the image's metadata said (the backend's `provenance`), or "". */
  function provenanceSummary(provenance) {
    if (!provenance) return "";
    const said = `${PROVENANCE_WORDS[provenance.verdict] ?? provenance.verdict}${provenance.generator ? ` (${provenance.generator})` : ""}`;
    const kinds = [...new Set((provenance.signals ?? []).map((signal) => SIGNAL_NAMES[signal.kind] ?? signal.kind))];
    return kinds.length ? `${said} · ${kinds.join(", ")}` : said;
  }

  /** Metadata that proves AI outranks the model (and the user's threshold). */
  function provesAi(result) {
    return result.provenance?.verdict === "ai";
  }

  /** "ai" | "real" | "uncertain" | "error", after the user's threshold. */
  function kindOf(result, settings) {
    if (!result || result.status !== "ok") return "error";
    if (result.verdict === "ai" && !provesAi(result) && result.ai_probability < settings.threshold) return "uncertain";
    return result.verdict;
  }

  function sourceName(result) {
    const label = result.source?.label;
    return label && label !== "real" ? displayName(label) : "";
  }

  function badgeText(kind, result) {
    if (kind === "ai") {
      const strength = provesAi(result) ? "AI (metadata)" : `AI ${percent(result.ai_probability)}`;
      return [strength, sourceName(result)].filter(Boolean).join(" · ");
    }
    if (kind === "real") return "Likely real";
    return "?";
  }

  function ariaLabel(kind, result) {
    const p = percent(result.ai_probability);
    if (kind === "ai") {
      const source = sourceName(result);
      const strength = provesAi(result) ? "its metadata says so" : `${p} probability`;
      return `genspot: likely AI-generated, ${strength}${source ? `, most likely ${source}` : ""}. Press Enter for details.`;
    }
    if (kind === "real") return `genspot: likely a real photo, AI probability ${p}. Press Enter for details.`;
    return `genspot: uncertain whether this image is AI-generated, AI probability ${p}. Press Enter for details.`;
  }

  const VERDICT_WORDS = { ai: "Likely AI-generated", real: "Likely real", uncertain: "Uncertain" };
  const VIA_WORDS = { url: "backend fetched the image", bytes: "your browser sent the image bytes", cache: "result from this session" };

  function detailRows(kind, result) {
    const sources = (result.sources ?? [])
      .filter((entry) => entry.label !== "real")
      .map((entry) => `${displayName(entry.label)} ${percent(entry.probability)}`)
      .join(", ");
    return [
      ["Verdict", VERDICT_WORDS[kind]],
      ["AI probability", percent(result.ai_probability)],
      ["Likely sources", sources || "—"],
      ["Provenance", provenanceSummary(result.provenance) || "no metadata found"],
      ["Model", result.model_version ?? "—"],
      ["Checked", VIA_WORDS[result.via] ?? "—"],
    ];
  }

  /** What to draw for a result, or null when no badge is shown (errors; "real" unless enabled). */
  function describe(result, settings) {
    const kind = kindOf(result, settings);
    if (kind === "error" || (kind === "real" && !settings.showReal)) return null;
    return { kind, text: badgeText(kind, result), ariaLabel: ariaLabel(kind, result), rows: detailRows(kind, result) };
  }

  globalThis.genspot.verdicts = Object.freeze({ describe, kindOf, displayName });
})();
