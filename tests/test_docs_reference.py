"""The documentation site's generated pages are current and complete: every option of the core
and of each installed plugin, every hook and every built-in plugin has its entry."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from tinklet_core import hookspecs
from tinklet_core.builtins import BUILTIN_PLUGINS
from tinklet_core.cli import option_specs
from tinklet_core.plugins import load_plugins

ROOT = Path(__file__).resolve().parent.parent


def gen_docs() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("gen_docs", str(ROOT / "scripts" / "gen-docs"))
    spec = importlib.util.spec_from_loader("gen_docs", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_the_generated_pages_are_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen-docs"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_every_option_has_an_entry_in_the_configuration_reference() -> None:
    page = (ROOT / "docs" / "reference" / "configuration.md").read_text()
    rows = [line for line in page.splitlines() if line.startswith("| `--")]
    core, plugin_specs, _ = option_specs(load_plugins())
    for spec in [*core, *plugin_specs]:
        row = next((line for line in rows if line.startswith(f"| `--{spec.name}`")), None)
        assert row is not None, f"--{spec.name} has no entry in docs/reference/configuration.md"
        assert f"`{spec.env}`" in row and f"`{spec.key}`" in row, row
    assert len(rows) == len(core) + len(plugin_specs), "an entry for an option that does not exist"


def test_every_hook_and_builtin_plugin_has_an_entry_in_the_hook_reference() -> None:
    page = (ROOT / "docs" / "reference" / "hooks.md").read_text()
    for name in gen_docs().hookspec_functions():
        assert f"### `{name}`" in page, f"{name} has no entry in docs/reference/hooks.md"
        assert (getattr(hookspecs, name).__doc__ or "").strip().splitlines()[0] in page
    for plugin in BUILTIN_PLUGINS:
        assert f"| `{plugin.name}` |" in page, plugin.name


def test_a_missing_entry_is_caught(tmp_path: Path) -> None:
    """The check above is not empty: a page without one option's row is stale."""
    module = gen_docs()
    page = module.configuration_page()
    trimmed = "\n".join(line for line in page.splitlines() if not line.startswith("| `--report-grace`"))
    assert trimmed != page
    module.CONFIGURATION = tmp_path / "configuration.md"
    module.CONFIGURATION.write_text(trimmed)
    module.HOOKS = ROOT / "docs" / "reference" / "hooks.md"
    assert module.main(["--check"]) == 1
