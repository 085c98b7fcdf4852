// Tiny JSON fetch helper for the read API (/api/v1/...), shared by the pages.
// Uses the session cookie; API errors come back as {"error": "..."} and are thrown as ApiError with that message.

export class ApiError extends Error {
  constructor(message, status, body) {
    super(message);
    this.name = "ApiError";
    this.status = status; // 0 when the request never got an answer
    this.body = body;
  }
}

/** Build "path?query" from a params object or URLSearchParams, dropping empty values. */
export function apiUrl(path, params) {
  const query = new URLSearchParams();
  const entries = params instanceof URLSearchParams ? params.entries() : Object.entries(params || {});
  for (const [key, value] of entries) {
    for (const item of Array.isArray(value) ? value : [value]) {
      if (item !== undefined && item !== null && String(item) !== "") query.append(key, String(item));
    }
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

/** GET a JSON document. Rejects with ApiError (readable message) on network errors and non-2xx answers. */
export async function getJSON(url, { signal } = {}) {
  let response;
  try {
    response = await fetch(url, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
      signal,
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError("The server could not be reached. Check your connection and try again.", 0, null);
  }
  let body = null;
  let unreadable = false;
  try {
    body = await response.json();
  } catch (error) {
    // An abort can land while the body is still arriving; that must not look like an empty answer.
    if (error.name === "AbortError") throw error;
    unreadable = true;
  }
  if (!response.ok) {
    const message = (body && body.error) || `The server answered ${response.status} ${response.statusText}`;
    throw new ApiError(message, response.status, body);
  }
  if (unreadable || body === null) {
    throw new ApiError("The server sent an answer that could not be read. Try again.", response.status, null);
  }
  return body;
}
