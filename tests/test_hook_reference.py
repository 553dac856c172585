"""The plugin guide's hook list (docs/plugins.md) cannot drift from ``hookspecs.py``, and the
public facade and its types are what a plugin author gets."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import re
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
from wheels import build_wheel

import tinklet_core
from tinklet_core import hookspecs
from tinklet_core.model import PullProgress
from tinklet_core.runtime import RuntimeSpec
from tinklet_core.transports.spec import TransportSettings, TransportSpec

ROOT = Path(__file__).resolve().parent.parent
RECORDS = {
    "RuntimeSpec": RuntimeSpec,
    "TransportSpec": TransportSpec,
    "TransportSettings": TransportSettings,
    "PullProgress": PullProgress,
}


def hooks_section() -> str:
    readme = (ROOT / "docs" / "plugins.md").read_text()
    start = readme.index("## Hooks\n")
    return readme[start : readme.index("\n## ", start + 1)]


def documented_hooks() -> list[tuple[str, str, str]]:
    """``(name, signature, the rest of the bullet)`` for each hook bullet, in README order."""
    found = []
    for line in hooks_section().splitlines():
        match = re.match(r"- `(tinklet_\w+)(\(.*?\) -> [^`]+)`:(.*)", line)
        if match:
            found.append((match[1], match[2], match[3]))
    return found


def hookspec_names() -> list[str]:
    """The hookspecs in the order ``hookspecs.py`` defines them."""
    tree = ast.parse(Path(hookspecs.__file__).read_text())
    return [
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("tinklet_")
    ]


def test_the_readme_lists_exactly_the_hooks_in_hookspecs_in_the_same_order() -> None:
    assert [name for name, _, _ in documented_hooks()] == hookspec_names()


def test_each_documented_signature_is_the_hookspecs() -> None:
    for name, signature, _ in documented_hooks():
        actual = str(inspect.signature(getattr(hookspecs, name))).replace("'", "")
        assert signature == actual, f"README documents {name}{signature}, hookspecs.py has {name}{actual}"


def test_first_result_wins_is_said_exactly_where_it_is_true() -> None:
    for name, _, text in documented_hooks():
        first_result = getattr(hookspecs, name).tinklet_spec["firstresult"]
        if "first result wins" in text:
            assert first_result, f"README says the first result of {name} wins; hookspecs.py does not"
        elif not first_result:
            assert "first result" not in text, f"README says {name} takes a first result; it does not"


def test_records_named_with_their_fields_list_every_field_in_order() -> None:
    section = hooks_section()
    named = re.findall(
        r"(?<![\w.])(RuntimeSpec|TransportSpec|TransportSettings|PullProgress)\(([^)]*)\)", section
    )
    assert {record for record, _ in named} == set(RECORDS)
    for record, fields in named:
        listed = [field.strip() for field in fields.split(",")]
        actual = [field.name for field in dataclasses.fields(RECORDS[record])]
        assert listed == actual[: len(listed)], f"{record}({fields}) in README; the record has {actual}"
        if record != "PullProgress":  # its last field, ``at``, is documented in prose
            assert listed == actual, f"{record} in README misses fields: {actual}"


def test_the_facade_exports_the_plugin_api_from_the_modules_that_define_it() -> None:
    for name in tinklet_core.__all__:
        value = getattr(tinklet_core, name)
        assert value is not None
    assert tinklet_core.hookimpl is hookspecs.hookimpl
    assert tinklet_core.ActionContext is importlib.import_module("tinklet_core.runtime").ActionContext
    with pytest.raises(AttributeError):
        _ = tinklet_core.NoSuchThing  # type: ignore[attr-defined]


def test_importing_the_facade_imports_none_of_the_api_until_it_is_used() -> None:
    code = "import sys, tinklet_core; print(sorted(m for m in sys.modules if m.startswith('tinklet_core')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "['tinklet_core', 'tinklet_core.markers']"


def test_no_import_cycle_between_hookspecs_and_tls() -> None:
    for module in ("tinklet_core.hookspecs", "tinklet_core.markers"):
        tree = ast.parse(Path(importlib.import_module(module).__file__ or "").read_text())
        imported = {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tinklet_core")
        }
        runtime_imports = {m for m in imported if m != "tinklet_core.markers"}
        # hookspecs imports the records only for type checking; markers imports nothing of tinklet's
        assert "tinklet_core.tls" not in runtime_imports or module == "tinklet_core.hookspecs"
    tls_source = (ROOT / "tinklet_core" / "tls.py").read_text()
    assert "from tinklet_core.hookspecs" not in tls_source


PLUGIN = """
from __future__ import annotations

from tinklet_core import ActionContext, Outcome, PluginOption, RuntimeSettings, RuntimeSpec, State, hookimpl


class Tiny:
    def __init__(self, settings: RuntimeSettings) -> None:
        self.settings = settings

    @hookimpl
    def tinklet_execute_action(self, context: ActionContext) -> Outcome:
        return Outcome(State.SUCCESS, exit_code=context.action.timeout)

    def close(self) -> None:
        pass


@hookimpl
def tinklet_runtimes() -> list[RuntimeSpec]:
    return [RuntimeSpec("tiny", Tiny, options=(PluginOption("tiny-level", "how tiny", kind=int),))]


def wrong() -> None:
    outcome: Outcome = Outcome(State.SUCCESS)
    reveal_type(outcome.exit_code)
    outcome.state = "SUCCESS"
"""


def installed_wheel(tmp_path: Path) -> Path:
    """A Python environment with tinklet installed from its wheel (not editable: mypy cannot see
    through setuptools' editable finder), and this environment's other packages behind it."""
    wheel = build_wheel(ROOT, tmp_path)
    environment = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(environment)], check=True)
    site = next(environment.glob("lib/python3*/site-packages"))
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    (site / "zz_tinklet_test_deps.pth").write_text(
        next(p for p in sys.path if p.endswith("site-packages")) + "\n"
    )
    return environment / "bin" / "python"


def test_mypy_sees_the_facades_types_in_a_plugin(tmp_path: Path) -> None:
    """A plugin outside this repository, checked as an installed package's user would be: mypy
    reads tinklet's types (``py.typed`` in the wheel), so a mistake in the plugin is an error."""
    python = installed_wheel(tmp_path)
    plugin = tmp_path / "tinklet_tiny.py"
    plugin.write_text(textwrap.dedent(PLUGIN))
    result = subprocess.run(
        [
            sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--python-version", "3.11",
            "--python-executable", str(python), "--cache-dir", str(tmp_path / "cache"), str(plugin),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )  # fmt: skip
    output = result.stdout
    assert re.search(r'Revealed type is "(builtins\.)?int \| None"', output), output
    assert 'Property "state" defined in "Outcome" is read-only' in output, output
    assert 'variable has type "State"' in output, output
    assert "tinklet_tiny.py:7" not in output and "tinklet_tiny.py:21" not in output, output
    assert "missing library stubs or py.typed marker" not in output, output


def test_every_wheel_ships_py_typed() -> None:
    packages = [ROOT / "tinklet_core", *sorted((ROOT / "plugins").glob("tinklet_*/tinklet_*"))]
    packages = [path for path in packages if path.is_dir() and not path.name.endswith(".egg-info")]
    assert len(packages) == 7, packages  # the core, five plugins and the kube test doubles
    for package in packages:
        assert (package / "py.typed").exists(), f"{package} has no py.typed"
    for pyproject in [ROOT / "pyproject.toml", *sorted((ROOT / "plugins").glob("*/pyproject.toml"))]:
        assert '"py.typed"' in pyproject.read_text(), f"{pyproject} does not ship py.typed as package data"


def stable_modules() -> set[str]:
    """The modules of the README's table of public modules (``a.b.c`` / ``.d`` means ``a.b.d``)."""
    readme = (ROOT / "docs" / "plugins.md").read_text()
    start = readme.index("| module | stable names |")
    table = readme[start : readme.index("\n\n", start)]
    modules = {"tinklet_core"}
    for row in table.splitlines()[2:]:
        names = re.findall(r"`([\w.]+)`", row.split("|")[1])
        first = names[0]
        modules.add(first)
        modules.update(first.rsplit(".", 1)[0] + name for name in names[1:] if name.startswith("."))
    return modules


def test_the_shipped_plugins_import_only_the_public_modules() -> None:
    sources = [*ROOT.glob("plugins/*/tinklet_*/*.py"), *ROOT.glob("examples/*/tinklet_*/*.py")]
    assert len(sources) > 20
    imported = {
        (node.module, path.relative_to(ROOT).as_posix())
        for path in sources
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "tinklet_core"
    }
    public = stable_modules()
    assert {"tinklet_core.runtime", "tinklet_core.containers.frames", "tinklet_core.workflow"} <= public
    outside = sorted(f"{path}: {module}" for module, path in imported if module not in public)
    assert outside == [], "plugins import modules the README does not list as public"
