// Turns a backend result into what the user sees: the verdict kind that is counted, the
// badge text, the screen-reader label and the rows of the details panel. The evidence that
// decided comes first; evidence that disagrees is named as such.
globalThis.genspot = globalThis.genspot || {};

(() => {
  const WORDS = { dalle: "DALL·E", dalle2: "DALL·E 2", sd: "SD", sdxl: "SDXL", xl: "XL", ldm: "LDM", gan: "GAN", vqgan: "VQGAN" };
  // Below this probability (given the image is AI) the source head is guessing: say so rather
  // than name a generator (a training-set id such as a 2022 model) for any AI image.
  const SURE_SOURCE = 0.4;
  const UNKNOWN_GENERATOR = "unknown generator";
  const DEFAULT_LIMITS = { threshold: 0.5, uncertain_band: 0.15 }; // the backend's defaults, for old answers

  /**
   * Model labels read better: "midjourney_v3_2022" -> "Midjourney v3", "stylegan" -> "StyleGAN",
   * "dalle_mini" -> "DALL·E Mini". Names taken from metadata ("DALL-E 3") are kept as written.
   * The bundle manifest's display names (a source's `name`) win over this guess.
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

  function sourceLabel(source) {
    return source.name || displayName(source.label);
  }

  function percent(probability) {
    return `${Math.round(Number(probability) * 100)}%`;
  }

  const SIGNAL_NAMES = { c2pa: "C2PA", iptc_xmp: "IPTC/XMP", exif: "EXIF", png_text: "PNG text", stealth_png: "stealth PNG" };
  const PROVENANCE_WORDS = { ai: "AI-generated", "not-ai": "no AI declared", unknown: "nothing conclusive" };
  const C2PA_WORDS = {
    valid: "valid, signer on a trust list",
    untrusted: "intact, but the signer is on no trust list",
    invalid: "INVALID",
  };

  /** One line about what the image's metadata said (the backend's `provenance`), or "". */
  function provenanceSummary(provenance) {
    if (!provenance) return "";
    const said = `${PROVENANCE_WORDS[provenance.verdict] ?? provenance.verdict}${provenance.generator ? ` (${provenance.generator})` : ""}`;
    const kinds = [...new Set((provenance.signals ?? []).map((signal) => SIGNAL_NAMES[signal.kind] ?? signal.kind))];
    return kinds.length ? `${said} · ${kinds.join(", ")}` : said;
  }

  /** "valid / untrusted / INVALID · signed by X (Y)" for a C2PA manifest, or "". */
  function c2paSummary(provenance) {
    const c2pa = provenance?.c2pa;
    if (!c2pa) return "";
    const signer = [c2pa.signer, c2pa.issuer].filter(Boolean).join(", ");
    const problems = (c2pa.codes ?? []).filter((code) => !/\.untrusted$/.test(code));
    const why = c2pa.validity === "invalid" && problems.length ? ` (${problems.join(", ")})` : "";
    return `${C2PA_WORDS[c2pa.validity] ?? c2pa.validity}${why}${signer ? ` · signed by ${signer}` : ""}`;
  }

  function decidedByMetadata(result) {
    return result.decided_by === "provenance" || (result.decided_by == null && result.provenance?.verdict === "ai");
  }

  /** Metadata that proves AI outranks the model (and the user's threshold). */
  function provesAi(result) {
    return result.verdict === "ai" && decidedByMetadata(result);
  }

  /** The backend's limits for this result: "ai" from `ai`, "real" below `real`. */
  function limitsOf(result) {
    const { threshold, uncertain_band: band } = result.thresholds ?? DEFAULT_LIMITS;
    return { ai: threshold + band, real: threshold - band };
  }

  /** "ai" | "real" | "uncertain" | "error", after the user's threshold (which only ever raises the AI limit). */
  function kindOf(result, settings) {
    if (!result || result.status !== "ok") return "error";
    if (result.verdict === "ai" && !provesAi(result) && result.ai_probability < settings.threshold) return "uncertain";
    return result.verdict;
  }

  /** The generator to name on an AI badge: metadata's, else the source head's when it is sure enough. */
  function sourceName(result) {
    const source = result.source;
    if (!source || source.label === "real") return "";
    if (!decidedByMetadata(result) && !(source.probability >= SURE_SOURCE)) return UNKNOWN_GENERATOR;
    return sourceLabel(source);
  }

  function badgeText(kind, result) {
    if (kind === "error") return "not checked";
    if (kind === "ai") {
      const strength = provesAi(result) ? "AI (metadata)" : `AI ${percent(result.ai_probability)}`;
      return [strength, sourceName(result)].filter(Boolean).join(" · ");
    }
    if (kind === "real") return decidedByMetadata(result) ? "Real (C2PA)" : "Likely real";
    return result.conflict ? "? · evidence disagrees" : "?";
  }

  function ariaLabel(kind, result) {
    if (kind === "error") return `genspot: could not check this image (${result?.error?.message ?? "no answer"}). Press Enter for details.`;
    const p = percent(result.ai_probability);
    if (kind === "ai") {
      const source = sourceName(result);
      const strength = provesAi(result) ? "its metadata says so" : `${p} probability`;
      return `genspot: likely AI-generated, ${strength}${source ? `, most likely ${source}` : ""}. Press Enter for details.`;
    }
    if (kind === "real") {
      const why = decidedByMetadata(result) ? "its signed C2PA manifest says so" : `AI probability ${p}`;
      return `genspot: likely a real photo, ${why}. Press Enter for details.`;
    }
    const conflict = result.conflict ? ", the evidence disagrees" : "";
    return `genspot: uncertain whether this image is AI-generated, AI probability ${p}${conflict}. Press Enter for details.`;
  }

  /** Why a "?" badge: the band, the user's stricter limit, or disagreeing evidence. */
  function uncertainWhy(result, settings) {
    const { ai, real } = limitsOf(result);
    const p = percent(result.ai_probability);
    if (result.verdict === "ai") return `AI probability ${p} is at or above the backend's AI limit (${percent(ai)}) but below your minimum (${percent(settings.threshold)}, in the options)`;
    if (result.conflict) return "the model and the file's metadata disagree (see above)";
    return `AI probability ${p} is between the backend's limits: below ${percent(real)} is "real", from ${percent(ai)} "AI"`;
  }

  function decidingEvidence(result) {
    if (decidedByMetadata(result)) {
      const c2pa = c2paSummary(result.provenance);
      return `the file's metadata: ${provenanceSummary(result.provenance)}${c2pa && result.verdict === "real" ? ` (C2PA ${c2pa})` : ""}`;
    }
    return `the model: AI probability ${percent(result.ai_probability)}`;
  }

  const VERDICT_WORDS = { ai: "Likely AI-generated", real: "Likely real", uncertain: "Uncertain" };
  const VIA_WORDS = { url: "backend fetched the image", bytes: "your browser sent the image bytes", cache: "result from this session" };

  function checkedHow(result) {
    const how = VIA_WORDS[result.via] ?? "—";
    return result.fallback ? `${how} (the backend could not fetch it: ${result.fallback})` : how;
  }

  function detailRows(kind, result, settings) {
    if (kind === "error") {
      return [
        ["Verdict", "Could not check this image"],
        ["Reason", result?.error?.message ?? "no answer"],
        ["Try", "Rescan in the genspot popup, or right-click → Check this image with genspot"],
      ];
    }
    const sources = (result.sources ?? [])
      .filter((entry) => entry.label !== "real")
      .map((entry) => `${sourceLabel(entry)} ${percent(entry.probability)}`)
      .join(", ");
    const rows = [["Verdict", VERDICT_WORDS[kind]], ["Decided by", decidingEvidence(result)]];
    if (result.conflict) rows.push(["Disagrees", result.conflict]);
    if (kind === "uncertain") rows.push(["Why “?”", uncertainWhy(result, settings)]);
    const c2pa = c2paSummary(result.provenance);
    if (c2pa) rows.push(["C2PA", c2pa]);
    rows.push(
      [decidedByMetadata(result) ? "Model's AI probability" : "AI probability", percent(result.ai_probability)],
      ["Likely sources", sources || "—"],
      ["Provenance", provenanceSummary(result.provenance) || "no metadata found"],
      ["Model", result.model_version ?? "—"],
      ["Checked", checkedHow(result)],
    );
    return rows;
  }

  /** What to draw for a result, or null when no badge is shown ("real" unless enabled). */
  function describe(result, settings) {
    const kind = kindOf(result, settings);
    if (kind === "real" && !settings.showReal) return null;
    return { kind, text: badgeText(kind, result), ariaLabel: ariaLabel(kind, result), rows: detailRows(kind, result, settings) };
  }

  globalThis.genspot.verdicts = Object.freeze({ describe, kindOf, displayName, badgeText, limitsOf, SURE_SOURCE });
})();
