"""The kube plugin as tinklet sees it: its entry point, its runtime spec, and what importing costs."""

from __future__ import annotations

import subprocess
import sys

from tinklet_core.plugins import describe_plugins, find_runtime, load_plugins


def test_importing_tinklet_and_the_plugin_does_not_import_kubernetes() -> None:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import tinklet_core, tinklet_kube"],
        capture_output=True,
        text=True,
        check=True,
    )
    modules = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line]
    assert "tinklet_kube" in modules
    assert [name for name in modules if name.split(".")[0] in ("kubernetes", "docker")] == []


def test_listing_plugins_reads_the_hooks_without_opening_the_runtime() -> None:
    script = (
        "import sys\n"
        "from tinklet_core.plugins import describe_plugins, load_plugins\n"
        "infos = describe_plugins(load_plugins())\n"
        "kube = [info for info in infos if info.name == 'kube']\n"
        "print(kube[0].hooks, 'kubernetes' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip().endswith("False"), done.stdout


def test_the_runtime_spec() -> None:
    loaded = load_plugins()
    spec = find_runtime(loaded.manager, "kubernetes")
    assert spec.name == "kube" and spec.aliases == ("kubernetes",)
    options = {option.name: option for option in spec.options}
    assert set(options) == {
        "kubeconfig",
        "kube-namespace",
        "kube-service-account",
        "kube-allow-host",
        "kube-schedule-timeout",
        "kube-pull-timeout",
        "kube-failure-helper-image",
    }
    # no fixed default: the kubeconfig context's namespace, else the pod's own, else "default"
    assert options["kube-namespace"].default is None
    for limit in ("kube-schedule-timeout", "kube-pull-timeout"):
        assert options[limit].kind is float and options[limit].default > 0
    assert options["kube-allow-host"].kind is bool and options["kube-allow-host"].default is False
    assert options["kubeconfig"].default is None and options["kubeconfig"].env_fallback == "KUBECONFIG"
    # a pinned public image with a shell; "none" turns the helper off
    assert options["kube-failure-helper-image"].default == "busybox:1.36"
    (info,) = [info for info in describe_plugins(loaded) if info.name == "kube"]
    assert info.distribution == "tinklet-kube" and info.runtimes == ("kube",)
    assert {
        "tinklet_runtimes",
        "tinklet_execute_action",
        "tinklet_prepare_environment",
        "tinklet_cleanup_environment",
    } <= set(info.hooks)
