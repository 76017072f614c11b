"""4. Sandbox: warm execution vs raw `docker exec` / `bwrap`; a run's first execution vs raw `docker run`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench._common import clean_env, fmt, run_json

# Executions of about 10 ms differ by a millisecond or two from one to the next: 15 samples keep the medians
# steady.
_REPEATS = 15

WARM_TARGET = 1.2
FIRST_TARGET = 0.3


def run(quick: bool, out: Path) -> dict[str, Any]:
    title = "4. Sandbox"
    if quick:
        return {"title": title, "figures": {"skipped": "quick mode"},
                "markdown": "Skipped in quick mode (`--quick` does not start containers); run without `--quick`."}
    data = run_json(["-m", "bench.sandbox_run", "--workdir", str(out / "sandbox"), "--repeats", str(_REPEATS)],
                    timeout_s=600, log=out / "sandbox.log",
                    env=clean_env(AUTOBOTS_CONFIG=str(out / "no-config.json")))
    md = ["Code: `print(sum(range(1000)))` as a python block through `SandboxManager.open_executor()` → "
          "`SandboxExecutor.execute_code_blocks()` (the path a userproxy agent takes; `bench/sandbox_run.py`), "
          f"median of {_REPEATS}; warm executions are timed once the warm pool has been topped up again (no container "
          "being created meanwhile), each followed at once by its raw `docker exec` or `bwrap` sample (the two "
          "sides alternate). Executions reach the sandbox agent (`src/sandbox/_agent_script.py`): PID 1 of the "
          "run's docker container, or of the run's resident bubblewrap sandbox, which the process backend starts "
          "after a run's first execution (that one runs in a fresh sandbox). Raw baselines use the CLI: `docker exec <running container> python3 -c …`, "
          "`docker run --rm --network none <image> python3 -c …`, and `bwrap` with the same arguments as the "
          "process backend (`bwrap_args`) but without `prlimit` and the uid switch. For reference only (no "
          "target): the same exec through the docker SDK in-process (no CLI process to start), and the process "
          "backend's whole command line (`unshare --setuid` uid switch + `prlimit` + `bwrap`).", ""]
    figures: dict[str, Any] = {"raw": data}
    docker = data["docker"]
    md += ["| | autobots (s) | raw (s) | ratio | target |", "|---|---:|---:|---:|---|"]
    if "skipped" in docker:
        md.append(f"| docker | skipped: {docker['skipped']} | | | |")
    else:
        warm = docker["warm_median"] / docker["raw_exec_median"]
        first = docker["first_median"] / docker["raw_run_median"]
        figures.update(docker_warm_ratio=warm, docker_first_ratio=first)
        md.append(f"| docker, warm execution vs `docker exec` | {fmt(docker['warm_median'], 3)} | "
                  f"{fmt(docker['raw_exec_median'], 3)} | **{fmt(warm)}×** | ≤ {WARM_TARGET}×: "
                  f"{'met' if warm <= WARM_TARGET else 'missed'} |")
        md.append(f"| docker, a run's first execution (warm pool) vs `docker run` | {fmt(docker['first_median'], 3)} | "
                  f"{fmt(docker['raw_run_median'], 3)} | **{fmt(first)}×** | ≤ {FIRST_TARGET}×: "
                  f"{'met' if first <= FIRST_TARGET else 'missed'} |")
        if "raw_exec_api_median" in docker:
            api = docker["warm_median"] / docker["raw_exec_api_median"]
            figures.update(docker_warm_vs_api_ratio=api)
            md.append(f"| docker, warm execution vs SDK exec (reference) | {fmt(docker['warm_median'], 3)} | "
                      f"{fmt(docker['raw_exec_api_median'], 3)} | {fmt(api)}× | |")
    process = data["process"]
    if "skipped" in process:
        md.append(f"| process | skipped: {process['skipped']} | | | |")
    else:
        warm = process["warm_median"] / process["raw_bwrap_median"]
        first = process["first_median"] / process["raw_bwrap_median"]
        figures.update(process_warm_ratio=warm, process_first_ratio=first)
        md.append(f"| process, warm execution vs `bwrap` | {fmt(process['warm_median'], 3)} | "
                  f"{fmt(process['raw_bwrap_median'], 3)} | **{fmt(warm)}×** | ≤ {WARM_TARGET}×: "
                  f"{'met' if warm <= WARM_TARGET else 'missed'} |")
        md.append(f"| process, a run's first execution vs `bwrap` | {fmt(process['first_median'], 3)} | "
                  f"{fmt(process['raw_bwrap_median'], 3)} | {fmt(first)}× | (a fresh sandbox; no pool) |")
        if "raw_bwrap_full_median" in process:
            full = process["warm_median"] / process["raw_bwrap_full_median"]
            figures.update(process_warm_vs_full_ratio=full)
            md.append(f"| process, warm execution vs uid switch + `prlimit` + `bwrap` (reference) | "
                      f"{fmt(process['warm_median'], 3)} | {fmt(process['raw_bwrap_full_median'], 3)} | "
                      f"{fmt(full)}× | |")
    return {"title": title, "figures": figures, "markdown": "\n".join(md)}
