"""What a start of ``tinklet`` imports: the describing commands load no runtime, client or heavy
library, and a runtime's modules load when it is opened (issue 21's import discipline).

Each command runs in its own interpreter, as the console script does; the modules it leaves in
``sys.modules`` are compared with what the command needs.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tinklet_core.lazy_factory import LazyFactory
from tinklet_core.model import State
from tinklet_core.plugins import factory_hooks, load_plugins
from tinklet_core.testing.tink_server import TinkServer
from tinklet_core.workflow import parse_workflow

# Clients and libraries that a describing command never needs.
HEAVY = ("docker", "podman", "kubernetes", "requests", "urllib3", "grpc", "ssl", "rich", "yaml", "pydantic")
# The core's modules that only running a workflow needs (the worker loop and the application
# around it included: plugins list registers the core's own plugins without them).
CORE_RUNTIME = (
    "tinklet_core.app",
    "tinklet_core.worker",
    "tinklet_core.engine_wait",
    "tinklet_core.containers",
    "tinklet_core.transports.grpc_common",
    "tinklet_core.protocol",
)
# Plugin packages (those of every installed entry point) and the few light modules their entry
# points may import; everything else in them is the runtime's, loaded when it is opened.
PLUGIN_PACKAGES = tuple(
    sorted(
        {ep.value.partition(":")[0].split(".")[0] for ep in importlib.metadata.entry_points(group="tinklet")}
    )
)
ENTRY_POINT_HELPERS = ("tinklet_kube.defaults", "tinklet_prometheus.address")

SHOW_MODULES = """
import json, os, sys
from tinklet_core.launch import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
else:
    code = 0
with open(os.environ["MODULES_FILE"], "w") as out:
    json.dump({"code": code, "modules": sorted(sys.modules)}, out)
"""


def modules_after(tmp_path: Path, *args: str) -> set[str]:
    """The modules in ``sys.modules`` once ``tinklet ARGS`` has finished (it must succeed)."""
    record = tmp_path / "modules.json"
    result = subprocess.run(
        [sys.executable, "-c", SHOW_MODULES, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "MODULES_FILE": str(record), "COLUMNS": "120"},
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(record.read_text())
    assert report["code"] in (0, None), result.stderr
    return set(report["modules"])


def offending(modules: set[str], roots: tuple[str, ...]) -> list[str]:
    """The modules in ``modules`` that are one of ``roots`` or inside one."""
    return sorted(m for m in modules if any(m == root or m.startswith(root + ".") for root in roots))


def plugin_runtime_modules(modules: set[str]) -> list[str]:
    """Modules of a plugin package other than its entry module and the light helpers."""
    return sorted(
        m for m in modules if m.split(".")[0] in PLUGIN_PACKAGES and "." in m and m not in ENTRY_POINT_HELPERS
    )


@pytest.mark.parametrize("args", [("--version",), ("plugins", "list"), ("plugins", "list", "--json")])
def test_describing_commands_import_no_client_heavy_library_or_runtime_module(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    modules = modules_after(tmp_path, *args)
    assert offending(modules, HEAVY) == []
    assert offending(modules, ("typer", "click")) == []  # nothing to parse: no command-line parser
    assert offending(modules, CORE_RUNTIME) == []
    assert plugin_runtime_modules(modules) == []


def test_plugins_list_loads_every_plugin_entry_point_but_nothing_behind_it(tmp_path: Path) -> None:
    modules = modules_after(tmp_path, "plugins", "list")
    assert {"tinklet_docker", "tinklet_podman", "tinklet_kube"} <= set(PLUGIN_PACKAGES)
    assert set(PLUGIN_PACKAGES) <= modules  # every entry point did load


def test_version_alone_needs_neither_typer_nor_the_plugins(tmp_path: Path) -> None:
    modules = modules_after(tmp_path, "--version")
    assert offending(modules, ("typer", "click", "tinklet_core.cli", "tinklet_core.config")) == []
    assert offending(modules, PLUGIN_PACKAGES) == []


def test_plugins_list_with_options_goes_through_the_parser_and_stays_light(tmp_path: Path) -> None:
    modules = modules_after(tmp_path, "--loglevel", "error", "plugins", "list")
    assert "typer" in modules
    assert offending(modules, HEAVY) == []
    assert plugin_runtime_modules(modules) == []


def test_help_imports_no_runtime_client_or_runtime_module(tmp_path: Path) -> None:
    modules = modules_after(tmp_path, "--help")  # rich draws the help panels: allowed here
    assert (
        offending(modules, ("docker", "podman", "kubernetes", "requests", "grpc", "yaml", "pydantic")) == []
    )
    assert plugin_runtime_modules(modules) == []


def test_version_is_the_same_alone_and_among_other_options() -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tinklet_core", *args], capture_output=True, text=True, timeout=60
        )

    alone, among = run("--version"), run("--tink", "127.0.0.1:1", "-p", "no:kube", "--version")
    assert (alone.returncode, among.returncode) == (0, 0), (alone.stderr, among.stderr)
    assert alone.stdout == among.stdout == "tinklet 0.1.0\n"
    assert run("version").stdout.splitlines()[0] == "tinklet 0.1.0"


def test_each_lazy_runtime_declares_the_hooks_its_class_implements() -> None:
    loaded = load_plugins()
    lazy = {
        name: p.spec.factory for name, p in loaded.runtimes.items() if isinstance(p.spec.factory, LazyFactory)
    }
    assert {"docker", "podman", "kube"} <= set(lazy)
    for name, factory in lazy.items():
        assert sorted(factory.hooks) == factory_hooks(factory.resolve()), name


def test_a_docker_worker_imports_the_docker_runtime_but_no_other_runtime(tmp_path: Path) -> None:
    workflow = tmp_path / "wf.yaml"
    workflow.write_text(
        "name: local\ntasks: [{name: t, actions: [{name: a, image: 'tinklet/busybox:latest',"
        " command: ['true']}]}]\n"
    )
    # its own agent, not `local`: another test's `tinklet run` on the shared dockerd is `local` too
    agent = f"imports-{uuid.uuid4().hex[:8]}"
    modules = modules_after(tmp_path, "--identifier", agent, "run", str(workflow), "--runtime", "docker")
    assert {"docker", "tinklet_docker.runtime", "yaml"} <= modules
    assert (
        offending(modules, ("podman", "kubernetes", "tinklet_podman.runtime", "tinklet_kube.runtime")) == []
    )


def test_a_worker_started_bare_as_hookos_does_parses_nothing(tmp_path: Path) -> None:
    """HookOS runs the image's ENTRYPOINT with no arguments (hook-bootkit's environment only):
    the worker does its work without building the command line, so typer is never imported."""
    agent = f"bare-{uuid.uuid4().hex[:8]}"
    action = {"name": "a", "image": "tinklet/busybox:latest", "command": ["true"]}
    workflow = parse_workflow({"name": "bare", "tasks": [{"name": "t", "actions": [action]}]}, agent_id=agent)
    record = tmp_path / "modules.json"
    dropped = ("TINKLET_", "AGENT_", "TINKERBELL_", "WORKER_ID", "ID", "DOCKER_REGISTRY", "REGISTRY_")
    environ = {key: value for key, value in os.environ.items() if not key.startswith(dropped)}
    with TinkServer([workflow], agent) as server:
        process = subprocess.Popen(
            [sys.executable, "-c", SHOW_MODULES],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**environ, "MODULES_FILE": str(record), "TINKERBELL_GRPC_AUTHORITY": server.address,
                 "WORKER_ID": agent},
        )
        done = server.wait_until(lambda: State.SUCCESS in server.states_of("t/a"), timeout=60)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert done, output
    report = json.loads(record.read_text())
    assert report["code"] in (0, None), output
    modules = set(report["modules"])
    assert {"docker", "tinklet_docker.runtime", "tinklet_core.worker"} <= modules
    assert offending(modules, ("typer", "click")) == []
