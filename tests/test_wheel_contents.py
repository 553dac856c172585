"""What the wheels ship: the Kubernetes test doubles are their own distribution, not part of the
``tinklet-kube`` runtime a machine installs."""

from __future__ import annotations

from pathlib import Path

from wheels import build_wheel, wheel_files

ROOT = Path(__file__).resolve().parent.parent
DOUBLES = ROOT / "plugins" / "tinklet_kube_testing"
DOUBLE_MODULES = sorted(
    path.name for path in (DOUBLES / "tinklet_kube_testing").glob("*.py") if path.name != "__init__.py"
)


def test_the_kube_runtime_wheel_holds_no_test_double(tmp_path: Path) -> None:
    files = wheel_files(build_wheel(ROOT / "plugins" / "tinklet_kube", tmp_path))
    assert {"tinklet_kube/runtime.py", "tinklet_kube/jobs.py", "tinklet_kube/py.typed"} <= files, files
    assert {"apiserver.py", "kubelet.py", "controller.py"} <= set(DOUBLE_MODULES)
    doubles = sorted(
        name
        for name in files
        if name.startswith("tinklet_kube_testing/")
        or "/testing/" in name
        or Path(name).name in DOUBLE_MODULES
    )
    assert doubles == [], f"the tinklet-kube wheel ships test doubles: {doubles}"


def test_the_kube_test_doubles_are_a_wheel_of_their_own(tmp_path: Path) -> None:
    files = wheel_files(build_wheel(DOUBLES, tmp_path))
    expected = {f"tinklet_kube_testing/{name}" for name in ["__init__.py", "py.typed", *DOUBLE_MODULES]}
    assert expected <= files, expected - files
    assert not any(name.startswith("tinklet_kube/") for name in files), files
