// One image in, one verdict out: session cache, then a batched backend request, then the
// bytes fallback when the backend could not fetch the URL itself.

import { BackendError, postDetect } from "./backend_client.js";
import { MicroBatcher } from "./batcher.js";
import { cacheKey, getCached, putCached } from "./result_cache.js";
import { fetchImageBase64, ImageFetchError } from "./image_bytes.js";

// Item errors after which the browser sends the bytes it can fetch: the image needs the
// user's cookies (fetch_failed), lives on an address the backend refuses to visit, such as
// an intranet host (blocked_address), or on a port the backend does not fetch from, such as
// a local dev site on :8080 (unsupported_url, for the port only: a malformed URL stays an error).
const BYTES_FALLBACK_CODES = new Set(["fetch_failed", "blocked_address"]);
const PORT_REFUSED = /^port \d+ is not allowed/;

export function needsBytes(error) {
  if (!error) return false;
  return BYTES_FALLBACK_CODES.has(error.code) || (error.code === "unsupported_url" && PORT_REFUSED.test(error.message ?? ""));
}
const BATCH = { maxItems: 16, maxWaitMs: 50, priorityOf: (item) => item.priority };

const batchers = new Map(); // one per backend + key, so a settings change starts a new queue
let nextId = 0;

function batcherFor(settings) {
  const name = `${settings.backendUrl}\n${settings.apiKey}`;
  if (!batchers.has(name)) {
    const backend = { backendUrl: settings.backendUrl, apiKey: settings.apiKey };
    batchers.set(name, new MicroBatcher((items) => postDetect(backend, items), BATCH));
  }
  return batchers.get(name);
}

function errorResult(code, message) {
  return { status: "error", error: { code, message } };
}

async function ask(settings, item) {
  try {
    return await batcherFor(settings).submit({ id: String(++nextId), ...item });
  } catch (error) {
    if (error instanceof BackendError) return errorResult(error.code, error.message);
    throw error;
  }
}

/** `reason` is the backend's error for the URL ({code, message}): the badge's details say why the browser sent the image. */
async function askWithBytes(settings, item, reason) {
  let imageB64;
  try {
    imageB64 = await fetchImageBase64(item.url);
  } catch (error) {
    if (error instanceof ImageFetchError) return errorResult("fetch_failed", error.message);
    throw error;
  }
  const { url, ...rest } = item;
  return { ...(await ask(settings, { ...rest, image_b64: imageB64 })), via: "bytes", fallback: reason };
}

/**
 * The backend's result for `item` ({url | image_b64, alt_text, page_url?}), plus `via`:
 * "cache" (this session already asked), "url" or "bytes" (the extension sent the image).
 * `fresh` skips the session cache (the popup's "rescan").
 */
export async function detect(settings, item, { fresh = false } = {}) {
  const key = await cacheKey(settings.backendUrl, item);
  if (!fresh) {
    const cached = await getCached(key);
    if (cached) return { ...cached, via: "cache" };
  }
  let result = { ...(await ask(settings, item)), via: item.url ? "url" : "bytes" };
  if (result.status === "error" && item.url && needsBytes(result.error)) {
    result = await askWithBytes(settings, item, result.error);
  }
  if (result.status === "ok") await putCached(key, result);
  return result;
}
