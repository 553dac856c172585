"""Loading as a plugin author meets it: every broken or surprising plugin gives one line (or a
warning naming the plugin and its distribution), the right exit code, and never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

from tests.plugin_kit import (
    PROCESS,
    assert_one_line_error,
    install_plugin,
    tinklet,
    warnings_in,
    write_module,
    write_workflow,
)

RAISING = """
from tinklet_core.hookspecs import hookimpl

@hookimpl
def tinklet_runtimes():
    raise RuntimeError("cannot read my config")
"""

SECOND_PROCESS = """
from tinklet_core.hookspecs import hookimpl
from tinklet_core.runtime import RuntimeSpec
from tinklet_core.testing.process_runtime import ProcessRuntime

@hookimpl
def tinklet_runtimes():
    return [RuntimeSpec(name="process", factory=ProcessRuntime)]
"""

MISSPELLED = """
from tinklet_core.hookspecs import hookimpl

@hookimpl
def tinklet_on_action(event):
    pass
"""

FUNCTION_FACTORY = """
from tinklet_core.hookspecs import hookimpl
from tinklet_core.runtime import RuntimeSettings, RuntimeSpec
from tinklet_core.testing.process_runtime import ProcessRuntime

def open_local(settings: RuntimeSettings) -> ProcessRuntime:
    return ProcessRuntime(settings)

@hookimpl
def tinklet_runtimes():
    return [RuntimeSpec(name="local", factory=open_local, summary="processes here", aliases=("here",))]
"""


def ok_workflow(tmp_path: Path) -> Path:
    return write_workflow(tmp_path / "wf.yaml", {"name": "a", "image": "none", "command": ["echo", "fine"]})


def test_a_runtimes_hook_that_raises_is_a_warning_and_tinklet_goes_on(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install_plugin(site, "tinklet-raising", "raising", "tinklet_raising", RAISING)
    listed = tinklet("plugins", "list", "--json", site=site)
    assert listed.returncode == 0, listed.stderr
    assert "Traceback" not in listed.stderr
    (failure,) = json.loads(listed.stdout)["failures"]
    assert failure.startswith(
        "plugin 'raising' (distribution tinklet-raising 1.0): tinklet_runtimes() raised"
    )
    assert "cannot read my config" in failure
    assert any("plugin 'raising' (distribution tinklet-raising 1.0)" in w for w in warnings_in(listed))
    ran = tinklet("-p", PROCESS, "--runtime", "process", "run", str(ok_workflow(tmp_path)), site=site)
    assert ran.returncode == 0, ran.stderr
    assert "Traceback" not in ran.stderr


def test_a_plugin_that_fails_to_import_is_listed_as_a_failure(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install_plugin(site, "tinklet-typo", "typo", "tinklet_typo", "import no_such_module_here\n")
    listed = tinklet("plugins", "list", "--json", site=site)
    assert listed.returncode == 0, listed.stderr
    (failure,) = json.loads(listed.stdout)["failures"]
    assert failure.startswith(
        "plugin 'typo' (distribution tinklet-typo 1.0) failed to load: ModuleNotFoundError"
    )
    text = tinklet("plugins", "list", site=site)
    assert "FAILURES" in text.stdout and "plugin 'typo'" in text.stdout


def test_a_runtime_name_two_plugins_claim(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install_plugin(site, "tinklet-twin", "twin", "tinklet_twin", SECOND_PROCESS)
    workflow = str(ok_workflow(tmp_path))
    chosen = tinklet("-p", PROCESS, "--runtime", "process", "run", workflow, site=site)
    assert_one_line_error(chosen, "runtime 'process' is provided by both plugin")
    last = chosen.stderr.strip().splitlines()[-1]
    assert "plugin 'twin' (distribution tinklet-twin 1.0)" in last
    assert f"plugin {PROCESS!r}" in last and last.endswith("block one with -p no:NAME")
    resolved = tinklet("-p", PROCESS, "-p", "no:twin", "--runtime", "process", "run", workflow, site=site)
    assert resolved.returncode == 0, resolved.stderr


def test_a_disputed_runtime_that_is_not_chosen_does_not_stop_tinklet(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install_plugin(site, "tinklet-twin", "twin", "tinklet_twin", SECOND_PROCESS)
    write_module(site, "tinklet_local", FUNCTION_FACTORY)
    result = tinklet(
        "-p",
        PROCESS,
        "-p",
        "tinklet_local",
        "run",
        str(ok_workflow(tmp_path)),
        "--runtime",
        "local",
        site=site,
    )
    assert result.returncode == 0, result.stderr
    assert any("runtime 'process' is provided by both" in w for w in warnings_in(result))


def test_p_naming_a_module_that_does_not_import() -> None:
    assert_one_line_error(
        tinklet("-p", "no_such_module", "plugins", "list"), "-p no_such_module: cannot import"
    )
    assert_one_line_error(tinklet("plugins", "list", "-p"), "-p needs a value")


def test_a_misspelled_hook_is_named_in_a_warning(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install_plugin(site, "tinklet-audit", "audit", "tinklet_audit", MISSPELLED)
    result = tinklet("plugins", "list", "--json", site=site)
    assert result.returncode == 0
    assert json.loads(result.stdout)["failures"] == [
        "plugin 'audit' (distribution tinklet-audit 1.0) implements 'tinklet_on_action', "
        "which is not a tinklet hook; it is never called"
    ]


def test_p_works_after_a_subcommand(tmp_path: Path) -> None:
    result = tinklet("run", str(ok_workflow(tmp_path)), "-p", PROCESS, "--runtime", "process")
    assert result.returncode == 0, result.stderr
    listed = tinklet("plugins", "list", "--json", "-p", "no:docker")
    assert "docker" not in {entry["name"] for entry in json.loads(listed.stdout)["plugins"]}


def test_blocking_a_name_that_matches_nothing_is_a_warning() -> None:
    result = tinklet("-p", "no:dokcer", "plugins", "list", "--json")
    assert result.returncode == 0
    assert json.loads(result.stdout)["failures"] == [
        "-p no:dokcer: no plugin is called 'dokcer'; nothing was blocked"
    ]
    assert any("no plugin is called 'dokcer'" in w for w in warnings_in(result))


def test_choosing_the_runtime_of_a_blocked_plugin_says_it_is_blocked(tmp_path: Path) -> None:
    result = tinklet("-p", "no:docker", "run", str(ok_workflow(tmp_path)), "--runtime", "docker")
    assert_one_line_error(
        result, "runtime 'docker' is not available: plugin 'docker' is blocked with -p no:docker"
    )


def test_a_function_factory_shows_its_hooks_aliases_and_summary(tmp_path: Path) -> None:
    site = tmp_path / "site"
    write_module(site, "tinklet_local", FUNCTION_FACTORY)
    result = tinklet("-p", "tinklet_local", "plugins", "list", "--json", site=site)
    report = json.loads(result.stdout)
    plugin = next(entry for entry in report["plugins"] if entry["name"] == "tinklet_local")
    assert "tinklet_execute_action" in plugin["hooks"]
    assert plugin["runtimes"] == ["local"]
    runtime = next(entry for entry in report["runtimes"] if entry["name"] == "local")
    assert (runtime["aliases"], runtime["summary"]) == (["here"], "processes here")
    ran = tinklet("-p", "tinklet_local", "--runtime", "here", "run", str(ok_workflow(tmp_path)), site=site)
    assert ran.returncode == 0, ran.stderr
