"""The parallel suite's split (conftest.py at the top): every test file that drives this host's
Podman runs in the one Podman scope, so that no two of them share Podman 4.3 at once."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent
#: What a test file that runs Podman says: a podman runtime, the podman CLI or service, its helpers.
DRIVES_PODMAN = re.compile(
    r"""["']--runtime["'], ["']podman["']|runtime=["']podman["']|from podman_support|\[["']podman["']"""
    r"""|= ["']podman["']|["']system["'], ["']service["']|pytest\.param\(["']podman["']"""
    r"""|for runtime in \(["']docker["'], ["']podman["']\)"""
)


def split() -> ModuleType:
    spec = importlib.util.spec_from_file_location("top_conftest", REPO / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_file_that_drives_podman_is_in_the_podman_scope() -> None:
    files = {
        path.relative_to(REPO).as_posix()
        for top in ("tests", "plugins")
        for path in (REPO / top).rglob("test_*.py")
        if ".venv" not in path.parts and path != Path(__file__) and DRIVES_PODMAN.search(path.read_text())
    }
    assert "plugins/tinklet_podman/tests/test_podman_suite.py" in files, "the pattern finds Podman's tests"
    assert sorted(files - split().PODMAN_FILES) == [], "add these to PODMAN_FILES in conftest.py"
    missing = sorted(name for name in split().PODMAN_FILES if not (REPO / name).is_file())
    assert missing == [], "PODMAN_FILES names files that do not exist"


def test_podman_files_share_one_scope_and_other_files_keep_their_own() -> None:
    module = split()
    assert module.scope_of("tests/test_registry_pull.py::test_a[podman]") == module.PODMAN_SCOPE
    suite = "plugins/tinklet_podman/tests/test_podman_suite.py::TestPodmanBehaviour::test_x"
    assert module.scope_of(suite) == module.PODMAN_SCOPE
    assert module.scope_of("tests/test_cli.py::test_version") == "tests/test_cli.py"
