"""The environment and command line Tinkerbell's own workers are started with, read by tinklet.

Two launchers start a Tinkerbell worker on the machine being provisioned:

- HookOS's hook-bootkit starts the worker image with no arguments and these variables:
  ``TINKERBELL_GRPC_AUTHORITY``, ``TINKERBELL_TLS``, ``TINKERBELL_INSECURE_TLS``, ``WORKER_ID``,
  ``ID``, ``DOCKER_REGISTRY``, ``REGISTRY_USERNAME``, ``REGISTRY_PASSWORD`` and the proxy
  variables (every one set, empty when the kernel command line had no value).
- CaptainOS's systemd unit runs the tink agent's command line: ``-runtime R -transport grpc
  -grpc-server H:P -grpc-tls=BOOL -grpc-insecure-tls=BOOL -id ID -registry-name R
  -registry-user U -registry-pass P`` (plus ``-containerd-socket``/``-containerd-namespace``);
  the agent also reads each flag as ``AGENT_NAME`` and the legacy variables above.

This module only translates: :func:`agent_command_line` turns the agent's flags into tinklet's,
:func:`fallback_variables` names the variables an option falls back to, and
:func:`launcher_registry_login` reads the registry login. :mod:`tinklet_core.config` decides
precedence: tinklet's flags (in either spelling) > ``TINKLET_*`` > config file > ``AGENT_*`` >
the legacy variables. (The Go agent lets its legacy variables override even its flags; tinklet
does not: a flag given on purpose wins.)
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence

from tinklet_core.model import RegistryCredentials

AGENT_ENV_PREFIX = "AGENT_"

#: tinklet's option for each tink agent flag that has one (same meaning, other name).
AGENT_FLAGS: Mapping[str, str] = {
    "grpc-server": "tink",
    "grpc-tls": "tls",
    "grpc-insecure-tls": "tls-insecure",
    "log-level": "loglevel",
    "backoff-max-interval": "max-backoff",
    "attribute-detection": "agent-attributes",
}
#: The agent's registry flags: one login, for that registry only.
REGISTRY_FLAGS = ("registry-name", "registry-user", "registry-pass")
#: Flags of the agent's containerd runtime: handed to a runtime plugin that declares them.
RUNTIME_PLUGIN_FLAGS = ("containerd-socket", "containerd-namespace")
#: The agent's boolean flags (``-grpc-tls`` alone means true).
_AGENT_BOOLS = ("grpc-tls", "grpc-insecure-tls", "attribute-detection")
_GO_TRUE = {"1", "t", "true"}
_GO_FALSE = {"0", "f", "false"}

#: Legacy unprefixed variables (hook-bootkit's), per tinklet option, read last.
LEGACY_VARIABLES: Mapping[str, tuple[str, ...]] = {
    "tink": ("TINKERBELL_GRPC_AUTHORITY",),
    "identifier": ("WORKER_ID", "ID"),
    "tls": ("TINKERBELL_TLS",),
    "tls-insecure": ("TINKERBELL_INSECURE_TLS",),
}
_LEGACY_REGISTRY = ("DOCKER_REGISTRY", "REGISTRY_USERNAME", "REGISTRY_PASSWORD")
#: The launchers' variables that hold a password: never handed to a process tinklet starts.
SECRET_VARIABLES = ("REGISTRY_PASSWORD", AGENT_ENV_PREFIX + "REGISTRY_PASS")


class AgentFlagError(ValueError):
    """A tink agent flag tinklet cannot take; ``str()`` is the one line to print."""


def agent_variable(flag: str) -> str:
    """The environment variable the tink agent reads for ``flag`` (``grpc-server`` →
    ``AGENT_GRPC_SERVER``)."""
    return AGENT_ENV_PREFIX + flag.replace("-", "_").upper()


def fallback_variables(option: str) -> tuple[str, ...]:
    """The tink agent's and hook-bootkit's variables for tinklet's ``option``, in the order
    they are read after tinklet's own sources: ``AGENT_*`` first, then the legacy ones."""
    agent_flags = [flag for flag, target in AGENT_FLAGS.items() if target == option]
    if option in ("runtime", "identifier", *RUNTIME_PLUGIN_FLAGS):
        agent_flags.append("id" if option == "identifier" else option)
    return (*(agent_variable(flag) for flag in agent_flags), *LEGACY_VARIABLES.get(option, ()))


def unclaimed_runtime_variables(environ: Mapping[str, str], declared: Collection[str]) -> list[str]:
    """One line for each ``AGENT_CONTAINERD_*`` variable set while no installed plugin declares
    its option: the flag form is refused for the same reason, the variable is only warned about
    (a launcher sets it whatever the runtime). The value is never named."""
    return [
        f"{agent_variable(flag)}: no installed runtime plugin has a --{flag} option, ignored "
        "(install the containerd runtime plugin, see 'tinklet plugins list')"
        for flag in RUNTIME_PLUGIN_FLAGS
        if flag not in declared and environ.get(agent_variable(flag), "").strip()
    ]


def fallback_value(variable: str, value: str) -> str:
    """``value`` of the launcher's ``variable`` in tinklet's terms (the agent's integer log
    level, its Go durations); other values unchanged."""
    if variable == agent_variable("log-level"):
        return agent_log_level(value)
    if variable == agent_variable("backoff-max-interval"):
        return _go_seconds(value)
    return value


def agent_log_level(value: str) -> str:
    """tinklet's log level for the agent's ``-log-level`` (an integer verbosity: 0 is info,
    more is debug; a negative one keeps warnings only). tinklet's own names pass through."""
    text = value.strip().lower()
    try:
        verbosity = int(text)
    except ValueError:
        return text
    return "debug" if verbosity > 0 else ("info" if verbosity == 0 else "warning")


def agent_command_line(args: Sequence[str]) -> list[str]:
    """``args`` with the tink agent's flags turned into tinklet's.

    ``-grpc-server H:P`` → ``--tink H:P``, ``-grpc-tls=BOOL`` → ``--tls``/``--no-tls``,
    ``-log-level 1`` → ``--loglevel debug``, ``-registry-name/-user/-pass`` → one
    ``--registry`` login, ``-transport grpc`` (the default) is dropped and ``-transport file
    -workflow-path F`` becomes ``run F``. ``-runtime``, ``-id`` and the containerd flags are
    tinklet's (or its runtime plugin's) names already and are left for the usual rewriting.
    Raises :class:`AgentFlagError` for a transport tinklet has not got. Values and everything
    after ``--`` are left alone.
    """
    result: list[str] = []
    registry: dict[str, str] = {}
    transport, workflow = "grpc", ""
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            result.extend(args[index:])
            break
        name, equals, inline = arg.lstrip("-").partition("=") if arg.startswith("-") else ("", "", "")
        known = name in AGENT_FLAGS or name in REGISTRY_FLAGS or name in ("transport", "workflow-path")
        if not known or arg.startswith("---"):
            result.append(arg)
            index += 1
            continue
        if name in _AGENT_BOOLS:
            result.append(_bool_flag(AGENT_FLAGS[name], inline if equals else "true", arg))
            index += 1
            continue
        if equals:
            value = inline
            index += 1
        elif index + 1 < len(args):
            value = args[index + 1]
            index += 2
        else:
            raise AgentFlagError(f"-{name} needs a value")
        if name == "transport":
            transport = value.strip().lower()
        elif name == "workflow-path":
            workflow = value
        elif name in REGISTRY_FLAGS:
            registry[name] = value
        elif name == "log-level":
            result.extend(["--loglevel", agent_log_level(value)])
        elif name == "backoff-max-interval":
            result.extend(["--max-backoff", _go_seconds(value)])
        else:
            result.extend([f"--{AGENT_FLAGS[name]}", value])
    login = registry_login_argument(registry.get("registry-name", ""), registry.get("registry-user", ""),
                                    registry.get("registry-pass", ""))  # fmt: skip
    if login:
        result = ["--registry", login, *result]
    return _with_transport(result, transport, workflow)


def _with_transport(args: list[str], transport: str, workflow: str) -> list[str]:
    if transport == "grpc":
        return args
    if transport == "file":
        if not workflow:
            raise AgentFlagError("-transport file needs -workflow-path FILE")
        return ["run", workflow, *args]
    raise AgentFlagError("-transport: tinklet speaks grpc and file (the NATS transport has no server)")


def _bool_flag(option: str, value: str, arg: str) -> str:
    text = value.strip().lower()
    if text in _GO_TRUE:
        return f"--{option}"
    if text in _GO_FALSE:
        return f"--no-{option}"
    raise AgentFlagError(f"{arg.partition('=')[0]}: expected true or false")


def _go_seconds(value: str) -> str:
    """A Go duration (``5s``, ``500ms``, ``1m``) or plain seconds, as seconds."""
    text = value.strip()
    for suffix, factor in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if text.endswith(suffix) and text[: -len(suffix)].replace(".", "", 1).isdigit():
            return f"{float(text[: -len(suffix)]) * factor:g}"
    return text


def registry_login_argument(name: str, user: str, password: str) -> str:
    """A ``--registry`` JSON login for the agent's registry flags, ``""`` without a registry
    name or user (the registry name alone is no login, and never an image prefix)."""
    if not name.strip() or not user:
        return ""
    return json.dumps({"name": name.strip(), "user": user, "password": password})


def launcher_registry_login(environ: Mapping[str, str]) -> tuple[RegistryCredentials, ...]:
    """The registry login the launcher gave, if any: ``AGENT_REGISTRY_NAME/USER/PASS``, else
    hook-bootkit's ``DOCKER_REGISTRY`` + ``REGISTRY_USERNAME`` + ``REGISTRY_PASSWORD``. A login
    for that registry only; empty values (hook-bootkit sets every variable) mean none."""
    sources = (
        (tuple(agent_variable(flag) for flag in REGISTRY_FLAGS), "AGENT_REGISTRY_*"),
        (_LEGACY_REGISTRY, "DOCKER_REGISTRY/REGISTRY_USERNAME"),
    )
    for (name_var, user_var, pass_var), origin in sources:
        name, user = environ.get(name_var, "").strip(), environ.get(user_var, "")
        if name and user:
            password = environ.get(pass_var, "").removesuffix("\n")
            return (RegistryCredentials(registry=name, username=user, password=password, source=origin),)
    return ()
