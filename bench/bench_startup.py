"""Issue 21's four figures, measured side by side in one run.

1. ``tinklet --version`` wall time against ``python -c pass`` (goal: at most 3x),
2. ``tinklet plugins list`` wall time against ``python -c pass`` (goal: at most 4x),
3. the resident memory of an idle worker: docker runtime, server mode against the in-process
   test Tink server, which has no work for that agent, read after ``--idle-seconds``, with the
   CPU it used meanwhile (goal: at most 45 MiB, CPU about 0). Two starts: with flags
   (``tinklet --tink 127.0.0.1:PORT --identifier ID --runtime docker``) and bare, as HookOS
   starts the image (no arguments, hook-bootkit's ``TINKERBELL_GRPC_AUTHORITY`` and
   ``WORKER_ID``). Beside them, at the same moment and so with the same files in the page cache,
   the dependency floors of ``idle_floor_client.py``: the worker's libraries alone (grpcio,
   protobuf, docker-py), and gRPC with protobuf alone, polling the same server the same way;
   the distance to the floor is what tinklet itself holds,
4. the fresh-clone ``bash .ci/run`` wall time (goal: at most 10 minutes): not measured here, it
   takes a fresh machine; pass the CI figure with ``--suite-seconds S`` to print it in the table.

Wall times are medians of ``--rounds`` rounds; each round runs every command once, in turn, so
a busy moment of the machine falls on all of them alike. The CPU time (user + system) of each
command is printed too: on a machine other work shares it varies less than the wall time.
Python's bytecode caches are written first (one warm-up run each, with
``PYTHONDONTWRITEBYTECODE`` unset), as an installed wheel has them. ``--baseline DIR`` measures
another installation's ``DIR/bin/tinklet`` (a virtualenv of another checkout, such as main's) in
the same rounds and its idle worker after this one's; its commands may fail (an older tinklet
has no ``--version``: the time to its usage error is what a caller waited). The idle worker
needs the Docker daemon (``DOCKER_HOST`` or the local socket).

Run: ``.venv/bin/python bench/bench_startup.py [--rounds 9] [--idle-seconds 40] [--baseline
/work/main/.venv] [--suite-seconds S]`` (about a minute with the defaults, two with a baseline).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from proc_memory import status_kib

BARE = "python -c pass"
GOALS = {"tinklet --version": 3.0, "tinklet plugins list": 4.0}
IDLE_GOAL_MIB = 45.0
SUITE_GOAL_SECONDS = 600.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def child_env() -> dict[str, str]:
    """The environment the commands run in: bytecode caches allowed, as installed."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def cases(tinklet: str, label: str = "") -> dict[str, list[str]]:
    """The start-up commands of one installation, named as in issue 21 (``label`` in front)."""
    return {
        f"{label}tinklet --version": [tinklet, "--version"],
        f"{label}tinklet plugins list": [tinklet, "plugins", "list"],
    }


def one_run(command: list[str], env: dict[str, str], must_succeed: bool) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system, from the child's own rusage) and exit code."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _pid, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0 and must_succeed:
        raise SystemExit(f"{' '.join(command)} failed with exit code {code}")
    return elapsed, usage.ru_utime + usage.ru_stime, code


def start_up(
    commands: dict[str, list[str]], own: set[str], rounds: int
) -> dict[str, tuple[float, float, int]]:
    """Median wall and CPU seconds and the exit code of each command, interleaved round by round."""
    env = child_env()
    for name, command in commands.items():  # warm-up: writes the bytecode caches
        one_run(command, env, name in own)
    runs: dict[str, list[tuple[float, float, int]]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, command in commands.items():
            runs[name].append(one_run(command, env, name in own))
    return {
        name: (statistics.median(r[0] for r in found), statistics.median(r[1] for r in found), found[-1][2])
        for name, found in runs.items()
    }


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


FLOOR_CLIENT = Path(__file__).with_name("idle_floor_client.py")


def idle_figures(pid: int, cpu_ticks_then: int) -> dict[str, float]:
    """RSS, its anonymous and file-backed parts (MiB), threads, and the CPU seconds used since
    ``cpu_ticks_then``, of the running process ``pid``."""
    status = status_kib(pid)
    return {
        "rss": status["VmRSS"] / 1024,
        "anon": status["RssAnon"] / 1024,
        "file": status["RssFile"] / 1024,
        "threads": float(status["Threads"]),
        "cpu": (_cpu_ticks(pid) - cpu_ticks_then) / CLOCK_TICKS,
    }


def idle_worker(tinklet: str, seconds: float) -> dict[str, dict[str, float]]:
    """The idle figures (:func:`idle_figures`) of a docker worker with no work after ``seconds``,
    CPU counted from its first GetAction: started with flags (``worker``) and bare with
    hook-bootkit's variables, as HookOS starts it (``bare worker``); and, measured at the same moment against
    the same server, those of the dependency floors (``idle_floor_client.py``, polling the same
    way): the worker's libraries alone (``floor``), and gRPC with protobuf alone
    (``grpc floor``), which a worker on any runtime holds."""
    from tinklet_core.testing.tink_server import TinkServer

    agent = "bench-idle"
    python = str(Path(tinklet).with_name("python"))  # the same installation's libraries and files
    with TinkServer([], agent) as server:
        hook_bootkit = {"TINKERBELL_GRPC_AUTHORITY": server.address, "WORKER_ID": agent}
        commands: dict[str, tuple[list[str], dict[str, str]]] = {
            "worker": ([tinklet, "--tink", server.address, "--identifier", agent, "--runtime", "docker"], {}),
            "bare worker": ([tinklet], hook_bootkit),  # as HookOS starts it: no arguments, default runtime
            "floor": ([python, str(FLOOR_CLIENT), server.address, agent], {}),
            "grpc floor": ([python, str(FLOOR_CLIENT), "--without-docker", server.address, agent], {}),
        }
        processes = {
            name: subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**child_env(), **extra}
            )
            for name, (command, extra) in commands.items()
        }
        try:
            started = time.monotonic()
            if not server.wait_until(lambda: len(server.calls) >= len(processes), 30):
                raise SystemExit(f"{tinklet} or a floor client never asked for work")
            ticks = {name: _cpu_ticks(process.pid) for name, process in processes.items()}
            time.sleep(max(0.0, seconds - (time.monotonic() - started)))
            for name, process in processes.items():
                if process.poll() is not None:
                    raise SystemExit(f"the {name} exited: {process.communicate()[1].decode()[-400:]}")
            figures = {name: idle_figures(process.pid, ticks[name]) for name, process in processes.items()}
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.terminate()
                process.communicate(timeout=30)
    return figures


def main() -> None:
    """Print the four figures, each with its ratio to its baseline or goal."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9, help="rounds of the start-up commands")
    parser.add_argument("--idle-seconds", type=float, default=40.0, help="how long the worker idles")
    parser.add_argument("--baseline", type=Path, help="another virtualenv whose bin/tinklet to measure too")
    parser.add_argument("--suite-seconds", type=float, help="fresh-clone bash .ci/run wall seconds (from CI)")
    parser.add_argument("--no-idle", action="store_true", help="skip the idle worker (no Docker daemon)")
    args = parser.parse_args()

    tinklet = str(Path(sys.executable).parent / "tinklet")
    commands = {BARE: [sys.executable, "-c", "pass"], **cases(tinklet)}
    own = set(commands)
    if args.baseline is not None:
        commands.update(cases(str(args.baseline / "bin" / "tinklet"), "baseline: "))
    medians = start_up(commands, own, args.rounds)
    base_wall, base_cpu, _ = medians[BARE]
    print(f"start-up, medians of {args.rounds} interleaved rounds (bytecode cached):")
    print(f"  {'command':<34} {'wall s':>7} {'ratio':>6} {'cpu s':>7} {'ratio':>6}  goal")
    for name, (wall, cpu, code) in medians.items():
        goal = GOALS.get(name)
        verdict = f"<= {goal:.0f}x {'met' if wall / base_wall <= goal else 'MISSED'}" if goal else ""
        failed = f"  (exit {code})" if code else ""
        print(
            f"  {name:<34} {wall:>7.3f} {wall / base_wall:>5.1f}x {cpu:>7.3f} {cpu / base_cpu:>5.1f}x  "
            f"{verdict}{failed}"
        )
    if not args.no_idle:
        installs = [("", tinklet)]
        if args.baseline is not None:
            installs.append(("baseline: ", str(args.baseline / "bin" / "tinklet")))
        for label, path in installs:
            measured = idle_worker(path, args.idle_seconds)
            floor, grpc_floor = measured["floor"], measured["grpc floor"]
            started_as = (("worker", "started with flags"), ("bare worker", "started bare, as HookOS does"))
            for name, how in started_as:
                idle = measured[name]
                met = "met" if idle["rss"] <= IDLE_GOAL_MIB else "MISSED"
                print(
                    f"{label}idle worker, {how} (docker, no work, {args.idle_seconds:.0f} s): "
                    f"{idle['rss']:.1f} MiB RSS ({idle['anon']:.1f} anonymous, "
                    f"{idle['file']:.1f} file-backed), "
                    f"{idle['threads']:.0f} threads, {idle['cpu']:.2f} s CPU while idle = "
                    f"{idle['rss'] / IDLE_GOAL_MIB:.2f}x the {IDLE_GOAL_MIB:.0f} MiB goal ({met}); "
                    f"{idle['rss'] / floor['rss']:.2f}x its dependency floor, "
                    f"{idle['rss'] - floor['rss']:.1f} MiB of its own"
                )
            for what, figures in (
                ("dependency floor (grpc, protobuf, docker-py; polling alike)", floor),
                ("gRPC and protobuf alone (any runtime's floor)", grpc_floor),
            ):
                print(
                    f"{label}  {what}: {figures['rss']:.1f} MiB RSS ({figures['anon']:.1f} anonymous, "
                    f"{figures['file']:.1f} file-backed) = {figures['rss'] / IDLE_GOAL_MIB:.2f}x the goal"
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
