// Fetches an image the backend could not fetch itself (e.g. it needs the user's cookies) and
// returns it base64-encoded for `image_b64`. It runs in the service worker with the user's
// credentials, which the `http(s)://*/*` host permission allows; the bytes go only to the
// configured backend.

const MAX_BYTES = 10 * 1024 * 1024; // the backend's default size cap
const TIMEOUT_MS = 15_000;

export class ImageFetchError extends Error {}

function toBase64(buffer) {
  const bytes = new Uint8Array(buffer);
  let binary = "";
  for (let start = 0; start < bytes.length; start += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(start, start + 0x8000));
  }
  return btoa(binary);
}

export async function fetchImageBase64(url) {
  let response;
  try {
    response = await fetch(url, { credentials: "include", signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (error) {
    throw new ImageFetchError(`the browser could not fetch the image either (${error.message})`);
  }
  if (!response.ok) throw new ImageFetchError(`the browser could not fetch the image either (HTTP ${response.status})`);
  if (Number(response.headers.get("content-length")) > MAX_BYTES) throw new ImageFetchError("the image is larger than 10 MB");
  const buffer = await response.arrayBuffer();
  if (buffer.byteLength > MAX_BYTES) throw new ImageFetchError("the image is larger than 10 MB");
  return toBase64(buffer);
}
