"""Issue 21's four figures, measured side by side in one run.

1. ``tinklet --version`` wall time against ``python -c pass`` (goal: at most 3x),
2. ``tinklet plugins list`` wall time against ``python -c pass`` (goal: at most 4x),
3. the resident memory of an idle worker: docker runtime, server mode (``tinklet --tink
   127.0.0.1:PORT --identifier ID`` against the in-process test Tink server, which has no work
   for that agent), read after ``--idle-seconds``, with the CPU it used meanwhile (goal: at most
   45 MiB, CPU about 0),
4. the fresh-clone ``bash .ci/run`` wall time (goal: at most 10 minutes): not measured here, it
   takes a fresh machine; pass the CI figure with ``--suite-seconds S`` to print it in the table.

Wall times are medians of ``--rounds`` rounds; each round runs every command once, in turn, so
a busy moment of the machine falls on all of them alike. Python's bytecode caches are written
first (one warm-up run each, with ``PYTHONDONTWRITEBYTECODE`` unset), as an installed wheel
has them. The idle worker needs the Docker daemon (``DOCKER_HOST`` or the local socket).

Run: ``.venv/bin/python bench/bench_startup.py [--rounds 9] [--idle-seconds 40] [--suite-seconds S]``
(about a minute with the defaults).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
TINKLET = str(BIN / "tinklet")
CASES = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "tinklet --version": [TINKLET, "--version"],
    "tinklet plugins list": [TINKLET, "plugins", "list"],
}
GOALS = {"tinklet --version": 3.0, "tinklet plugins list": 4.0}
IDLE_GOAL_MIB = 45.0
SUITE_GOAL_SECONDS = 600.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def child_env() -> dict[str, str]:
    """The environment the commands run in: bytecode caches allowed, as installed."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def wall_seconds(command: list[str], env: dict[str, str]) -> float:
    """Wall seconds of one run of ``command``; a failed run stops the bench."""
    started = time.perf_counter()
    result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode}): {result.stderr.decode()[-400:]}")
    return elapsed


def start_up(rounds: int) -> dict[str, float]:
    """Median wall seconds of each case, the cases interleaved round by round."""
    env = child_env()
    for command in CASES.values():  # warm-up: writes the bytecode caches
        wall_seconds(command, env)
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(rounds):
        for name, command in CASES.items():
            times[name].append(wall_seconds(command, env))
    return {name: statistics.median(values) for name, values in times.items()}


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {key: value.strip() for key, _, value in (line.partition(":") for line in lines)}


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def idle_worker(seconds: float) -> dict[str, float]:
    """RSS (MiB) of a docker worker with no work after ``seconds``, its threads, and the CPU
    seconds it used after its first GetAction."""
    from tinklet_core.testing.tink_server import TinkServer

    agent = "bench-idle"
    with TinkServer([], agent) as server:
        worker = subprocess.Popen(
            [TINKLET, "--tink", server.address, "--identifier", agent, "--runtime", "docker"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=child_env(),
        )
        try:
            started = time.monotonic()
            if not server.wait_until(lambda: bool(server.calls), 30):
                worker.kill()
                raise SystemExit(
                    f"the worker never asked for work: {worker.communicate()[1].decode()[-400:]}"
                )
            ticks = _cpu_ticks(worker.pid)
            time.sleep(max(0.0, seconds - (time.monotonic() - started)))
            if worker.poll() is not None:
                raise SystemExit(f"the worker exited: {worker.communicate()[1].decode()[-400:]}")
            status = _status(worker.pid)
            cpu = (_cpu_ticks(worker.pid) - ticks) / CLOCK_TICKS
        finally:
            worker.terminate()
            worker.communicate(timeout=30)
    return {
        "rss": int(status["VmRSS"].split()[0]) / 1024,
        "anon": int(status["RssAnon"].split()[0]) / 1024,
        "threads": float(status["Threads"]),
        "cpu": cpu,
        "seconds": seconds,
    }


def main() -> None:
    """Print the four figures, each with its ratio to its baseline or goal."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9, help="rounds of the start-up commands")
    parser.add_argument("--idle-seconds", type=float, default=40.0, help="how long the worker idles")
    parser.add_argument("--suite-seconds", type=float, help="fresh-clone bash .ci/run wall seconds (from CI)")
    parser.add_argument("--no-idle", action="store_true", help="skip the idle worker (no Docker daemon)")
    args = parser.parse_args()

    medians = start_up(args.rounds)
    base = medians["python -c pass"]
    print(f"start-up, median of {args.rounds} interleaved rounds (bytecode cached):")
    print(f"  {'command':<24} {'median s':>9} {'vs python -c pass':>18} {'goal':>7}")
    for name, seconds in medians.items():
        goal = GOALS.get(name)
        verdict = f"<= {goal:.0f}x {'met' if seconds / base <= goal else 'MISSED'}" if goal else ""
        print(f"  {name:<24} {seconds:>9.3f} {seconds / base:>17.1f}x {verdict}")
    if not args.no_idle:
        idle = idle_worker(args.idle_seconds)
        met = "met" if idle["rss"] <= IDLE_GOAL_MIB else "MISSED"
        print(
            f"idle worker (docker, server mode, no work, {idle['seconds']:.0f} s): "
            f"{idle['rss']:.1f} MiB RSS ({idle['anon']:.1f} anonymous), {idle['threads']:.0f} threads, "
            f"{idle['cpu']:.2f} s CPU while idle = {idle['rss'] / IDLE_GOAL_MIB:.2f}x the "
            f"{IDLE_GOAL_MIB:.0f} MiB goal ({met})"
        )
    if args.suite_seconds is None:
        print("fresh-clone bash .ci/run: not measured here (pass --suite-seconds S from CI; goal 600 s)")
    else:
        met = "met" if args.suite_seconds <= SUITE_GOAL_SECONDS else "MISSED"
        print(
            f"fresh-clone bash .ci/run: {args.suite_seconds:.0f} s = "
            f"{args.suite_seconds / SUITE_GOAL_SECONDS:.2f}x the {SUITE_GOAL_SECONDS:.0f} s goal ({met})"
        )


if __name__ == "__main__":
    main()
