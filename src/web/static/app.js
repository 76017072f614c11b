// The page: signing in, sessions and their history, live runs, the spec editor, the gallery.
// Views are chosen by the URL's fragment: #sessions, #sessions/<id>, #new, #gallery, #gallery/<tag>.

import { API, ApiError, auth, authHeaders, errorOf, get, post } from "./api.js";
import { followRun } from "./events.js";
import {
  agentMessageNode, contentNodes, el, eventNode, executionNode, formatCost, formatTime, formatUsage,
} from "./render.js";
import { EXAMPLES, guessFormat, locate } from "./specs.js";

const $ = (id) => document.getElementById(id);
const ACTIVE = new Set(["queued", "running", "cancelling"]);
const RUN_REFRESH_MS = 1500;
const YAML_TYPE = "application/yaml";

const state = {
  signedIn: false,
  signingIn: false,
  sessions: [],
  current: null,
  live: null,            // {runId, controller, status, usage, cost, refreshedAt}
  loaded: null,          // {workflowId, text}: a saved workflow loaded into the editor, unchanged
  formatChosen: false,   // the user picked the spec's format: stop guessing it
  choices: new Map(),    // "start from" option value → {text, format, workflowId}
};

const enc = encodeURIComponent;

// -- notices ---------------------------------------------------------------------------------------------------

function describe(error) {
  if (error instanceof ApiError) {
    const where = error.param ? ` (${error.param})` : "";
    const wait = error.retryAfter ? ` Retry after ${error.retryAfter} s.` : "";
    return `${error.message}${where}.${wait}`;
  }
  return error?.message || String(error);
}

function notify(error) {
  $("notice-text").textContent = describe(error);
  $("notice").hidden = false;
}

function clearNotice() {
  $("notice").hidden = true;
  $("notice-text").textContent = "";
}

// -- signing in ------------------------------------------------------------------------------------------------

/** Ask the API for the sessions: 200 means signed in (with a key, or in local mode without one); 401 asks for a key. */
async function connect() {
  $("loading").hidden = false;
  const withKey = Boolean(auth.key);
  try {
    const page = await get("/sessions", { query: { limit: 100, order: "desc" } });
    signedIn(page.data);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      auth.key = null;
      showSignIn(withKey ? error : null);
    } else {
      notify(error);
    }
  } finally {
    $("loading").hidden = true;
  }
}

function signedIn(sessions) {
  state.signedIn = true;
  state.sessions = sessions;
  const withKey = Boolean(auth.key);
  $("identity").textContent = withKey ? "Signed in with an API key" : "Local mode: no key needed";
  $("sign-out").hidden = !withKey;
  $("sign-in-open").hidden = withKey;
  $("sign-in").hidden = true;
  $("tabs").hidden = false;
  renderSessions();
  route();
}

function showSignIn(error = null, { cancellable = false } = {}) {
  if (!cancellable) state.signedIn = false;
  $("sign-in").hidden = false;
  $("sign-in-cancel").hidden = !cancellable;
  if (!cancellable) {
    $("tabs").hidden = true;
    for (const view of document.querySelectorAll("[data-view-panel]")) view.hidden = true;
    $("identity").textContent = "Not signed in";
    $("sign-out").hidden = true;
    $("sign-in-open").hidden = true;
  }
  $("sign-in-error").textContent = error ? `That key was refused: ${error.message}` : "";
  $("api-key").focus();
}

async function signIn(event) {
  event.preventDefault();
  const key = $("api-key").value.trim();
  if (!key) return;
  auth.key = key;
  state.signingIn = true;
  try {
    const page = await get("/sessions", { query: { limit: 100, order: "desc" } });
    $("api-key").value = "";
    resetAll();
    signedIn(page.data);
    $("main").focus();
  } catch (error) {
    auth.key = null;
    $("sign-in-error").textContent = error instanceof ApiError && error.status === 401
      ? `That key was refused: ${error.message}` : describe(error);
  } finally {
    state.signingIn = false;
  }
}

function signOut() {
  auth.key = null;
  resetAll();
  history.replaceState(null, "", "#sessions");
  connect();
}

/** Forget everything shown for the previous identity. */
function resetAll() {
  stopFollowing();
  clearNotice();
  state.sessions = [];
  state.current = null;
  state.loaded = null;
  state.choices.clear();
  $("session-list").replaceChildren();
  showSessionDetail(null);
  $("gallery-list").replaceChildren();
  $("gallery-status").textContent = "";
  $("spec-result").replaceChildren();
  $("publish-result").textContent = "";
}

// -- views -----------------------------------------------------------------------------------------------------

function showView(name) {
  for (const view of document.querySelectorAll("[data-view-panel]")) view.hidden = view.dataset.viewPanel !== name;
  for (const link of document.querySelectorAll("#tabs [data-view]")) {
    if (link.dataset.view === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function route() {
  if (!state.signedIn) return;
  const [view, ...rest] = window.location.hash.replace(/^#/, "").split("/");
  const argument = rest.length ? decodeURIComponent(rest.join("/")) : "";
  if (view === "new") {
    showView("new");
    loadChoices();
  } else if (view === "gallery") {
    showView("gallery");
    $("gallery-tag").value = argument;
    searchGallery(argument);
  } else {
    showView("sessions");
    if (argument && argument !== state.current?.id) openSession(argument);
  }
}

// -- sessions --------------------------------------------------------------------------------------------------

function renderSessions() {
  $("session-list").replaceChildren(...state.sessions.map((session) => el("li", {},
    el("a", {
      href: `#sessions/${enc(session.id)}`, class: "session-link",
      "aria-current": session.id === state.current?.id ? "true" : null,
    },
    el("span", { class: "title", text: session.name || "Untitled session" }),
    el("span", { class: "meta", text: `${session.id} · ${formatTime(session.created_at)}` })))));
  $("sessions-empty").hidden = state.sessions.length > 0;
}

async function refreshSessions() {
  try {
    state.sessions = (await get("/sessions", { query: { limit: 100, order: "desc" } })).data;
    renderSessions();
  } catch (error) {
    notify(error);
  }
}

function showSessionDetail(session, { missing = false } = {}) {
  $("session-detail").hidden = !session;
  $("session-missing").hidden = !missing;
  $("session-placeholder").hidden = Boolean(session) || missing;
  if (!session) return;
  $("session-title").textContent = session.name || "Untitled session";
  $("session-meta").textContent = `${session.id} · created ${formatTime(session.created_at)}`
    + (session.workflow_id ? ` · workflow ${session.workflow_id}` : "");
}

async function openSession(id) {
  stopFollowing();
  state.current = null;
  renderSessions();
  resetRunPanel();
  $("publish-result").textContent = "";
  let session;
  try {
    session = await get(`/sessions/${enc(id)}`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) showSessionDetail(null, { missing: true });
    else notify(error);
    return;
  }
  state.current = session;
  renderSessions();
  showSessionDetail(session);
  $("session-title").focus();
  await loadHistory();
  try {
    const runs = await get(`/sessions/${enc(id)}/runs`, { query: { limit: 1, order: "desc" } });
    const latest = runs.data[0];
    if (latest && ACTIVE.has(latest.status) && state.current?.id === id && !state.live) follow(latest.id, null);
  } catch (error) {
    notify(error);
  }
}

async function loadHistory() {
  const session = state.current;
  if (!session) return;
  try {
    const page = await get(`/sessions/${enc(session.id)}/messages`, { query: { limit: 50, order: "desc" } });
    if (state.current?.id !== session.id) return;
    const messages = page.data.slice().reverse();
    $("history").replaceChildren(...messages.map(historyNode));
    $("history-empty").hidden = messages.length > 0;
    $("history-more").hidden = !page.has_more;
  } catch (error) {
    notify(error);
  }
}

/** A message of a session's history: the user's text, or a reply with its transcript, code runs, tokens and cost. */
function historyNode(message) {
  if (message.role === "user") {
    return el("li", { class: "entry user" },
      el("p", { class: "who" }, el("span", { class: "name", text: "you" }), " ",
        el("time", { class: "meta", text: formatTime(message.created_at) })),
      contentNodes(message.content));
  }
  const meta = message.metadata || {};
  const inner = meta.messages || [];
  const executions = meta.code_executions || [];
  const facts = [meta.status, formatUsage(meta.usage), formatCost(meta.cost), meta.stop_reason].filter(Boolean);
  return el("li", { class: "entry reply" },
    el("p", { class: "who" }, el("span", { class: "name", text: "reply" }), " ",
      el("time", { class: "meta", text: formatTime(message.created_at) })),
    contentNodes(message.content),
    facts.length ? el("p", { class: "usage", text: facts.join(" · ") }) : null,
    inner.length ? el("details", {},
      el("summary", { text: `Transcript (${inner.length} messages)` }),
      el("ol", { class: "entries" }, inner.map((m) => agentMessageNode(m)))) : null,
    executions.length ? el("details", {},
      el("summary", { text: `Code runs (${executions.length})` }),
      el("ol", { class: "entries" }, executions.map((x) => executionNode(x)))) : null);
}

// -- live runs -------------------------------------------------------------------------------------------------

function resetRunPanel() {
  $("transcript").replaceChildren();
  $("run-status").textContent = "No run yet.";
  $("run-usage").textContent = "";
  $("cancel-run").disabled = true;
  $("send").disabled = false;
}

function stopFollowing() {
  state.live?.controller.abort();
  clearTimeout(state.live?.refreshTimer);
  state.live = null;
}

function showRunState(live) {
  $("run-status").textContent = `Run ${live.runId}: ${live.status}`;
  $("run-status").dataset.status = live.status;
  const usage = totalTokens(live.usage) ? formatUsage(live.usage) : "";
  $("run-usage").textContent = [usage, live.cost !== null ? `cost ${formatCost(live.cost)}` : ""]
    .filter(Boolean).join(" · ");
}

async function sendMessage(event) {
  event.preventDefault();
  const session = state.current;
  const content = $("message-input").value.trim();
  if (!session || !content) return;
  stopFollowing();
  resetRunPanel();
  $("send").disabled = true;
  $("run-status").textContent = "Sending…";
  // Aborted when the page stops following the run (another session opened, signed out): the run goes on.
  const controller = new AbortController();
  let response;
  try {
    response = await fetch(`${API}/sessions/${enc(session.id)}/messages`, {
      method: "POST",
      headers: authHeaders({ "Content-Type": "application/json", Accept: "text/event-stream" }),
      body: JSON.stringify({ content }),
      signal: controller.signal,
    });
    if (!response.ok) throw await errorOf(response);
  } catch (error) {
    $("send").disabled = false;
    $("run-status").textContent = `Not sent: ${describe(error)}`;
    return;
  }
  $("message-input").value = "";
  $("history").append(historyNode({ role: "user", content, created_at: Date.now() / 1000 }));
  $("history-empty").hidden = true;
  await follow(response.headers.get("X-Run-Id"), response, controller);
}

/** Show a run's events as they come, from `first` (a streaming response) or from the run's event stream. */
async function follow(runId, first, controller = new AbortController()) {
  const live = {
    runId, controller, status: "queued",
    usage: { prompt_tokens: 0, completion_tokens: 0 }, cost: null, refreshedAt: 0, refreshTimer: null,
  };
  state.live = live;
  $("send").disabled = true;
  $("cancel-run").disabled = false;
  showRunState(live);
  try {
    await followRun(runId, (event) => onRunEvent(live, event), {
      first, signal: live.controller.signal,
      onReconnect: (seq, attempt) => {
        $("run-status").textContent = `Run ${runId}: connection lost, resuming after event ${seq} (try ${attempt})`;
      },
    });
  } catch (error) {
    if (!live.controller.signal.aborted) notify(error);
  }
  if (state.live !== live) return;
  clearTimeout(live.refreshTimer);
  state.live = null;
  $("cancel-run").disabled = true;
  $("send").disabled = false;
  await loadHistory();
  refreshSessions();
}

function onRunEvent(live, event) {
  if (state.live !== live) return;
  const node = eventNode(event);
  if (node) {
    node.dataset.seq = event.seq;
    node.dataset.type = event.type;
    $("transcript").append(node);
  }
  const data = event.data || {};
  if (event.type === "run.queued" || event.type === "run.started") live.status = data.status || live.status;
  if (event.type === "message" && data.usage) {
    live.usage.prompt_tokens += data.usage.prompt_tokens || 0;
    live.usage.completion_tokens += data.usage.completion_tokens || 0;
    refreshRun(live);
  }
  if (event.type.startsWith("run.") && !ACTIVE.has(data.status)) {
    live.status = data.status;
    if (data.usage) live.usage = data.usage;
    if (data.cost !== undefined) live.cost = data.cost;
  }
  if (event.type === "done") live.status = data.status || live.status;
  showRunState(live);
}

function totalTokens(usage) {
  return usage ? usage.total_tokens ?? (usage.prompt_tokens || 0) + (usage.completion_tokens || 0) : 0;
}

/**
 * The run's tokens and cost so far, as the server counts them: at most every RUN_REFRESH_MS, and once more
 * after the last message. The server's record may lag the stream by a moment; a total below the one summed
 * from the messages is ignored.
 */
async function refreshRun(live) {
  const wait = live.refreshedAt + RUN_REFRESH_MS - Date.now();
  if (wait > 0) {
    live.refreshTimer ??= setTimeout(() => {
      live.refreshTimer = null;
      refreshRun(live);
    }, wait);
    return;
  }
  live.refreshedAt = Date.now();
  try {
    const run = await get(`/runs/${enc(live.runId)}`);
    if (state.live !== live || !ACTIVE.has(live.status)) return;
    if (run.usage && totalTokens(run.usage) >= totalTokens(live.usage)) {
      live.usage = run.usage;
      if (run.cost !== null && run.cost !== undefined) live.cost = run.cost;
      showRunState(live);
    }
  } catch {
    // The stream says how the run ends; a missed refresh only delays the running total.
  }
}

async function cancelRun() {
  const live = state.live;
  if (!live) return;
  $("cancel-run").disabled = true;
  try {
    const run = await post(`/runs/${enc(live.runId)}/cancel`);
    if (ACTIVE.has(live.status)) live.status = run.status;
    showRunState(live);
  } catch (error) {
    notify(error);
    $("cancel-run").disabled = false;
  }
}

// -- publishing and the gallery ----------------------------------------------------------------------------------

function tagsOf(text) {
  return [...new Set(text.split(",").map((tag) => tag.trim()).filter(Boolean))];
}

async function publish(event) {
  event.preventDefault();
  const session = state.current;
  if (!session) return;
  const tags = tagsOf($("publish-tags").value);
  try {
    const item = await post(`/sessions/${enc(session.id)}/publish`, { json: { tags } });
    const result = $("publish-result");
    result.replaceChildren(`Published as ${item.id}`, tags.length ? ` with tags ${item.tags.join(", ")}. ` : ". ");
    if (item.tags.length) {
      result.append(el("a", { href: `#gallery/${enc(item.tags[0])}`, text: `See #${item.tags[0]} in the gallery` }));
    }
  } catch (error) {
    $("publish-result").textContent = `Not published: ${describe(error)}`;
  }
}

async function searchGallery(tag) {
  $("gallery-status").textContent = "Searching…";
  try {
    const page = await get("/gallery", { query: { tag, limit: 50, order: "desc" } });
    $("gallery-list").replaceChildren(...page.data.map(galleryCard));
    const what = tag ? `tagged “${tag}”` : "published";
    $("gallery-status").textContent = page.data.length
      ? `${page.data.length} item${page.data.length === 1 ? "" : "s"} ${what}.` : `No items ${what}.`;
  } catch (error) {
    $("gallery-status").textContent = "";
    notify(error);
  }
}

function galleryCard(item) {
  const session = item.session || {};
  const workflow = session.workflow;
  return el("li", { class: "card" },
    el("h3", { text: session.name || session.id || item.id }),
    el("p", { class: "tags" }, item.tags.map((tag) => el("a", { class: "tag", href: `#gallery/${enc(tag)}`, text: `#${tag}` }))),
    el("p", { class: "meta", text: `${item.id} · published by ${item.published_by} · ${formatTime(item.created_at)}` }),
    el("details", {},
      el("summary", { text: `Conversation (${item.messages.length} messages)` }),
      el("ol", { class: "entries" }, item.messages.map(historyNode))),
    workflow ? el("button", {
      type: "button", text: "Use this workflow",
      onclick: () => {
        loadIntoEditor({ text: JSON.stringify(workflow, null, 2), format: "json", workflowId: null });
        window.location.hash = "#new";
      },
    }) : null);
}

// -- the spec editor ----------------------------------------------------------------------------------------------

function specFormat() {
  return document.querySelector("input[name=format]:checked")?.value || "yaml";
}

function setFormat(format) {
  for (const radio of document.querySelectorAll("input[name=format]")) radio.checked = radio.value === format;
}

function loadIntoEditor(choice) {
  $("spec").value = choice.text;
  setFormat(choice.format);
  state.formatChosen = false;
  state.loaded = choice.workflowId ? { workflowId: choice.workflowId, text: choice.text } : null;
  $("spec-result").replaceChildren();
}

async function loadChoices() {
  const examples = $("examples-group");
  if (!examples.children.length) {
    EXAMPLES.forEach((example, index) => {
      state.choices.set(`example:${index}`, { text: example.text, format: example.format, workflowId: null });
      examples.append(el("option", { value: `example:${index}`, text: example.label }));
    });
  }
  try {
    const [workflows, gallery] = await Promise.all([
      get("/workflows", { query: { limit: 100, order: "desc" } }),
      get("/gallery", { query: { limit: 100, order: "desc" } }),
    ]);
    $("workflows-group").replaceChildren(...workflows.data.map((workflow) => {
      const value = `workflow:${workflow.id}`;
      state.choices.set(value, { text: JSON.stringify(workflow.spec, null, 2), format: "json", workflowId: workflow.id });
      return el("option", { value, text: `${workflow.name} (${workflow.type}) · ${workflow.id}` });
    }));
    $("gallery-group").replaceChildren(...gallery.data.filter((item) => item.session?.workflow).map((item) => {
      const value = `gallery:${item.id}`;
      state.choices.set(value, { text: JSON.stringify(item.session.workflow, null, 2), format: "json", workflowId: null });
      const tags = item.tags.length ? ` #${item.tags.join(" #")}` : "";
      return el("option", { value, text: `${item.session.workflow.name || item.id}${tags} · ${item.id}` });
    }));
  } catch (error) {
    notify(error);
  }
  if (!$("spec").value) loadIntoEditor(state.choices.get("example:0"));
}

function selectInEditor(path, message) {
  const editor = $("spec");
  const range = locate(editor.value, path, message);
  editor.focus();
  if (range) editor.setSelectionRange(range[0], range[1]);
}

/** The problems of a spec, each with its path (a button that finds it in the editor) and message. */
function showSpecProblems(problems, heading) {
  $("spec-result").replaceChildren(
    el("h3", { class: "error", text: heading }),
    el("ul", { class: "problems" }, problems.map((problem) => el("li", {},
      el("button", {
        type: "button", class: "path", text: problem.path || "(the whole spec)",
        onclick: () => selectInEditor(problem.path, problem.message),
      }),
      el("span", { text: ` ${problem.message}` })))));
}

function showSpecError(error) {
  if (error instanceof ApiError && error.errors.length) {
    showSpecProblems(error.errors, `The spec has ${error.errors.length} problem${error.errors.length === 1 ? "" : "s"}`);
  } else if (error instanceof ApiError && error.status < 500) {
    showSpecProblems([{ path: error.param || "", message: error.message }], "The spec was refused");
  } else {
    $("spec-result").replaceChildren(el("p", { class: "error", text: describe(error) }));
  }
}

function specBody() {
  return { text: $("spec").value, contentType: specFormat() === "json" ? "application/json" : YAML_TYPE };
}

async function validateSpec() {
  try {
    const result = await post("/workflows/validate", specBody());
    if (result.valid) $("spec-result").replaceChildren(el("p", { class: "ok", text: "The spec is valid." }));
    else showSpecProblems(result.errors, `The spec has ${result.errors.length} problem${result.errors.length === 1 ? "" : "s"}`);
  } catch (error) {
    showSpecError(error);
  }
}

async function createSession(event) {
  event.preventDefault();
  const name = $("new-name").value.trim() || null;
  let workflowId = state.loaded && state.loaded.text === $("spec").value ? state.loaded.workflowId : null;
  try {
    if (!workflowId) workflowId = (await post("/workflows", specBody())).id;
    const session = await post("/sessions", { json: { name, workflow_id: workflowId } });
    $("spec-result").replaceChildren();
    $("new-name").value = "";
    state.sessions.unshift(session);
    window.location.hash = `#sessions/${enc(session.id)}`;
  } catch (error) {
    showSpecError(error);
  }
}

// -- wiring ----------------------------------------------------------------------------------------------------

function wire() {
  // The fragment chooses the view, so the skip link moves the focus instead of following its href.
  document.querySelector(".skip-link").addEventListener("click", (event) => {
    event.preventDefault();
    $("main").focus();
  });
  $("sign-in-form").addEventListener("submit", signIn);
  $("sign-in-open").addEventListener("click", () => showSignIn(null, { cancellable: true }));
  $("sign-in-cancel").addEventListener("click", () => {
    $("sign-in").hidden = true;
  });
  $("sign-out").addEventListener("click", signOut);
  $("notice-close").addEventListener("click", clearNotice);
  $("sessions-refresh").addEventListener("click", refreshSessions);
  $("message-form").addEventListener("submit", sendMessage);
  $("message-input").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) $("message-form").requestSubmit();
  });
  $("cancel-run").addEventListener("click", cancelRun);
  $("publish-form").addEventListener("submit", publish);
  $("gallery-search").addEventListener("submit", (event) => {
    event.preventDefault();
    const tag = $("gallery-tag").value.trim();
    const hash = tag ? `#gallery/${enc(tag)}` : "#gallery";
    if (window.location.hash === hash) searchGallery(tag);
    else window.location.hash = hash;
  });
  $("gallery-all").addEventListener("click", () => {
    $("gallery-tag").value = "";
    if (window.location.hash === "#gallery") searchGallery("");
    else window.location.hash = "#gallery";
  });
  $("start-from").addEventListener("change", (event) => {
    const choice = state.choices.get(event.target.value);
    if (choice) loadIntoEditor(choice);
  });
  $("spec").addEventListener("input", () => {
    if (!state.formatChosen) setFormat(guessFormat($("spec").value));
  });
  for (const radio of document.querySelectorAll("input[name=format]")) {
    radio.addEventListener("change", () => {
      state.formatChosen = true;
    });
  }
  $("validate").addEventListener("click", validateSpec);
  $("new-form").addEventListener("submit", createSession);
  window.addEventListener("hashchange", route);
  // A key refused while signed in (revoked, say): ask for another. Signing in handles its own refusals.
  window.addEventListener("autobots:unauthorized", (event) => {
    if (state.signedIn && auth.key && !state.signingIn) {
      auth.key = null;
      resetAll();
      showSignIn(event.detail);
    }
  });
}

wire();
connect();
