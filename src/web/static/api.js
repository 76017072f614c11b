// The service's HTTP API as the page uses it: the API key, requests, and errors in the contract's shape.

const KEY_STORAGE = "autobots.apiKey";
export const API = "/api/v1";

/** An error answer of the API: `{"error": {type, message, param, code, errors?}}`, with its HTTP status. */
export class ApiError extends Error {
  constructor(status, error, retryAfter = null) {
    super(error.message || `request failed with HTTP ${status}`);
    this.status = status;
    this.type = error.type || null;
    this.code = error.code || null;
    this.param = error.param || null;
    this.errors = Array.isArray(error.errors) ? error.errors : [];
    this.retryAfter = retryAfter;
  }
}

/** The API key the page signs in with, kept in localStorage; null: none (local mode needs none). */
export const auth = {
  get key() {
    return localStorage.getItem(KEY_STORAGE);
  },
  set key(value) {
    if (value) localStorage.setItem(KEY_STORAGE, value);
    else localStorage.removeItem(KEY_STORAGE);
  },
};

/** Headers for a request: the caller's, plus `Authorization: Bearer <key>` when signed in with a key. */
export function authHeaders(extra = {}) {
  const headers = new Headers(extra);
  const key = auth.key;
  if (key) headers.set("Authorization", `Bearer ${key}`);
  return headers;
}

/** The ApiError of a response that is not ok (its body is read here). */
export async function errorOf(response) {
  let error = { message: `HTTP ${response.status} ${response.statusText}`.trim() };
  try {
    const body = await response.json();
    if (body && typeof body.error === "object" && body.error) error = body.error;
  } catch {
    // Not JSON (a proxy's page, say): keep the status line.
  }
  const retryAfter = response.headers.get("retry-after");
  const failure = new ApiError(response.status, error, retryAfter);
  if (response.status === 401) window.dispatchEvent(new CustomEvent("autobots:unauthorized", { detail: failure }));
  return failure;
}

/**
 * Send a request to the API and return its JSON body (null for 204).
 * `json`: a value sent as JSON; `text` with `contentType`: a body sent as it is (a YAML spec, say).
 */
export async function request(method, path, { json, text, contentType, query, headers, signal } = {}) {
  const url = new URL(API + path, window.location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  const init = { method, headers: authHeaders(headers), signal };
  if (json !== undefined) {
    init.headers.set("Content-Type", "application/json");
    init.body = JSON.stringify(json);
  } else if (text !== undefined) {
    init.headers.set("Content-Type", contentType);
    init.body = text;
  }
  const response = await fetch(url, init);
  if (!response.ok) throw await errorOf(response);
  return response.status === 204 ? null : response.json();
}

export const get = (path, options) => request("GET", path, options);
export const post = (path, options) => request("POST", path, options);
