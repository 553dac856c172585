"""Plugin discovery through real entry points, blocking, and runtime selection."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tinklet_core import hookspecs
from tinklet_core.errors import PluginError
from tinklet_core.hookspecs import hookimpl
from tinklet_core.plugins import describe_plugins, find_runtime, load_plugins
from tinklet_core.runtime import RuntimeSpec
from tinklet_core.testing.process_runtime import ProcessRuntime

RUNTIME_PLUGINS = {"docker": "tinklet-docker", "podman": "tinklet-podman", "kube": "tinklet-kube"}


@pytest.fixture
def broken_distribution(tmp_path: Path) -> Iterator[str]:
    """A real installed distribution whose tinklet entry point fails to import."""
    dist = tmp_path / "tinklet_broken-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tinklet-broken\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[tinklet]\nbroken = tinklet_broken_plugin_that_is_missing\n")
    sys.path.insert(0, str(tmp_path))
    try:
        yield "broken"
    finally:
        sys.path.remove(str(tmp_path))


def test_installed_runtime_plugins_are_discovered() -> None:
    loaded = load_plugins()
    infos = {info.name: info for info in describe_plugins(loaded)}
    for name, distribution in RUNTIME_PLUGINS.items():
        assert infos[name].distribution == distribution
        assert infos[name].version == "0.1.0"
        assert infos[name].runtimes == (name,)
        assert "tinklet_execute_action" in infos[name].hooks
        assert "tinklet_runtimes" in infos[name].hooks


def test_blocked_plugins_are_not_loaded() -> None:
    loaded = load_plugins(blocked=["docker"])
    assert "docker" not in {info.name for info in describe_plugins(loaded)}
    with pytest.raises(PluginError, match=r"unknown runtime 'docker'; installed runtimes: .*podman"):
        find_runtime(loaded.manager, "docker")


def test_autoload_off_loads_only_named_modules() -> None:
    loaded = load_plugins(autoload=False, extra=["tinklet_core.testing.process_runtime"])
    names = [info.name for info in describe_plugins(loaded)]
    core_transports = ["core-auto", "core-v2", "core-v1", "core-v1-legacy", "core-file"]
    assert names == [*core_transports, "tinklet_core.testing.process_runtime"]
    assert find_runtime(loaded.manager, "process").factory is ProcessRuntime


def test_a_broken_plugin_is_reported_not_fatal(broken_distribution: str) -> None:
    loaded = load_plugins()
    expected = f"plugin {broken_distribution!r} (distribution tinklet-broken 1.0) failed to load"
    assert any(failure.startswith(expected) for failure in loaded.failures), loaded.failures
    assert find_runtime(loaded.manager, "docker").name == "docker"


def test_a_missing_module_named_with_p_is_an_error() -> None:
    with pytest.raises(PluginError, match="-p no_such_plugin_module: cannot import the plugin module"):
        load_plugins(autoload=False, extra=["no_such_plugin_module"])


def test_two_plugins_claiming_one_runtime_name_is_an_error() -> None:
    class Impostor:
        @hookimpl
        def tinklet_runtimes(self) -> list[RuntimeSpec]:
            return [RuntimeSpec(name="process", factory=ProcessRuntime)]

    loaded = load_plugins(autoload=False, extra=["tinklet_core.testing.process_runtime"])
    loaded.manager.register(Impostor(), name="impostor")
    with pytest.raises(PluginError, match="runtime 'process' is provided by both"):
        find_runtime(loaded.manager, "process")


def test_aliases_find_their_runtime() -> None:
    assert find_runtime(load_plugins().manager, "kubernetes").name == "kube"


def test_every_hookspec_is_documented_and_prefixed() -> None:
    specs = [name for name in dir(hookspecs) if name.startswith("tinklet_")]
    assert len(specs) >= 11
    for name in specs:
        doc = getattr(hookspecs, name).__doc__ or ""
        assert "Called" in doc, f"{name} must say who calls it and when"


def test_every_hook_is_in_the_readme_with_its_signature() -> None:
    readme = (Path(__file__).parent.parent / "docs" / "plugins.md").read_text()
    for name in [n for n in dir(hookspecs) if n.startswith("tinklet_")]:
        signature = str(inspect.signature(getattr(hookspecs, name))).replace("'", "")
        assert f"`{name}{signature}`" in readme, f"README must document {name}{signature}"
