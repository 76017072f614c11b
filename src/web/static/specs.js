// Example workflow specs for the editor, and finding where an error's path lies in a spec's text.

export const EXAMPLES = [
  {
    label: "Coder with a sandbox (autonomous, YAML)",
    format: "yaml",
    text: `name: coder
type: autonomous
agents:
  - name: coder
    kind: assistant
    system_message: You are a python coder.
  - name: user_proxy
    kind: userproxy
    code_execution:
      timeout_s: 30
sender: user_proxy
receiver: coder
`,
  },
  {
    label: "Draft, critique, final (pipeline, JSON)",
    format: "json",
    text: JSON.stringify({
      name: "summarize",
      type: "pipeline",
      modules: { critic: { system_message: "You find the weakest claim in a text and say why." } },
      pipeline: {
        steps: [
          { id: "draft", module: "enhancer", inputs: ["task"] },
          { id: "critique", module: "critic", inputs: ["draft"] },
          { id: "final", module: "enhancer", inputs: ["draft", "critique"] },
        ],
        output: "final",
      },
    }, null, 2),
  },
  {
    label: "Plan, review, execute (strategy, YAML)",
    format: "yaml",
    text: `name: plan-review-execute
type: strategy
agents:
  - name: planner
  - name: reviewer
  - name: executor
strategy:
  template: planner_reviewer_executor
  max_rejects: 2
`,
  },
  {
    label: "A company (hierarchy, YAML)",
    format: "yaml",
    text: `name: company
type: hierarchy
agents:
  - {name: board, system_message: You chair the board.}
  - {name: research, system_message: You lead research.}
  - {name: engineering, system_message: You lead engineering.}
hierarchy:
  root: board
  members:
    board:
      children: [research, engineering]
      privileges: {max_tokens: 200000, spawn: {templates: [worker], max_children: 2}}
    research: {privileges: {max_tokens: 50000}}
    engineering: {privileges: {max_tokens: 80000}}
  templates:
    worker: {system_message: You do one job well.}
`,
  },
];

/** "json" when the text looks like a JSON document, else "yaml". */
export function guessFormat(text) {
  return /^\s*[[{]/.test(text) ? "json" : "yaml";
}

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * Where an error of the spec lies in its text, best effort: `[start, end]` of the last key of `path`
 * (`agents[1].model`: the key `model` after the key `agents`), or of the line a parser's message names
 * (`line 3, column 5`); null when not found.
 */
export function locate(text, path, message = "") {
  const line = [...String(message).matchAll(/line (\d+)/g)].pop();
  if (line) {
    const lines = text.split("\n");
    const index = Math.min(Number(line[1]), lines.length) - 1;
    const start = lines.slice(0, index).reduce((sum, l) => sum + l.length + 1, 0);
    return [start, start + lines[index].length];
  }
  let found = null;
  let position = 0;
  for (const key of String(path || "").match(/[^.[\]]+/g) || []) {
    if (/^\d+$/.test(key)) continue;
    const pattern = new RegExp(`(?<![\\w-])["']?${escapeRegExp(key)}["']?\\s*:`, "g");
    pattern.lastIndex = position;
    const match = pattern.exec(text);
    if (!match) break;
    found = [match.index, match.index + match[0].length];
    position = pattern.lastIndex;
  }
  return found;
}
