// Turns a backend result into what the user sees: the kind that is counted, the badge's words,
// the screen-reader label, the details panel's rows in plain words (numbers only there), the
// technical rows behind a "Technical details" line, and the choices for reporting a wrong verdict.
// The evidence that decided comes first; evidence that disagrees is named as such.
globalThis.genspot = globalThis.genspot || {};

(() => {
  const WORDS = { dalle: "DALL·E", dalle2: "DALL·E 2", sd: "SD", sdxl: "SDXL", xl: "XL", ldm: "LDM", gan: "GAN", vqgan: "VQGAN" };
  const UNKNOWN_GENERATOR = "generator unknown";
  // p_ai is calibrated, so the IPCC's words for likelihood fit it: "very likely" from 90%.
  const VERY_LIKELY_AI = 0.9;
  const VERY_LIKELY_REAL = 0.1;
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

  /**
   * The generator the backend names (the file's label's, or the detector's when it is sure enough), or "".
   * When the label decided, only the name it gives: the detector's guess beside it would read as the label's.
   */
  function generatorName(result) {
    const generator = result.generator;
    if (!generator || (decidedByMetadata(result) && generator.named_by !== "provenance")) return "";
    return sourceLabel(generator);
  }

  /** The badge's words: how sure, in words, and who decided ("Labelled" when the file's own metadata did). */
  function verdictWords(kind, result) {
    const p = result?.ai_probability;
    if (kind === "ai") return provesAi(result) ? "Labelled AI" : p >= VERY_LIKELY_AI ? "Very likely AI" : "Likely AI";
    if (kind === "real") return decidedByMetadata(result) ? "Labelled real" : p <= VERY_LIKELY_REAL ? "Very likely real" : "Likely real";
    if (kind === "uncertain") return "Uncertain";
    return "Not checked";
  }

  function badgeText(kind, result) {
    const words = verdictWords(kind, result);
    if (kind === "ai" && generatorName(result)) return `${words} · ${generatorName(result)}`;
    if (kind === "uncertain" && result.conflict) return `${words} · evidence disagrees`;
    return words;
  }

  const SENTENCES = {
    "Labelled AI": "made with AI, says the file's own label",
    "Very likely AI": "very likely AI-generated",
    "Likely AI": "likely AI-generated",
    "Labelled real": "not AI-generated, says the file's signed label",
    "Very likely real": "very likely real (not AI-generated)",
    "Likely real": "likely real (not AI-generated)",
    Uncertain: "uncertain: it could be AI-generated or real",
  };

  function verdictSentence(kind, result) {
    const sentence = SENTENCES[verdictWords(kind, result)];
    return sentence[0].toUpperCase() + sentence.slice(1);
  }

  function isRetried(result) {
    return (globalThis.genspot.RETRY_CODES ?? []).includes(result?.error?.code);
  }

  function ariaLabel(kind, result) {
    if (kind === "error") return `genspot: not checked (${result?.error?.message ?? "no answer"}). Press Enter for details.`;
    const generator = kind === "ai" ? `, ${generatorName(result) || UNKNOWN_GENERATOR}` : "";
    const conflict = kind === "uncertain" && result.conflict ? ", the evidence disagrees" : "";
    return `genspot: ${SENTENCES[verdictWords(kind, result)]}${generator}${conflict}. Press Enter for details.`;
  }

  // --- the file's own label (provenance metadata), in words

  const SOURCE_TYPES = {
    trainedAlgorithmicMedia: "with generative AI",
    compositeWithTrainedAlgorithmicMedia: "partly with generative AI",
    compositeSynthetic: "partly from synthetic content",
    algorithmicMedia: "by a program (not generative AI)",
    digitalCapture: "with a camera",
    computationalCapture: "with a camera, with computational processing (as phones do)",
    compositeCapture: "from several camera captures",
    negativeFilm: "by scanning a film negative",
    positiveFilm: "by scanning a film slide",
    print: "by scanning a print",
    screenCapture: "as a screenshot",
    digitalArt: "by a person with digital tools",
    minorHumanEdits: "with minor edits by a person",
  };
  const SIGNAL_PLACES = {
    c2pa: "Content Credentials (C2PA) in the file",
    iptc_xmp: "the file's photo metadata (IPTC)",
    png_text: "generation settings saved in the file",
    stealth_png: "generation settings hidden in the image's pixels",
    exif: "the file's camera and software details (EXIF)",
  };

  function madeHow(term) {
    return `made ${SOURCE_TYPES[term] ?? `as "${term}"`}`;
  }

  /** A C2PA action's name in words: "c2pa.created" -> "created". */
  function actionWord(action) {
    return String(action ?? "c2pa.created").replace(/^c2pa\./, "").replace(/_/g, " ");
  }

  /**
   * What a C2PA manifest states (a signal's `statement`), in words: "made with generative AI by
   * Adobe Firefly", its own description quoted, and the software that wrote the record.
   */
  function c2paSays(statement) {
    const recorded = statement.claim_generator && statement.claim_generator !== statement.software_agent ? `recorded by ${statement.claim_generator}` : "";
    if (statement.history?.length) {
      return `its edit history (${statement.history.map(actionWord).join(", ")}) declares no AI${recorded ? `, ${recorded}` : ""}`;
    }
    const how = statement.source_type ? madeHow(statement.source_type) : actionWord(statement.action);
    const parts = [`${how}${statement.software_agent ? ` by ${statement.software_agent}` : ""}`];
    if (statement.description) parts.push(`in its own words: “${statement.description}”`);
    if (recorded) parts.push(recorded);
    return `${parts.join("; ")}${statement.earlier_step ? " (in an earlier version of the image)" : ""}`;
  }

  /** What one metadata signal says, in words, from its structured `statement` where it has one. */
  function signalSays(signal) {
    const statement = signal.statement;
    if (statement && signal.kind === "c2pa") return c2paSays(statement);
    if (statement?.source_type) return `${madeHow(statement.source_type)}${statement.credit ? `; credit: “${statement.credit}”` : ""}`;
    if (signal.kind === "exif" && signal.verdict === "not-ai") {
      return `taken with a ${signal.generator ?? "camera"} (such details are easy to copy onto any file)`;
    }
    if (signal.generator && signal.verdict === "ai") return `made with ${signal.generator}`;
    return String(signal.detail ?? "");
  }

  /** The signal behind the metadata's conclusion, or null. */
  function decisiveSignal(provenance) {
    return provenance?.signals?.find((signal) => signal.verdict && signal.verdict === provenance.verdict) ?? null;
  }

  /**
   * Who signed the C2PA manifest (as its certificate states), whether the signature holds, and
   * whether a trust list was checked. Answers without the two flags read them from `validity`.
   */
  function signedWords(c2pa) {
    const organization = c2pa.signer_organization ?? c2pa.issuer;
    const who = c2pa.signer ? `${c2pa.signer}${organization && organization !== c2pa.signer ? ` (${organization})` : ""}` : organization ?? "an unnamed signer";
    const by = `By ${who}${c2pa.certificate_issuer ? `, with a certificate issued by ${c2pa.certificate_issuer}` : ""}.`;
    if (!(c2pa.validation_passed ?? c2pa.validity !== "invalid")) {
      const problems = (c2pa.codes ?? []).filter((code) => !/\.untrusted$/.test(code));
      return `${by} The signature does not check out${problems.length ? ` (${problems.join(", ")})` : ""}: the file changed after signing or the certificate is not valid, so this label proves nothing.`;
    }
    const intact = `${by} The signature checks out: the file has not changed since it was signed.`;
    if (!(c2pa.trust_list_checked ?? c2pa.validity === "valid")) {
      return `${intact} No trust list was checked, so who signed it is as the certificate states, unconfirmed.`;
    }
    return c2pa.validity === "valid" ? `${intact} The signer is on a trust list genspot's service checked.` : `${intact} The signer is not on the trust list genspot's service checked.`;
  }

  function labelRows(provenance) {
    const signal = decisiveSignal(provenance);
    const rows = [["Label", signal ? `${SIGNAL_PLACES[signal.kind] ?? signal.kind}: ${signalSays(signal)}` : "none in the file"]];
    if (!signal && provenance?.c2pa) {
      const claim = provenance.signals?.find((candidate) => candidate.kind === "c2pa" && candidate.statement);
      rows[0][1] = `Content Credentials (C2PA) that prove nothing (see below)${claim ? `; they say: ${c2paSays(claim.statement)}` : ""}`;
    }
    if (provenance?.c2pa) rows.push(["Signed", signedWords(provenance.c2pa)]);
    return rows;
  }

  // --- why this verdict, and what disagrees

  function modelSays(result) {
    return `genspot's detector puts the chance it is AI-generated at ${percent(result.ai_probability)}`;
  }

  function why(kind, result, settings) {
    if (decidedByMetadata(result)) return "the file's own label (below) outranks genspot's detector";
    const { ai, real } = limitsOf(result);
    if (kind !== "uncertain" || result.conflict) return modelSays(result);
    if (result.verdict === "ai") return `${modelSays(result)}; your options ask for at least ${percent(settings.threshold)} before saying AI`;
    return `${modelSays(result)}: between ${percent(real)} and ${percent(ai)} it says neither AI nor real`;
  }

  const MODEL_WORDS = { ai: "AI-generated", real: "real", uncertain: "uncertain" };

  function disagreement(result) {
    if (decidedByMetadata(result)) return `${modelSays(result)}: alone, it would say ${MODEL_WORDS[result.model_verdict] ?? result.model_verdict}`;
    const weak = result.provenance?.signals?.find((signal) => signal.verdict && signal.verdict !== result.model_verdict);
    return weak ? `${SIGNAL_PLACES[weak.kind] ?? weak.kind}: ${signalSays(weak)}` : String(result.conflict);
  }

  function generatorDetail(result) {
    const generator = result.generator;
    if (generator?.named_by === "provenance") return `${sourceLabel(generator)} (named in the file's label)`;
    const sure = generator ? `${percent(generator.probability)} sure` : "";
    if (decidedByMetadata(result)) {
      return `not named in the file's label${generator ? `; genspot's detector guesses ${sourceLabel(generator)} (${sure})` : ""}`;
    }
    return generator ? `${sourceLabel(generator)} (genspot's detector, ${sure})` : UNKNOWN_GENERATOR;
  }

  // --- how the image reached the service (information, not an error)

  function fallbackWhy(fallback) {
    const port = /^port (\d+)/.exec(fallback?.message ?? "")?.[1];
    if (fallback?.code === "unsupported_url" && port) return `the service downloads only from the usual web ports, and this site uses port ${port}`;
    if (fallback?.code === "blocked_address") return "the image is on a local or private network address, which the service does not visit";
    return "the service could not download it itself, for example because it needs your login";
  }

  function sentHow(result) {
    if (result.via === "cache") return "answer kept from earlier in this browser session";
    if (result.via === "url") return "genspot's service downloaded the image from its address";
    return `your browser sent the image to genspot's service${result.fallback ? `, as ${fallbackWhy(result.fallback)}` : ""}`;
  }

  function technicalRows(kind, result) {
    const { ai, real } = limitsOf(result);
    const rows = [["AI probability", percent(result.ai_probability)], ["Limits", `"AI" from ${percent(ai)}, "real" below ${percent(real)}`]];
    const guesses = (result.sources ?? []).filter((entry) => entry.label !== "real");
    if (kind !== "real" && guesses.length) rows.push(["Detector's guesses", guesses.map((entry) => `${sourceLabel(entry)} ${percent(entry.probability)}`).join(", ")]);
    const evidence = (result.provenance?.signals ?? []).map((signal) => `${signal.kind}: ${signal.detail}`);
    if (evidence.length) rows.push(["Metadata", evidence.join("; ")]);
    rows.push(["Sent", sentHow(result)], ["Model", result.model_version ?? "—"]);
    return rows;
  }

  function notCheckedRows(result) {
    const error = result?.error ?? { code: "no_answer", message: "no answer" };
    if (error.code === "unsupported_image") return [["Verdict", "Not checked: skipped"], ["Why", error.message]];
    if (isRetried(result)) return [["Verdict", "Not checked yet"], ["Why", error.message], ["Next", "genspot tries again by itself, waiting longer each time (at most 15 s); Rescan in the genspot popup tries now"]];
    return [["Verdict", "Not checked: it failed"], ["Why", error.message], ["Try", "Rescan in the genspot popup, or right-click → Check this image with genspot"]];
  }

  const REPORT_CHOICES = { ai: [["real", "It is real"]], real: [["ai", "It is AI-made"]], uncertain: [["ai", "It is AI-made"], ["real", "It is real"]] };

  /**
   * What to draw for a result, or null when no badge is shown ("real" with "Likely real" badges
   * switched off). `choices` are [correct_label, button text] pairs for a wrong-verdict report.
   */
  function describe(result, settings) {
    const kind = kindOf(result, settings);
    if (kind === "real" && !settings.showReal) return null;
    const view = { kind, text: badgeText(kind, result), ariaLabel: ariaLabel(kind, result), technical: [], choices: [] };
    if (kind === "error") return { ...view, rows: notCheckedRows(result) };
    const rows = [["Verdict", verdictSentence(kind, result)], ["Why", why(kind, result, settings)]];
    if (result.conflict) rows.push(["But", disagreement(result)]);
    if (kind === "ai") rows.push(["Generator", generatorDetail(result)]);
    rows.push(...labelRows(result.provenance));
    return { ...view, rows, technical: technicalRows(kind, result), choices: result.sha256 ? REPORT_CHOICES[kind] : [] };
  }

  /** The badge of an image whose answer is on its way. */
  const CHECKING = Object.freeze({
    kind: "checking", text: "Checking…", ariaLabel: "genspot: checking this image. Press Enter for details.",
    rows: [["Verdict", "Checking…"], ["Why", "genspot's service is looking at this image"]], technical: [], choices: [],
  });

  globalThis.genspot.verdicts = Object.freeze({ describe, kindOf, displayName, badgeText, limitsOf, isRetried, CHECKING, UNKNOWN_GENERATOR });
})();
