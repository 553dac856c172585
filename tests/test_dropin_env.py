"""tinklet started the way Tinkerbell starts its own worker: hook-bootkit's environment (no
arguments) and the tink agent's command line and AGENT_* variables, with tinklet's own flags
and TINKLET_* winning over them; TLS, verified or not (never a silent plaintext)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.plugin_kit import PROCESS, assert_one_line_error, tinklet
from tinklet_core.agent_compat import agent_command_line
from tinklet_core.cli import option_specs
from tinklet_core.config import load_settings
from tinklet_core.errors import ConfigError
from tinklet_core.model import State
from tinklet_core.plugins import load_plugins
from tinklet_core.testing.certs import TestPki, make_test_pki
from tinklet_core.testing.tink_server import ServerTls, TinkServer
from tinklet_core.workflow import parse_workflow

AGENT = "52:54:00:12:34:56"
WORKFLOW = {"name": "hook", "tasks": [{"name": "t", "actions": [
    {"name": "a", "image": "none", "command": ["echo", "started like tink-worker"]}]}]}  # fmt: skip
#: What hook-bootkit sets when the kernel command line has only grpc_authority and worker_id.
HOOK_ENV = {"DOCKER_REGISTRY": "", "REGISTRY_USERNAME": "", "REGISTRY_PASSWORD": "", "TINKERBELL_TLS": "",
            "TINKERBELL_INSECURE_TLS": "", "HTTP_PROXY": "", "HTTPS_PROXY": "", "NO_PROXY": ""}  # fmt: skip
UNREACHABLE = "127.0.0.1:9"


def clean_environment(extra: dict[str, str]) -> dict[str, str]:
    """The test's environment without any TINKLET_/AGENT_/hook variable, plus ``extra``."""
    dropped = ("TINKLET_", "AGENT_", "TINKERBELL_", "WORKER_ID", "ID", "DOCKER_REGISTRY", "REGISTRY_")
    kept = {key: value for key, value in os.environ.items() if not key.startswith(dropped)}
    return {**kept, "TINKLET_PLUGINS": PROCESS, "TINKLET_RUNTIME": "process", **extra}


def serve_once(args: list[str], env: dict[str, str], tls: ServerTls | None = None) -> tuple[bool, str]:
    """Run tinklet (``ADDRESS`` in args and env values is the test server's) until the action
    succeeded, then SIGTERM it; whether it did, and everything it printed."""
    with TinkServer([parse_workflow(WORKFLOW, agent_id=AGENT)], AGENT, tls=tls) as server:
        given = {key: value.replace("ADDRESS", server.address) for key, value in env.items()}
        environ = clean_environment(given)
        process = subprocess.Popen(
            [sys.executable, "-m", "tinklet_core", *(arg.replace("ADDRESS", server.address) for arg in args)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environ,
        )  # fmt: skip
        done = server.wait_until(lambda: State.SUCCESS in server.states_of("t/a"), timeout=30)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=15)
        return done and process.returncode == 0, output


def test_hook_bootkit_environment_alone_starts_the_worker() -> None:
    done, output = serve_once([], {**HOOK_ENV, "TINKERBELL_GRPC_AUTHORITY": "ADDRESS", "WORKER_ID": AGENT,
                                   "ID": AGENT})  # fmt: skip
    assert done, output
    assert "started like tink-worker" in output


def test_tinklets_own_variables_win_over_hook_bootkits() -> None:
    done, output = serve_once(
        [], {**HOOK_ENV, "TINKERBELL_GRPC_AUTHORITY": UNREACHABLE, "TINKLET_TINK": "ADDRESS",
             "WORKER_ID": "someone-else", "TINKLET_ID": AGENT},
    )  # fmt: skip
    assert done, output


def test_captainos_command_line_starts_the_worker() -> None:
    """The unit's line, word for word, with the runtime this test has (-runtime docker in the image)."""
    done, output = serve_once(
        ["-runtime", "process", "-transport", "grpc", "-grpc-server", "ADDRESS", "-grpc-tls=false",
         "-grpc-insecure-tls=false", "-id", AGENT, "-registry-name", "registry.local", "-registry-user",
         "admin", "-registry-pass", "s3cret-pass", "-log-level", "1"],
        {},
    )  # fmt: skip
    assert done, output
    assert "s3cret-pass" not in output


def test_agent_variables_and_their_order() -> None:
    done, output = serve_once(
        [], {"AGENT_GRPC_SERVER": "ADDRESS", "TINKERBELL_GRPC_AUTHORITY": UNREACHABLE, "AGENT_ID": AGENT,
             "WORKER_ID": "someone-else"},
    )  # fmt: skip
    assert done, output


def test_registry_login_is_for_that_registry_only() -> None:
    environ = {"DOCKER_REGISTRY": "registry.local:5000", "REGISTRY_USERNAME": "admin",
               "REGISTRY_PASSWORD": "pw\n"}  # fmt: skip
    settings = load_settings({}, environ=environ)
    [login] = settings.registries
    assert (login.registry, login.username, login.password) == ("registry.local:5000", "admin", "pw")
    no_user = {"DOCKER_REGISTRY": "registry.local", "REGISTRY_USERNAME": ""}
    assert load_settings({}, environ=no_user).registries == (), "a registry name alone is no login"
    mine = '{"name": "registry.local:5000", "user": "me", "password": "mine"}'
    [first] = load_settings({}, environ={**environ, "TINKLET_REGISTRY": mine}).registries
    assert first.username == "me", "TINKLET_REGISTRY wins for the same registry"
    agent = {"AGENT_REGISTRY_NAME": "r.agent", "AGENT_REGISTRY_USER": "u", "AGENT_REGISTRY_PASS": "p"}
    assert [r.registry for r in load_settings({}, environ={**environ, **agent}).registries] == ["r.agent"]


def test_hook_and_agent_values_are_read_like_the_agent_reads_them() -> None:
    settings = load_settings({}, environ={"TINKERBELL_TLS": "true", "TINKERBELL_INSECURE_TLS": "false",
                                          "ID": "id-var", "WORKER_ID": "worker-var", "AGENT_LOG_LEVEL": "1",
                                          "AGENT_BACKOFF_MAX_INTERVAL": "2s"})  # fmt: skip
    assert settings.tls.enabled and not settings.tls.insecure
    assert settings.identifier == "worker-var"
    assert (settings.loglevel, settings.max_backoff) == ("debug", 2.0)
    assert load_settings({"tls": False}, environ={"TINKERBELL_TLS": "true"}).tls.enabled is False
    with pytest.raises(ConfigError, match="TINKERBELL_TLS"):
        load_settings({}, environ={"TINKERBELL_TLS": "maybe"})


def test_insecure_tls_ignored_when_tls_is_switched_off_is_said() -> None:
    settings = load_settings({}, environ={"TINKERBELL_TLS": "false", "TINKERBELL_INSECURE_TLS": "true"})
    assert not settings.tls.enabled
    assert any("plaintext" in warning for warning in settings.warnings)


def test_agent_command_line_translation() -> None:
    line = ["-grpc-server", "h:1", "-grpc-tls", "-grpc-insecure-tls=false", "-id", "x", "-log-level", "1"]
    assert agent_command_line(line) == [
        "--tink", "h:1", "--tls", "--no-tls-insecure", "-id", "x", "--loglevel", "debug"]  # fmt: skip
    assert agent_command_line(["-transport=file", "-workflow-path", "wf.yaml", "-runtime", "docker"]) == [
        "run", "wf.yaml", "-runtime", "docker"]  # fmt: skip
    assert agent_command_line(["-registry-name", "r", "-registry-pass", "p"]) == [], "no user: no login"


def test_agent_flags_tinklet_cannot_take_are_one_line() -> None:
    assert_one_line_error(tinklet("-transport", "nats"), "-transport: tinklet speaks grpc and file")
    assert_one_line_error(
        # -p no:containerd: a host without the containerd runtime plugin
        tinklet(
            "-p", "no:containerd", "-runtime", "docker",
            "-containerd-socket", "/run/containerd/containerd.sock",
        ),
        "no installed runtime plugin has a --containerd-socket option",
    )
    result = tinklet("-grpc-tls=perhaps")
    assert_one_line_error(result, "-grpc-tls: expected true or false")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


def test_tinkerbell_tls_with_the_ca_in_tinklets_variable(pki: TestPki) -> None:
    done, output = serve_once(
        [], {"TINKERBELL_GRPC_AUTHORITY": "ADDRESS", "WORKER_ID": AGENT, "TINKERBELL_TLS": "true",
             "TINKLET_TLS_CA": str(pki.ca_cert)},
        tls=ServerTls.from_files(pki.server_cert, pki.server_key),
    )  # fmt: skip
    assert done, output
    assert "(TLS)" in output


def test_tinkerbell_insecure_tls_without_a_ca_connects_with_a_warning(pki: TestPki) -> None:
    done, output = serve_once(
        [], {**HOOK_ENV, "TINKERBELL_GRPC_AUTHORITY": "ADDRESS", "WORKER_ID": AGENT,
             "TINKERBELL_INSECURE_TLS": "true"},
        tls=ServerTls.from_files(pki.server_cert, pki.server_key),
    )  # fmt: skip
    assert done, output
    warnings = [line for line in output.splitlines() if "WARNING" in line and "without verifying" in line]
    assert len(warnings) == 1, output


def test_insecure_tls_never_falls_back_to_plaintext(tmp_path: Path) -> None:
    """A plaintext server: the TLS handshake fails, tinklet keeps trying and never reports."""
    with TinkServer([parse_workflow(WORKFLOW, agent_id=AGENT)], AGENT) as server:
        environ = clean_environment({"TINKERBELL_GRPC_AUTHORITY": server.address, "WORKER_ID": AGENT,
                                     "TINKERBELL_INSECURE_TLS": "true"})  # fmt: skip
        process = subprocess.Popen([sys.executable, "-m", "tinklet_core"], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, env=environ)  # fmt: skip
        reported = server.wait_until(lambda: bool(server.reports), timeout=5)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=15)
        assert not reported, output
        assert not server.served, output


def test_launcher_passwords_stay_out_of_processes_tinklet_starts() -> None:
    from tinklet_core.config import child_environment

    environ = {"REGISTRY_PASSWORD": "pw", "AGENT_REGISTRY_PASS": "pw", "DOCKER_REGISTRY": "r", "PATH": "/bin"}
    assert child_environment(environ) == {"DOCKER_REGISTRY": "r", "PATH": "/bin"}


def test_agent_containerd_variables_reach_the_containerd_plugins_options() -> None:
    """CaptainOS's unit may give the containerd flags as ``AGENT_CONTAINERD_*``: the installed
    containerd plugin gets them as its ``--containerd-socket``/``--containerd-namespace``."""
    loaded = load_plugins()
    core, specs, _ = option_specs(loaded)
    environ = {"AGENT_CONTAINERD_SOCKET": "/run/private/containerd.sock", "AGENT_CONTAINERD_NAMESPACE": "ns"}
    options = load_settings({}, specs, environ=environ, core=core).options_of("runtime:containerd")
    assert options["containerd_socket"] == "/run/private/containerd.sock"
    assert options["containerd_namespace"] == "ns"


def test_agent_containerd_variables_without_the_plugin_are_said_once() -> None:
    """The flag form is an error without a plugin that declares it; the variable form (set by a
    launcher whatever the runtime) is one warning, without its value."""
    env = {"AGENT_CONTAINERD_SOCKET": "/run/hidden-path/containerd.sock"}
    result = tinklet("-p", "no:containerd", "plugins", "list", env=env)
    assert result.returncode == 0, result.stderr
    said = "AGENT_CONTAINERD_SOCKET: no installed runtime plugin has a --containerd-socket option"
    assert result.stderr.count(said) == 1, result.stderr
    assert "hidden-path" not in result.stderr
    with_plugin = tinklet("plugins", "list", env=env)
    assert with_plugin.returncode == 0, with_plugin.stderr
    assert said not in with_plugin.stderr
