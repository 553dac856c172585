"""The podman plugin's pure parts: image names, limits, sockets (the container spec and output
frames are the core's: tests/test_containers.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tinklet_podman.images import is_local_only, resolve_image
from tinklet_podman.service import first_answering, socket_url, usual_sockets
from tinklet_podman.ulimits import is_rlimit_error, own_limits, process_limits

from tinklet_core.containers.spec import Ulimit
from tinklet_core.plugins import describe_plugins, load_plugins


@pytest.mark.parametrize(
    ("image", "local", "expected"),
    [
        ("tinklet/busybox:latest", {"localhost/tinklet/busybox:latest"}, "localhost/tinklet/busybox:latest"),
        ("tinklet/busybox:latest", set(), "docker.io/tinklet/busybox:latest"),
        ("busybox", set(), "docker.io/library/busybox"),
        ("busybox", {"localhost/busybox"}, "localhost/busybox"),
        ("quay.io/org/tool:1", {"localhost/quay.io/org/tool:1"}, "quay.io/org/tool:1"),
        ("127.0.0.1:5000/x", set(), "127.0.0.1:5000/x"),
        ("localhost/x:2", set(), "localhost/x:2"),
        ("docker.io/library/alpine@sha256:abc", set(), "docker.io/library/alpine@sha256:abc"),
    ],
)
def test_resolve_image(image: str, local: set[str], expected: str) -> None:
    assert resolve_image(image, local.__contains__) == expected


def test_only_localhost_images_are_local_only() -> None:
    assert is_local_only("localhost/tinklet/busybox:latest")
    assert not is_local_only("localhost:5000/tinklet/busybox:latest")
    assert not is_local_only("docker.io/library/busybox")


def test_process_limits_are_read_from_proc(tmp_path: Path) -> None:
    (tmp_path / "42").mkdir()
    (tmp_path / "42" / "limits").write_text(
        "Limit                     Soft Limit           Hard Limit           Units     \n"
        "Max processes             32768                32768                processes \n"
        "Max open files            1024                 unlimited            files     \n"
    )
    assert process_limits(42, proc=tmp_path) == (
        Ulimit("nofile", 1024, 2**64 - 1),
        Ulimit("nproc", 32768, 32768),
    )
    assert process_limits(43, proc=tmp_path) is None


def test_own_limits_cap_nproc_at_pid_max(tmp_path: Path) -> None:
    pid_max = tmp_path / "pid_max"
    pid_max.write_text("100\n")
    limits = {limit.name: limit for limit in own_limits(pid_max)}
    assert limits["nproc"].hard <= 100 and limits["nproc"].soft <= 100
    assert limits["nofile"].hard >= limits["nofile"].soft > 0


def test_rlimit_errors_are_recognised() -> None:
    message = "runc create failed: error setting rlimit type 7: operation not permitted"
    assert is_rlimit_error(message)
    assert not is_rlimit_error("executable file not found in $PATH")


def test_socket_urls_and_the_usual_order() -> None:
    assert socket_url("/run/x.sock") == "unix:///run/x.sock"
    assert socket_url("unix:///run/x.sock") == "unix:///run/x.sock"
    assert socket_url("tcp://127.0.0.1:8080") == "tcp://127.0.0.1:8080"
    assert usual_sockets("/run/user/7") == [
        "unix:///run/user/7/podman/podman.sock",
        "unix:///run/podman/podman.sock",
    ]
    assert usual_sockets(None) == ["unix:///run/podman/podman.sock"]


def test_first_answering_skips_absent_and_silent_sockets(tmp_path: Path) -> None:
    silent, good = tmp_path / "silent.sock", tmp_path / "good.sock"
    silent.touch()
    good.touch()
    urls = [f"unix://{tmp_path / 'absent.sock'}", f"unix://{silent}", f"unix://{good}"]
    asked: list[str] = []

    def probe(url: str) -> str | None:
        asked.append(url)
        return None if url.endswith("good.sock") else "Connection refused"

    assert first_answering(urls, probe) == f"unix://{good}"
    assert asked == urls[1:], "a socket file that does not exist is not even asked"


def test_the_plugin_lists_without_importing_podman_py() -> None:
    code = (
        "import sys; from tinklet_core.plugins import load_plugins, describe_plugins;"
        "infos = describe_plugins(load_plugins());"
        "print([i.hooks for i in infos if 'podman' in i.runtimes]);"
        "print('podman' in sys.modules, 'podman.client' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "tinklet_execute_action" in out
    assert out.splitlines()[-1] == "False False"


def test_the_spec_offers_the_options() -> None:
    infos = [info for info in describe_plugins(load_plugins()) if "podman" in info.runtimes]
    assert infos and infos[0].distribution == "tinklet-podman"
    from tinklet_podman import tinklet_runtimes

    (spec,) = tinklet_runtimes()
    assert [option.name for option in spec.options] == ["podman-socket", "xdg-runtime-dir", "podman-binary"]
