// A run's events over Server-Sent Events, read with fetch (EventSource cannot send the Authorization header),
// resumed with Last-Event-ID when the connection drops.

import { API, ApiError, authHeaders, errorOf } from "./api.js";

const RETRYABLE = new Set([429, 502, 503, 504]);

/** The events of an SSE body as `{id, event, data}` (comments and keep-alives skipped). */
export async function* readEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let id = null;
  let event = "message";
  let data = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, end).replace(/\r$/, "");
        buffer = buffer.slice(end + 1);
        if (line === "") {
          if (data.length) yield { id, event, data: data.join("\n") };
          event = "message";
          data = [];
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "id") id = text;
        else if (field === "event") event = text;
        else if (field === "data") data.push(text);
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(signal.reason);
    }, { once: true });
  });
}

async function openEvents(runId, lastSeq, signal) {
  const headers = authHeaders({ Accept: "text/event-stream" });
  if (lastSeq > 0) headers.set("Last-Event-ID", String(lastSeq));
  return fetch(`${API}/runs/${encodeURIComponent(runId)}/events`, { headers, signal });
}

/**
 * Follow a run's events until `done`, calling `onEvent({seq, type, data, created_at})` once per event, in order.
 *
 * `first`: a response already streaming the run's events (the message POST's own), read before anything else.
 * When the stream ends or fails before `done`, it reconnects to `GET /runs/{id}/events` with `Last-Event-ID`
 * (the last sequence number seen), backing off, at most `retries` times in a row. `onReconnect(lastSeq, n)` is
 * told of each attempt. Resolves with the last sequence number; rejects with the ApiError of a refused request.
 */
export async function followRun(runId, onEvent, { first = null, after = 0, signal, retries = 6, onReconnect } = {}) {
  let lastSeq = after;
  let failures = 0;
  let response = first;
  for (;;) {
    let waitMs = Math.min(250 * 2 ** failures, 4000);
    try {
      response ??= await openEvents(runId, lastSeq, signal);
      if (!response.ok) {
        const error = await errorOf(response);
        if (!RETRYABLE.has(response.status)) throw error;
        if (error.retryAfter) waitMs = Number(error.retryAfter) * 1000;
      } else {
        for await (const event of readEvents(response.body)) {
          const payload = JSON.parse(event.data);
          if (payload.seq <= lastSeq) continue;
          lastSeq = payload.seq;
          failures = 0;
          onEvent(payload);
          if (payload.type === "done") return lastSeq;
        }
      }
    } catch (error) {
      if (signal?.aborted || error instanceof ApiError) throw error;
    }
    response = null;
    failures += 1;
    if (failures > retries) throw new Error(`lost the connection to run ${runId}'s events`);
    onReconnect?.(lastSeq, failures);
    await sleep(waitMs, signal);
  }
}
