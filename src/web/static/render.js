// DOM building. Every text that comes from the server (agents' messages, code, output, names, errors) goes
// into the page as text nodes or textContent, never as HTML.

/** An element: `attrs` sets attributes (`class`, `text`, `on<event>` listeners too); children are nodes or text. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = String(value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

export function formatTime(unixSeconds) {
  return unixSeconds ? new Date(unixSeconds * 1000).toLocaleString() : "";
}

export function formatCost(usd) {
  if (usd === null || usd === undefined) return "";
  return `$${Number(usd).toFixed(usd > 0 && usd < 0.01 ? 6 : 4)}`;
}

export function formatUsage(usage) {
  if (!usage) return "";
  const prompt = usage.prompt_tokens || 0;
  const completion = usage.completion_tokens || 0;
  const total = usage.total_tokens ?? prompt + completion;
  return `${total} tokens (${prompt} prompt, ${completion} completion)`;
}

/** A stable colour class per agent name, so one agent's messages look alike. */
export function agentClass(name) {
  let hash = 0;
  for (const char of String(name)) hash = (hash * 31 + char.codePointAt(0)) >>> 0;
  return `agent-${hash % 6}`;
}

const FENCE = /```([\w+.-]*)[^\n]*\n([\s\S]*?)```/g;

function codeBlock(code, language, label) {
  return el("figure", { class: "code" },
    el("figcaption", { text: label || language || "code" }),
    el("pre", {}, el("code", { text: code })));
}

/** A message's text as paragraphs and code blocks (fenced with ```). */
export function contentNodes(text) {
  const nodes = [];
  let at = 0;
  const body = String(text ?? "");
  const addText = (part) => {
    if (part.trim()) nodes.push(el("div", { class: "text", text: part.trim() }));
  };
  for (const match of body.matchAll(FENCE)) {
    addText(body.slice(at, match.index));
    nodes.push(codeBlock(match[2].replace(/\n$/, ""), match[1]));
    at = match.index + match[0].length;
  }
  addText(body.slice(at));
  return nodes;
}

/** A code execution: the code, its output and exit code. */
export function executionNode(execution, tag = "li") {
  const ok = execution.exit_code === 0;
  return el(tag, { class: `entry execution ${ok ? "ok" : "failed"}` },
    el("p", { class: "who" },
      el("span", { class: "name", text: execution.agent || "sandbox" }),
      ` ran ${execution.language || "code"} `,
      el("span", { class: "exit-code", text: `exit code ${execution.exit_code}` })),
    codeBlock(execution.code || "", execution.language, "code"),
    codeBlock(execution.output || "", "", "output"));
}

/** One agent message of a transcript: who, what kind, the content, the tokens it used. */
export function agentMessageNode(message, tag = "li") {
  const source = message.source || "agent";
  return el(tag, { class: `entry message ${agentClass(source)}` },
    el("p", { class: "who" },
      el("span", { class: "name", text: source }),
      message.type && message.type !== "TextMessage" ? el("span", { class: "kind", text: ` ${message.type}` }) : null),
    contentNodes(message.content),
    message.usage ? el("p", { class: "usage", text: formatUsage(message.usage) }) : null);
}

function stepLine(kind, ...parts) {
  return el("li", { class: `entry event ${kind}` }, ...parts);
}

const strong = (text) => el("strong", { text });

function compact(value) {
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** The transcript entry for a run event, or null for events that show only in the status bar. */
export function eventNode(event) {
  const data = event.data || {};
  switch (event.type) {
    case "message":
      return agentMessageNode(data);
    case "code.execution":
      return executionNode(data);
    case "run.queued":
    case "run.started":
    case "done":
      return null;
    case "run.completed":
    case "run.incomplete":
    case "run.failed":
    case "run.cancelled": {
      const status = event.type.slice(4);
      return stepLine(`run-end ${status}`, "Run ", strong(status),
        data.stop_reason ? `: ${data.stop_reason}` : "",
        data.error ? ` (${data.error.type}: ${data.error.message})` : "",
        data.usage ? ` · ${formatUsage(data.usage)}` : "",
        data.cost !== undefined ? ` · ${formatCost(data.cost)}` : "");
    }
    case "step.started":
      return stepLine("step", "Step ", strong(data.id), " started",
        data.model ? ` · model ${data.model}` : "", data.inputs ? ` · inputs ${data.inputs.join(", ")}` : "");
    case "step.completed": {
      const node = stepLine("step done", "Step ", strong(data.id), " completed",
        data.seconds !== undefined ? ` in ${data.seconds} s` : "", data.model ? ` · model ${data.model}` : "",
        data.usage ? ` · ${formatUsage(data.usage)}` : "", data.cost ? ` · ${formatCost(data.cost)}` : "",
        data.attempts ? ` · ${data.attempts} attempt(s)` : "");
      if (data.output) node.append(el("details", {}, el("summary", { text: "Output" }), ...contentNodes(data.output)));
      return node;
    }
    case "step.failed":
      return stepLine("step failed", "Step ", strong(data.id), " failed",
        data.error ? `: ${data.error.type}: ${data.error.message}` : "");
    case "strategy.transition":
      return stepLine("strategy", "Strategy: ", strong(data.from), " → ", strong(data.to),
        data.rule !== undefined ? ` (rule: ${compact(data.rule)})` : "");
    case "strategy.reprompt":
      return stepLine("strategy warn", "Re-prompt in state ", strong(data.state), ` (attempt ${data.attempt}): `,
        data.error || "", data.expected ? `; expected ${data.expected}` : "");
    case "hierarchy.delegate":
      return stepLine("hierarchy", "Delegation ", strong(data.from), " → ", strong(data.path),
        data.task ? `: ${data.task}` : "");
    case "hierarchy.result":
      return stepLine("hierarchy", "Result from ", strong(data.path),
        data.error ? `: error: ${data.error}` : `: ${data.result ?? ""}`,
        data.spent !== undefined ? ` · spent ${data.spent} tokens` : "");
    case "hierarchy.spawn":
      return stepLine("hierarchy", "Spawn ", strong(data.path), ` from template ${data.template}`,
        data.refused ? `: refused: ${data.refused}` : "");
    case "hierarchy.terminate":
      return stepLine("hierarchy", "Terminated ", strong(data.path));
    case "plan":
      return stepLine("plan", `Plan (attempt ${data.attempt}): `,
        el("ol", {}, (data.subtasks || []).map((s) => el("li", {},
          strong(s.id), ` [${s.kind}] ${s.instruction}`,
          s.depends_on?.length ? ` ← ${s.depends_on.join(", ")}` : ""))));
    case "plan.invalid":
      return stepLine("plan warn", `Invalid plan (attempt ${data.attempt}): `, (data.errors || []).join("; "));
    case "router.choice":
      return stepLine("router", "Router: sub-task ", strong(data.subtask), ` (${data.kind}) → `, strong(data.pick),
        ` by ${data.policy}`, data.explored ? " (exploring)" : "");
    case "router.outcome":
      return stepLine("router", "Outcome of sub-task ", strong(data.subtask_id), ` on ${data.model}: success `,
        String(data.success), data.reward !== undefined ? ` · reward ${Number(data.reward).toFixed(3)}` : "");
    default:
      return stepLine("other", strong(event.type), ` ${compact(data)}`);
  }
}
