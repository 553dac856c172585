"""Settings: precedence, validation, and errors that name what is wrong without leaking secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from tinklet_core.config import load_settings, plugin_option_specs, read_config_file
from tinklet_core.errors import ConfigError
from tinklet_core.options import PluginOption
from tinklet_core.runtime import Privilege, PullPolicy, RuntimeOption


def test_defaults_apply_when_nothing_is_given() -> None:
    settings = load_settings({}, environ={})
    assert settings.runtime == "docker"
    assert settings.protocol == "v2"
    assert settings.pull_policy is PullPolicy.MISSING
    assert settings.privilege is Privilege.PRIVILEGED
    assert settings.tls.enabled is False


def test_flags_beat_env_beat_file_beat_defaults(tmp_path: Path) -> None:
    config = tmp_path / "tinklet.yaml"
    config.write_text("runtime: from-file\ntink: file:1\nidentifier: file-id\nloglevel: debug\n")
    environ = {"TINKLET_CONFIG": str(config), "TINKLET_TINK": "env:2", "TINKLET_IDENTIFIER": "env-id"}
    settings = load_settings({"identifier": "flag-id"}, environ=environ)
    assert settings.identifier == "flag-id"
    assert settings.tink == "env:2"
    assert settings.runtime == "from-file"
    assert settings.loglevel == "debug"
    assert settings.max_backoff == 5.0


def test_config_keys_may_use_dashes(tmp_path: Path) -> None:
    config = tmp_path / "tinklet.yaml"
    config.write_text("action-privilege: none\nmax-backoff: 1.5\ntls: true\n")
    settings = load_settings({"config": str(config)}, environ={})
    assert settings.privilege is Privilege.NONE
    assert settings.max_backoff == 1.5
    assert settings.tls.enabled is True


def test_plugin_options_use_the_same_precedence_and_go_only_to_their_owner(tmp_path: Path) -> None:
    specs, warnings = plugin_option_specs(
        [
            ("runtime:podman", "Runtime podman", [RuntimeOption("podman-socket", "socket")], "common"),
            (
                "runtime:kube",
                "Runtime kube",
                [RuntimeOption("kube-allow-host", "allow", kind=bool, default=False)],
                "common",
            ),
            (
                "runtime:docker",
                "Runtime docker",
                [RuntimeOption("docker-host", "url", env_fallback="DOCKER_HOST")],
                "common",
            ),
            ("metrics", "Plugin metrics", [PluginOption("metrics-address", "where")], "common"),
        ]
    )
    assert warnings == []
    config = tmp_path / "c.yaml"
    config.write_text("kube_allow_host: yes\n")
    environ = {"TINKLET_PODMAN_SOCKET": "/run/x.sock", "DOCKER_HOST": "unix:///d.sock"}
    settings = load_settings({"config": str(config), "metrics_address": ":9100"}, specs, environ=environ)
    assert settings.runtime_settings("a", "runtime:podman").options == {"podman_socket": "/run/x.sock"}
    assert settings.runtime_settings("a", "runtime:kube").options == {"kube_allow_host": True}
    assert settings.runtime_settings("a", "runtime:docker").options == {"docker_host": "unix:///d.sock"}
    assert settings.options_of("metrics") == {"metrics_address": ":9100"}


def test_a_plugin_cannot_take_a_core_option_or_another_plugins_option() -> None:
    specs, warnings = plugin_option_specs(
        [
            ("a", "Plugin a", [PluginOption("pull", "mine"), PluginOption("shared", "first")], "common"),
            ("b", "Plugin b", [PluginOption("shared", "second")], "common"),
        ]
    )
    assert [(spec.name, spec.owner) for spec in specs] == [("shared", "a")]
    assert warnings == [
        "Plugin a: option --pull is already the core's; ignored",
        "Plugin b: option --shared is already Plugin a's; ignored",
    ]


def test_id_is_an_alias_of_identifier(tmp_path: Path) -> None:
    assert load_settings({}, environ={"TINKLET_ID": "from-id"}).identifier == "from-id"
    config = tmp_path / "c.yaml"
    config.write_text("id: from-file\n")
    assert load_settings({"config": str(config)}, environ={}).identifier == "from-file"
    both = {"TINKLET_ID": "short", "TINKLET_IDENTIFIER": "long"}
    assert load_settings({}, environ=both).identifier == "long"


def test_bad_choice_names_the_option_and_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"TINKLET_PULL: 'sometimes' is not one of missing, always, never"):
        load_settings({}, environ={"TINKLET_PULL": "sometimes"})


def test_bad_number_names_its_origin(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("max_backoff: soon\n")
    with pytest.raises(ConfigError, match="config key 'max_backoff': expected float"):
        load_settings({"config": str(config)}, environ={})


def test_unreadable_config_file_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read config file .*missing.yaml: No such file"):
        read_config_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("tink: [unclosed\n")
    with pytest.raises(ConfigError, match=r"not valid YAML \(line 2\)"):
        read_config_file(bad)
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        read_config_file(bad)


def test_unknown_config_keys_are_warned_about(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("tink: a:1\ntinkk: typo:1\n")
    settings = load_settings({"config": str(config)}, environ={})
    assert settings.warnings == (f"{config}: unknown setting 'tinkk' ignored",)


def test_registry_entries_from_flags_env_and_file(tmp_path: Path) -> None:
    flag = '{"name": "127.0.0.1:5000", "user": "u", "password": "p"}'
    assert [r.registry for r in load_settings({"registry": [flag]}, environ={}).registries] == [
        "127.0.0.1:5000"
    ]
    env = (
        '[{"name": "a.example", "username": "u", "pass": "p"},'
        ' {"name": "b.example", "user": "v", "password": "q"}]'
    )
    settings = load_settings({}, environ={"TINKLET_REGISTRY": env})
    assert [(r.registry, r.username) for r in settings.registries] == [("a.example", "u"), ("b.example", "v")]
    config = tmp_path / "c.yaml"
    config.write_text("registry:\n  - {name: c.example, user: w, password: r}\n")
    assert load_settings({"config": str(config)}, environ={}).registries[0].registry == "c.example"


def test_registry_errors_never_echo_the_password() -> None:
    secret = "s3cr3t-pa55"
    for entry in ['{"name": "r", "user": "u", "password": "' + secret + '"', '{"name": "r", "user": "u"}']:
        with pytest.raises(ConfigError) as caught:
            load_settings({"registry": [entry]}, environ={})
        assert secret not in str(caught.value)
    settings = load_settings(
        {"registry": ['{"name": "r", "user": "u", "password": "' + secret + '"}']}, environ={}
    )
    assert secret not in repr(settings)
