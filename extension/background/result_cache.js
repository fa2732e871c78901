// Results per image for this browser session, in chrome.storage.session (memory only, gone
// when the browser closes, survives the service worker being stopped). The key covers the
// backend, the image and its caption, so switching backends never mixes their answers.

async function sha256Hex(text) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

export async function cacheKey(backendUrl, item) {
  const image = item.url ?? `b64:${item.image_b64}`;
  return `result:${await sha256Hex(`${backendUrl}\n${image}\n${item.alt_text ?? ""}`)}`;
}

export async function getCached(key) {
  return (await chrome.storage.session.get(key))[key] ?? null;
}

export async function putCached(key, result) {
  try {
    await chrome.storage.session.set({ [key]: result });
  } catch {
    // Session storage is full (10 MB): start over rather than fail the page.
    await chrome.storage.session.clear();
  }
}
