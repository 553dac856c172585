"""Single actions on a private containerd: what is containerd's own in the plugin (command
semantics, volumes, nerdctl's labels and json log, keeping a failed container, cleanup)."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from pathlib import Path

import pytest
from containerd_support import PrivateContainerd, busybox_archive, options
from tinklet_containerd.images import import_oci_archive
from tinklet_containerd.jsonlog import data_store
from tinklet_containerd.runtime import ContainerdRuntime

from tinklet_core.model import Action, Outcome, State, Volume
from tinklet_core.runtime import ActionContext, Privilege, RuntimeSettings

IMAGE = "tinklet/busybox:latest"


def run(
    runtime: ContainerdRuntime, command: list[str], image: str = IMAGE, **fields: object
) -> tuple[Outcome, list[str]]:
    """Run one action through the runtime; its outcome and output lines."""
    unique = f"{time.monotonic_ns()}"
    action = Action(
        f"wf-{unique}", "task", f"action-{unique}", runtime.settings.agent_id, "probe", image,
        command=tuple(command), **fields,  # type: ignore[arg-type]
    )  # fmt: skip
    lines: list[str] = []
    context = ActionContext(
        action, runtime.settings, None, threading.Event(), lines.append, lambda _image: None,
        logging.getLogger("test"),
    )  # fmt: skip
    return runtime.tinklet_execute_action(context), lines


def test_command_replaces_the_image_cmd_and_keeps_its_entrypoint(
    containerd: PrivateContainerd, runtime: ContainerdRuntime, tmp_path: Path
) -> None:
    archive = busybox_archive(tmp_path / "entry.tar", Entrypoint=["echo", "entry"], Cmd=["default"])
    import_oci_archive(runtime.engine.store, archive, "docker.io/tinklet/entrypoint:1")
    default, default_lines = run(runtime, [], image="tinklet/entrypoint:1")
    given, given_lines = run(runtime, ["given", "words"], image="tinklet/entrypoint:1")
    assert (default.state, default_lines) == (State.SUCCESS, ["entry default"])
    assert (given.state, given_lines) == (State.SUCCESS, ["entry given words"])


def test_a_missing_host_directory_is_created_and_mounted(runtime: ContainerdRuntime, tmp_path: Path) -> None:
    source = tmp_path / "made" / "by" / "tinklet"
    volume = Volume(str(source), "/data")
    outcome, lines = run(
        runtime, ["sh", "-c", "echo written > /data/file; cat /data/file"], volumes=(volume,)
    )
    assert (outcome.state, lines) == (State.SUCCESS, ["written"])
    assert (source / "file").read_text() == "written\n"


def test_a_named_volume_fails_with_one_line(runtime: ContainerdRuntime) -> None:
    outcome, _ = run(runtime, ["true"], volumes=(Volume("cache", "/cache"),))
    assert outcome.state is State.FAILED
    assert "named volume" in outcome.reason and "\n" not in outcome.reason


def test_all_caps_stays_within_the_bounding_set(containerd: PrivateContainerd, agent_id: str) -> None:
    settings = RuntimeSettings(agent_id=agent_id, privilege=Privilege.ALL_CAPS, options=options(containerd))
    opened = ContainerdRuntime(settings)
    try:
        outcome, lines = run(opened, ["sh", "-c", "grep CapEff /proc/self/status"])
    finally:
        opened.close()
    with open("/proc/self/status") as status:
        bounding = next(int(line.split()[1], 16) for line in status if line.startswith("CapBnd:"))
    assert outcome.state is State.SUCCESS, outcome
    assert int(lines[-1].split()[-1], 16) == bounding


def test_nothing_but_the_image_is_left_after_an_action(
    containerd: PrivateContainerd, runtime: ContainerdRuntime
) -> None:
    before = containerd.ctr("snapshots", "ls").stdout
    outcome, _ = run(runtime, ["sh", "-c", "echo hi; exit 4"])
    assert outcome.state is State.FAILED and outcome.exit_code == 4
    assert containerd.ctr("containers", "ls", "-q").stdout.split() == []
    assert containerd.ctr("tasks", "ls", "-q").stdout.split() == []
    assert containerd.ctr("snapshots", "ls").stdout == before
    assert containerd.ctr("leases", "ls", "-q").stdout.split() == []
    store = data_store(str(containerd.root / "nerdctl"), containerd.socket) / "containers" / "tinkerbell"
    assert not store.exists() or list(store.iterdir()) == []


def test_keep_failed_keeps_a_failed_container_with_nerdctl_labels_and_log(
    containerd: PrivateContainerd, agent_id: str
) -> None:
    settings = RuntimeSettings(agent_id=agent_id, options=options(containerd, containerd_keep_failed=True))
    opened = ContainerdRuntime(settings)
    try:
        succeeded, _ = run(opened, ["echo", "fine"])
        assert succeeded.state is State.SUCCESS
        assert opened.leftovers() == [], "a successful action's container is removed"
        failed, _ = run(opened, ["sh", "-c", 'echo out; echo "err \\"quoted\\"" >&2; printf tail; exit 2'])
        assert failed.state is State.FAILED
        [kept] = opened.leftovers()
        info = json.loads(containerd.ctr("containers", "info", kept).stdout)
        labels = info["Labels"]
        assert labels["nerdctl/namespace"] == "tinkerbell" and labels["nerdctl/name"] == kept
        assert labels["nerdctl/extraHosts"] == "[]" and labels["tinklet.agent"] == agent_id
        state_dir = Path(labels["nerdctl/state-dir"])
        assert labels["nerdctl/log-uri"] == f"json-file://{state_dir / f'{kept}-json.log'}"
        assert json.loads((state_dir / "log-config.json").read_text())["driver"] == "json-file"
        entries = [json.loads(line) for line in (state_dir / f"{kept}-json.log").read_text().splitlines()]
        assert sorted((e["stream"], e["log"]) for e in entries) == [
            ("stderr", 'err "quoted"\n'), ("stdout", "out\n"), ("stdout", "tail"),
        ]  # fmt: skip
        assert all(e["time"].endswith("Z") for e in entries)
    finally:
        for name in opened.leftovers():
            opened.engine.remove(name)
        opened.close()
    assert containerd.ctr("containers", "ls", "-q").stdout.split() == []


def test_opening_removes_what_a_crashed_run_left(containerd: PrivateContainerd, agent_id: str) -> None:
    crashed = ContainerdRuntime(RuntimeSettings(agent_id=agent_id, options=options(containerd)))
    started = threading.Event()

    def crash_mid_action() -> None:
        while not crashed.leftovers():
            time.sleep(0.05)
        started.set()

    def action_of_the_crashed_run() -> None:
        with contextlib.suppress(Exception):  # its process "died": nobody sees how the action ends
            run(crashed, ["sleep", "60"])

    threading.Thread(target=crash_mid_action, daemon=True).start()
    runner = threading.Thread(target=action_of_the_crashed_run, daemon=True)
    runner.start()
    assert started.wait(30)
    [left] = crashed.leftovers()  # the process "dies" here: nothing removes it
    reopened = ContainerdRuntime(RuntimeSettings(agent_id=agent_id, options=options(containerd)))
    try:
        assert reopened.leftovers() == []
        assert left not in containerd.ctr("containers", "ls", "-q").stdout.split()
    finally:
        reopened.close()
        crashed.engine.close()
        runner.join(30)  # its calls fail once the channel is closed: it ends within this test


@pytest.mark.parametrize("reference", ["busybox", "library/busybox", "docker.io/library/busybox:latest"])
def test_short_names_are_docker_hubs(runtime: ContainerdRuntime, reference: str) -> None:
    assert runtime.resolve_image(reference) == "docker.io/library/busybox:latest"
