"""A chatty action under tinklet against the engine's own CLI, and per-action overhead, on Docker and Podman.

Prints, side by side in one run:

1. The 100 MB action (``yes <99 characters> | head -n 1048576``: 1,048,576 lines of 100 bytes):
   wall time of ``docker run --rm … > /dev/null`` and ``podman run --rm … > /dev/null``, against
   the same action run by tinklet's worker loop (workflow-file transport, the chosen runtime,
   every output line logged in the worker's log format to /dev/null; and again with
   ``--action-output tail``), with ratios; the lines the worker logged (checked in a separate
   run whose log goes to a file: the count, every line intact, and, with numbered lines from
   ``seq``, the order); and the worker's peak RSS and its growth during the action.
2. Per-action overhead of a ``true`` action: tinklet's runtime hook against a raw client loop
   (docker-py / podman-py create, start, wait, remove), median of N, with ratios. Both run with
   the engine's default privileges (``--action-privilege none``), so they create the same
   container.

Each tinklet measurement runs in a fresh interpreter so its peak RSS is its own. Podman runs
with ``CONTAINERS_CONF`` as the tests set it (no default ulimits, runc) when that file exists.

    .venv/bin/python bench/bench_action_output.py [--repeat 3] [--runs 10] [--engines docker,podman]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from proc_memory import mib

IMAGE = "tinklet/busybox:latest"
PODMAN_IMAGE = "localhost/tinklet/busybox:latest"
TEXT = ("0123456789" * 10)[:99]
LINES = 1_048_576
CHATTY = f"yes {TEXT} | head -n {LINES}"
NUMBERED = f"seq 1 {LINES}"
TEST_CONF = "/etc/containers/tinklet-test.conf"


def engine_env() -> dict[str, str]:
    """The environment for podman: the tests' containers.conf where this host needs it."""
    env = dict(os.environ)
    if Path(TEST_CONF).exists():
        env.setdefault("CONTAINERS_CONF", TEST_CONF)
    return env


def cli_seconds(engine: str) -> float:
    """Wall time of ``ENGINE run --rm IMAGE sh -c CHATTY > /dev/null``."""
    image = PODMAN_IMAGE if engine == "podman" else IMAGE
    started = time.perf_counter()
    subprocess.run(
        [engine, "run", "--rm", image, "sh", "-c", CHATTY],
        stdout=subprocess.DEVNULL,
        check=True,
        env=engine_env(),
    )
    return time.perf_counter() - started


def worker_child(engine: str, script: str, output: str, log_file: str) -> dict[str, Any]:
    """Run one action through the real worker loop and runtime; its wall time and memory."""
    from tinklet_core.log_format import formatter_for
    from tinklet_core.model import Event
    from tinklet_core.plugins import find_runtime, load_plugins, open_runtime
    from tinklet_core.runtime import Privilege, RuntimeSettings
    from tinklet_core.transports.workflow_file import WorkflowFileTransport
    from tinklet_core.worker import Worker, WorkerOptions
    from tinklet_core.workflow import parse_workflow

    stream = open(log_file, "w")  # noqa: SIM115 - closed at exit of this child
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter_for("text"))  # the worker's, as --log-format text sets it
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    loaded = load_plugins()
    settings = RuntimeSettings(agent_id="", privilege=Privilege.NONE)
    runtime = open_runtime(loaded.manager, find_runtime(loaded.manager, engine), settings)
    action = {"name": "chatty", "image": IMAGE, "command": ["sh", "-c", script]}
    workflow = {
        "name": f"bench-{uuid.uuid4().hex[:8]}",
        "tasks": [{"name": "t", "actions": [action]}],
    }
    finals: list[Event] = []
    worker = Worker(
        # A unique agent: `tinklet run` elsewhere on this host removes agent "local"'s containers.
        WorkflowFileTransport(parse_workflow(workflow, agent_id=str(workflow["name"]))),
        loaded.manager,
        settings,
        threading.Event(),
        WorkerOptions(log_output=output == "log"),
        on_delivered=lambda event: finals.append(event) if event.state.is_final else None,
    )
    before = mib("VmRSS")
    started = time.perf_counter()
    worker.run()
    elapsed = time.perf_counter() - started
    runtime.close()
    stream.close()
    peak = mib("VmHWM")
    state = finals[0].state.value if finals else "none"
    message = finals[0].message if finals and state != "SUCCESS" else ""
    return {"seconds": elapsed, "state": state, "message": message, "rss_before": before, "peak_rss": peak}


def run_worker(engine: str, script: str, output: str, log_file: str = os.devnull) -> dict[str, Any]:
    """:func:`worker_child` in a fresh interpreter."""
    argv = [sys.executable, __file__, "--child", engine, "--script", script]
    argv += ["--output", output, "--log", log_file]
    done = subprocess.run(argv, check=True, capture_output=True, text=True, env=engine_env())
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def logged_lines(log_file: Path) -> list[str]:
    """The action's output lines in a worker log: the text after each ``chatty | `` tag."""
    tag = "/chatty | "
    found = []
    with log_file.open() as lines:
        for line in lines:
            at = line.find(tag)
            if at >= 0:
                found.append(line[at + len(tag) :].rstrip("\n"))
    return found


def check_delivery(engine: str) -> str:
    """Run the chatty and the numbered action with the log in a file; say what arrived."""
    with tempfile.TemporaryDirectory(prefix="tinklet-bench-") as directory:
        log_file = Path(directory) / "worker.log"
        run_worker(engine, CHATTY, "log", str(log_file))
        chatty = logged_lines(log_file)
        intact = sum(line == TEXT for line in chatty)
        run_worker(engine, NUMBERED, "log", str(log_file))
        numbered = logged_lines(log_file)
        in_order = numbered == [str(n) for n in range(1, LINES + 1)]
    order = "in order" if in_order else "NOT in order"
    return f"{len(chatty)} lines, {intact} intact; seq: {len(numbered)} lines, {order}"


def raw_client(engine: str, url: str) -> tuple[Any, str]:
    """A high-level docker-py or podman-py client for ``url``, and the image name it runs."""
    if engine == "docker":
        import docker

        return docker.DockerClient(base_url=url), IMAGE
    from podman import PodmanClient

    return PodmanClient(base_url=url), PODMAN_IMAGE


def raw_true_seconds(client: Any, image: str) -> float:
    """Wall time of create/start/wait/remove of one ``true`` container through the client."""
    started = time.perf_counter()
    container = client.containers.create(image, ["true"])
    container.start()
    container.wait()
    container.remove(v=True, force=True)
    return time.perf_counter() - started


def tinklet_true_seconds(runtime: Any) -> float:
    """Wall time of one ``true`` action through the runtime's execute hook."""
    from tinklet_core.model import Action, State
    from tinklet_core.runtime import ActionContext

    unique = uuid.uuid4().hex[:8]
    action = Action(f"bench-{unique}", "t", f"a-{unique}", "", "true", IMAGE, command=("true",))
    context = ActionContext(
        action, runtime.settings, None, threading.Event(), lambda line: None, lambda image: None,
        logging.getLogger("bench"),
    )  # fmt: skip
    started = time.perf_counter()
    outcome = runtime.tinklet_execute_action(context)
    elapsed = time.perf_counter() - started
    if outcome.state is not State.SUCCESS:
        raise SystemExit(f"{runtime}: true failed: {outcome.reason}")
    return elapsed


def overhead(engine: str, runs: int) -> tuple[float, float]:
    """Median seconds per ``true`` action: (tinklet, raw client loop), alternating one by one
    after a warm-up of each, so a busy moment of the machine hits both alike."""
    from tinklet_core.plugins import find_runtime, load_plugins, open_runtime
    from tinklet_core.runtime import Privilege, RuntimeSettings

    loaded = load_plugins()
    runtime: Any = open_runtime(
        loaded.manager, find_runtime(loaded.manager, engine), RuntimeSettings(privilege=Privilege.NONE)
    )
    client, image = raw_client(engine, runtime.engine.url)
    tinklet: list[float] = []
    raw: list[float] = []
    try:
        tinklet_true_seconds(runtime)
        raw_true_seconds(client, image)
        for _ in range(runs):
            tinklet.append(tinklet_true_seconds(runtime))
            raw.append(raw_true_seconds(client, image))
    finally:
        client.close()
        runtime.close()
    return statistics.median(tinklet), statistics.median(raw)


def main() -> None:
    """Parse arguments; as the parent run every measurement and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="true actions per median")
    parser.add_argument("--repeat", type=int, default=3, help="100 MB runs per median (0: skip them)")
    parser.add_argument("--engines", default="docker,podman")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--script", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    parser.add_argument("--log", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(worker_child(args.child, args.script, args.output, args.log)))
        return
    os.environ.update(engine_env())  # the raw podman-py loop's service needs it as much as tinklet's
    engines = args.engines.split(",")
    if args.repeat > 0:
        chatty_action(engines, args.repeat)
    print(f"\nper-action overhead of a `true` action, median of {args.runs} (privilege none)")
    print(f"{'':10}{'tinklet (ms)':>14}{'raw client loop (ms)':>22}{'ratio':>8}")
    for engine in engines:
        tinklet, raw = overhead(engine, args.runs)
        print(f"{engine:10}{tinklet * 1000:>14.0f}{raw * 1000:>22.0f}{tinklet / raw:>7.2f}x")


def chatty_action(engines: list[str], repeat: int) -> None:
    """Print the 100 MB action's table: CLI against tinklet, per engine, median of ``repeat``."""
    print(f"100 MB action: {CHATTY.replace(TEXT, '<99 characters>')}; median of {repeat} (s), RSS in MiB")
    header = f"{'':10}{'CLI (s)':>9}{'tinklet (s)':>13}{'ratio':>7}{'tail only (s)':>15}{'ratio':>7}"
    print(header + f"{'peak RSS':>10}{'growth':>8}  delivered")
    for engine in engines:
        rounds = [
            (cli_seconds(engine), run_worker(engine, CHATTY, "log"), run_worker(engine, CHATTY, "tail"))
            for _ in range(repeat)
        ]  # interleaved, so a busy moment of the machine hits all three alike
        cli = statistics.median(r[0] for r in rounds)
        logged_s = statistics.median(r[1]["seconds"] for r in rounds)
        quiet_s = statistics.median(r[2]["seconds"] for r in rounds)
        peak = max(r[1]["peak_rss"] for r in rounds)
        growth = max(r[1]["peak_rss"] - r[1]["rss_before"] for r in rounds)
        growths = "/".join(f"{r[1]['peak_rss'] - r[1]['rss_before']:.0f}" for r in rounds)
        states = {r[1]["state"] for r in rounds} | {r[2]["state"] for r in rounds}
        delivered = check_delivery(engine)
        for failed in ({r[1]["message"] for r in rounds} | {r[2]["message"] for r in rounds}) - {""}:
            print(f"{engine}: an action did not succeed: {failed}")
        print(
            f"{engine:10}{cli:>9.2f}{logged_s:>13.2f}{logged_s / cli:>6.2f}x"
            f"{quiet_s:>15.2f}{quiet_s / cli:>6.2f}x"
            f"{peak:>10.1f}{growth:>8.1f}  {'/'.join(sorted(states))}; {delivered}; growth per run {growths}"
        )


if __name__ == "__main__":
    main()
