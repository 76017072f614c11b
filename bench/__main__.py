"""`python -m bench [--quick] [--output FILE] [--only SECTION ... [--merge]]`: run the benchmarks, write RESULTS.md.

Sections: engine (1), concurrency (2, with memory 5), readpath (3), sandbox (4), profile (6), pipeline (7), strategy (8),
router (9), scaling (10: needs the local PostgreSQL).
Full mode writes bench/RESULTS.md and raw outputs under bench/out/ (gitignored). `--quick` uses tiny
counts (finishes in well under a minute, skips the sandbox) so CI can check that the command still works;
its figures mean nothing. `--only` writes a file of those sections alone; with `--merge` it replaces just those
sections and their summary rows in the existing file (and refreshes the notes), keeping the other sections'
figures. A section that fails is reported as failed in the file and makes the exit status 1.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from bench._common import BENCH, fmt

SECTIONS = ["engine", "concurrency", "readpath", "sandbox", "profile", "pipeline", "strategy", "router", "scaling"]
PACKAGES = ["autogen-agentchat", "autogen-core", "autogen-ext", "openai", "fastapi", "starlette", "uvicorn",
            "sqlalchemy", "sqlmodel", "aiosqlite", "pydantic", "httpx", "docker"]


def machine() -> list[str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        kb = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, IndexError, ValueError):
        pass
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    tools = []
    for tool, args in (("docker", ["docker", "version", "--format", "{{.Server.Version}}"]),
                       ("bwrap", ["bwrap", "--version"]), ("wrk", ["wrk", "-v"]), ("py-spy", ["py-spy", "--version"])):
        if shutil.which(tool) is None:
            tools.append(f"{tool}: not installed")
            continue
        try:
            done = subprocess.run(args, capture_output=True, text=True, timeout=20, check=False)
            text = (done.stdout or done.stderr).strip().splitlines()
            tools.append(f"{tool}: {text[0] if text else 'installed'}")
        except (OSError, subprocess.TimeoutExpired):
            tools.append(f"{tool}: installed")
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=False, cwd=BENCH.parent).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "src"], capture_output=True, text=True,
                               timeout=10, check=False, cwd=BENCH.parent).stdout.strip()
    except OSError:
        commit, dirty = "unknown", ""
    return [
        f"- CPU: {cpu}, {os.cpu_count()} logical cores ({platform.machine()}); memory {mem}",
        f"- OS: {platform.platform()}",
        f"- Python {platform.python_version()} ({platform.python_implementation()})",
        f"- Packages: {', '.join(versions)}",
        f"- Tools: {'; '.join(tools)}",
        f"- Code: commit {commit or 'unknown'}{' with uncommitted changes in src/' if dirty else ''}",
    ]


def round_ratios(rounds: list[dict[str, Any]]) -> str:
    return ", ".join(f"{fmt(r['ratio'])}×" for r in rounds)


def summary(results: dict[str, dict[str, Any]]) -> list[str]:
    rows = ["| measurement | figure | target | |", "|---|---:|---|---|"]

    def row(name: str, value: str, target: str, met: bool | None) -> None:
        rows.append(f"| {name} | {value} | {target} | {'met' if met else 'missed' if met is not None else ''} |")

    e = results.get("engine", {}).get("figures", {})
    if "wall_ratio" in e:
        rounds = e.get("rounds", [])
        row(f"1. engine overhead, wall time service / library, median of {len(rounds)} round(s)",
            f"{fmt(e['wall_ratio'])}× (rounds {round_ratios(rounds)})", "≤ 1.25×", e["met"])
        row("1. CPU per model turn, service / library",
            f"{fmt(e['service_cpu_ms_per_turn'], 1)} / {fmt(e['library_cpu_ms_per_turn'], 1)} ms", "", None)
    c = results.get("concurrency", {}).get("figures", {})
    if "ratio" in c:
        rounds = c.get("rounds", [])
        row(f"2. makespan of {c['runs']} runs, service / library floor, median of {len(rounds)} round(s)",
            f"{fmt(c['ratio'])}× (rounds {round_ratios(rounds)}; medians {fmt(c['service_makespan_s'])} / "
            f"{fmt(c['library_floor_s'])} s)", "≤ 1.25×", c["ratio_met"])
        row("2. lost messages", str(c["lost_messages"]), "0", c["lost_messages"] == 0)
        row("2. read latency under load, p50 / p99", f"{fmt(c['read_p50_ms'], 1)} / {fmt(c['read_p99_ms'], 1)} ms",
            "p99 ≤ 100 ms", c["p99_met"])
        row("2. model turns per CPU-second, service / library",
            f"{fmt(c['service_turns_per_cpu_s'], 0)} / {fmt(c['library_turns_per_cpu_s'], 0)}", "", None)
        row(f"5. server RSS idle / {c['runs']} runs in flight",
            f"{fmt(c['rss_idle_mb'], 0)} / {fmt(c['rss_peak_mb'], 0)} MiB", "", None)
    r = results.get("readpath", {}).get("figures", {})
    if "share" in r:
        row("3. read path, service / bare FastAPI (requests/s)",
            f"{fmt(r['service_rps'], 0)} / {fmt(r['bare_rps'], 0)} = {fmt(r['share'] * 100, 1)} %", "≥ 40 %", r["met"])
    s = results.get("sandbox", {}).get("figures", {})
    for key, label, target, limit in (("docker_warm_ratio", "4. docker warm execution / docker exec", "≤ 1.2×", 1.2),
                                      ("docker_first_ratio", "4. docker first execution / docker run", "≤ 0.3×", 0.3),
                                      ("process_warm_ratio", "4. process warm execution / bwrap", "≤ 1.2×", 1.2)):
        if key in s:
            row(label, f"{fmt(s[key])}×", target, s[key] <= limit)
    if "skipped" in s:
        row("4. sandbox", f"skipped ({s['skipped']})", "", None)
    p = results.get("pipeline", {}).get("figures", {})
    if "vs_sequential" in p:
        row("7. pipeline makespan, ready steps at once / one after another", f"{fmt(p['vs_sequential'])}×",
            "≤ 0.35× (0.40× is the floor)", p["met_vs_sequential"])
        row("7. pipeline makespan, service / asyncio floor", f"{fmt(p['vs_library'])}×", "≤ 1.15×",
            p["met_vs_library"])
        row("7. pipeline overhead, CPU per step", f"{fmt(p['overhead_cpu_ms_per_step'])} ms", "", None)
    st = results.get("strategy", {}).get("figures", {})
    if "cpu_ratio" in st:
        row("8. strategy CPU per model turn / round robin", f"{fmt(st['cpu_ratio'])}× "
            f"({fmt(st['transition_cpu_ms'])} ms per transition)", "≤ 1.1×", st["met"])
    ro = results.get("router", {}).get("figures", {})
    if "success_ratio" in ro:
        row(f"9. router (simulated, {ro['tasks']} sub-tasks): thompson's success / cost against best",
            f"{fmt(ro['success_ratio'] * 100, 1)} % / {fmt(ro['cost_ratio'] * 100, 1)} %", "≥ 95 % at ≤ 50 %",
            ro["cost_bar_met"])
        row("9. router: thompson's regret, second half / first half", f"{fmt(ro['regret_ratio'])}×", "≤ 0.5×",
            ro["regret_bar_met"])
    sc = results.get("scaling", {}).get("figures", {})
    if "scaling_ratio" in sc:
        row(f"10. scale-out: makespan of {sc['runs']} runs, 2 workers / 1 worker", f"{fmt(sc['scaling_ratio'])}×",
            "≤ 0.6×", sc["scaling_met"])
        row("10. scale-out: model turns per CPU-second, 2 workers",
            f"{fmt(sc['two_workers']['turns_per_cpu_s'], 0)}", "≥ 220", sc["turns_per_cpu_met"])
        row("10. scale-out: engine overhead per run (ms CPU, with PostgreSQL)",
            f"{fmt(sc['two_workers']['overhead_ms_per_run'], 1)}", "", None)
        row("10. scale-out: cancel across replicas, p50 / p99",
            f"{fmt(sc['cancel_p50_s'] * 1000, 0)} / {fmt(sc['cancel_p99_s'] * 1000, 0)} ms", "≤ 2 s", sc["cancel_met"])
        row("10. scale-out: a dead worker's runs running again elsewhere, at most",
            f"{fmt(sc['pickup_max_s'] or 0)} s", "≤ 15 s", sc["pickup_met"])
    return rows


_NUMBERED_SECTION = re.compile(r"^## (\d+)\. ")
_NUMBERED_ROW = re.compile(r"^\| (\d+)\. ")
_REMEASURED = "Re-measured: "


def split_results(text: str) -> tuple[list[str], list[str], list[tuple[str, list[str]]], list[str]]:
    """A results file's parts: what comes before `## Summary`, the summary's lines, the numbered sections
    (number, lines) in file order, and what follows them (the notes)."""
    lines = text.split("\n")
    i = lines.index("## Summary") if "## Summary" in lines else len(lines)
    head, i = lines[:i], i + 1
    summary: list[str] = []
    while i < len(lines) and not lines[i].startswith("## "):
        summary.append(lines[i])
        i += 1
    sections: list[tuple[str, list[str]]] = []
    while i < len(lines) and (match := _NUMBERED_SECTION.match(lines[i])):
        block = [lines[i]]
        i += 1
        while i < len(lines) and not lines[i].startswith("## "):
            block.append(lines[i])
            i += 1
        sections.append((match.group(1), block))
    return head, summary, sections, lines[i:]


def merge(existing: str, fresh: str, *, note: str) -> str:
    """`existing` with the numbered sections and summary rows that `fresh` has replaced by `fresh`'s, a line in
    its head saying which sections were re-measured when (`note`), and `fresh`'s notes (its own when `fresh`
    has none: a quick run)."""
    head, summary, sections, notes = split_results(existing)
    _, new_summary, new_sections, new_tail = split_results(fresh)
    renewed = {number for number, _ in new_sections}
    new_rows: dict[str, list[str]] = {}
    for line in new_summary:
        if match := _NUMBERED_ROW.match(line):
            new_rows.setdefault(match.group(1), []).append(line)
    rows: list[str] = []
    for line in summary:
        match = _NUMBERED_ROW.match(line)
        if match is None or match.group(1) not in renewed:
            rows.append(line)
        elif match.group(1) in new_rows:
            rows += new_rows.pop(match.group(1))
    while rows and not rows[-1]:
        rows.pop()
    rows += [row for number in new_rows for row in new_rows[number]] + [""]
    fresh_blocks = dict(new_sections)
    blocks = [fresh_blocks.pop(number, block) for number, block in sections] + list(fresh_blocks.values())
    # An earlier merge's line stays unless every section it names was re-measured now.
    kept: list[str] = []
    for line in head:
        if line.startswith(_REMEASURED) and set(re.findall(r"\d+", line.split(" on ")[0])) <= renewed:
            if kept and not kept[-1]:
                kept.pop()
            continue
        kept.append(line)
    dated = next((i for i, line in enumerate(kept) if line.startswith("Date: ")), 0)
    head = [*kept[:dated + 1], "", _REMEASURED + note, *kept[dated + 1:]]
    return "\n".join([*head, "## Summary", *rows, *(line for block in blocks for line in block), *(new_tail or notes)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke mode: tiny counts, no sandbox")
    parser.add_argument("--output", type=Path, default=None, help="results file (default bench/RESULTS.md)")
    parser.add_argument("--out-dir", type=Path, default=None, help="raw outputs (default bench/out[/quick])")
    parser.add_argument("--only", nargs="*", choices=SECTIONS, help="run only these sections")
    parser.add_argument("--merge", action="store_true",
                        help="with --only: replace only these sections (and their summary rows) in the existing results "
                             "file, keeping the others as they are")
    args = parser.parse_args(argv)
    output = args.output or (BENCH / "out" / "RESULTS.quick.md" if args.quick else BENCH / "RESULTS.md")
    out = (args.out_dir or (BENCH / "out" / ("quick" if args.quick else "full"))).resolve()
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    results: dict[str, dict[str, Any]] = {}
    failed = False
    for name in args.only or SECTIONS:
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            module = __import__(f"bench.{name}", fromlist=["run"])
            results[name] = module.run(args.quick, out)
        except Exception as exc:
            failed = True
            results[name] = {"title": name, "figures": {"error": repr(exc)},
                             "markdown": f"**Failed**: `{type(exc).__name__}: {str(exc)[:1500]}`"}
            traceback.print_exc()
        results[name]["seconds"] = time.perf_counter() - t0
        print(f"[bench] {name} done in {results[name]['seconds']:.1f} s", file=sys.stderr, flush=True)
    (out / "results.json").write_text(json.dumps({k: v.get("figures") for k, v in results.items()}, indent=1,
                                                 default=str))
    machine_lines = machine()
    command = "python -m bench" + (" --quick" if args.quick else "") + (
        f" --only {' '.join(args.only)}" if args.only else "")
    lines = [
        "# autobots benchmarks" + (" (quick smoke run: the figures mean nothing)" if args.quick else ""), "",
        f"Date: {datetime.datetime.fromtimestamp(started).astimezone().isoformat(timespec='seconds')}; "
        f"took {time.time() - started:.0f} s.", "",
        "Reproduce (from the repository root, in the project's virtualenv; `apt-get install -y wrk` and "
        "`pip install -r bench/requirements.txt` for the load tool and the profiler):", "",
        f"    {command}", "",
        "Raw outputs (JSON figures, server logs, py-spy stacks) go to `bench/out/` (gitignored). "
        "Benchmarks are not tests: nothing here is asserted in the test suite.", "",
        "## Machine", "", *machine_lines, "",
        "## Summary", "", *summary(results), "",
    ]
    order = ["engine", "concurrency", "readpath", "sandbox", "profile", "pipeline", "strategy", "router", "scaling"]
    for name in [n for n in order if n in results]:
        section = results[name]
        lines += [f"## {section['title']}", "", section["markdown"], ""]
        if name == "concurrency" and "extra" in section:
            lines += [f"## {section['extra']['title']}", "", section["extra"]["markdown"], ""]
        elif name == "concurrency":
            lines += ["## 5. Memory", "", "Not measured: the concurrency section failed.", ""]
    notes = BENCH / "NOTES.md"
    if notes.exists() and not args.quick:
        lines += [notes.read_text().strip(), ""]
    text = "\n".join(lines)
    if args.merge and args.only and output.exists():
        took = time.time() - started
        numbers = sorted({number for number, _ in split_results(text)[2]}, key=int)
        text = merge(output.read_text(), text, note=(
            f"section{'s' if len(numbers) > 1 else ''} {', '.join(numbers)} on "
            f"{datetime.datetime.fromtimestamp(started).astimezone().isoformat(timespec='seconds')} (took {took:.0f} s) "
            f"with `{command} --merge`; code: {machine_lines[-1].removeprefix('- Code: ')}."))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    print(f"[bench] wrote {output} ({shlex.quote(str(out))} has the raw outputs)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
