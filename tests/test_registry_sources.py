"""Registry logins from every source, merged; docker credential helpers; errors that never echo."""

from __future__ import annotations

import base64
import json
import logging
import os
import stat
from pathlib import Path

import pytest

from tinklet_core.config import load_settings
from tinklet_core.errors import ConfigError
from tinklet_core.model import RegistryCredentials
from tinklet_core.registry_auth import ConfiguredRegistryCredentials, docker_config_login

SECRET = "Marker-Secret-9f3a"


def _login(name: str, user: str, password: str = SECRET) -> str:
    return json.dumps({"name": name, "user": user, "password": password})


def test_logins_from_all_sources_merge_and_flag_entries_win_per_registry(tmp_path: Path) -> None:
    config = tmp_path / "tinklet.yaml"
    config.write_text("registry:\n  - {name: a.example, user: from-config, password: x}\n"
                      "  - {name: d.example, user: from-config, password: x}\n")  # fmt: skip
    login_file = tmp_path / "logins.json"
    in_file = [{"name": "b.example", "user": "from-file", "password": "x"},
               {"name": "c.example", "user": "from-file", "password": "x"}]  # fmt: skip
    login_file.write_text(json.dumps(in_file))
    environ = {
        "TINKLET_CONFIG": str(config),
        "TINKLET_REGISTRY": json.dumps(
            [
                {"name": "A.example", "user": "from-env", "password": "x"},
                {"name": "c.example", "user": "from-env", "password": "x"},
            ]
        ),
    }
    flags = {"registry": [_login("https://a.example/v2/", "from-flag")], "registry_file": str(login_file)}
    logins = load_settings(flags, environ=environ).registries
    from_file = f"--registry-file: file '{login_file}'"
    assert [(login.registry, login.username, login.source) for login in logins] == [
        ("https://a.example/v2/", "from-flag", "--registry"),
        ("b.example", "from-file", from_file),
        ("c.example", "from-file", from_file),
        ("d.example", "from-config", "config key 'registry'"),
    ]


def test_a_registry_flag_no_longer_replaces_the_environments_logins() -> None:
    environ = {"TINKLET_REGISTRY": _login("env.example", "e")}
    logins = load_settings({"registry": [_login("flag.example", "f")]}, environ=environ).registries
    assert [login.registry for login in logins] == ["flag.example", "env.example"]


def test_login_keys_are_matched_in_any_case_as_the_go_tinklet_documents() -> None:
    entry = json.dumps({"Name": "r.example", "User": "u", "Pass": SECRET})
    assert load_settings({"registry": [entry]}, environ={}).registries == (
        RegistryCredentials("r.example", "u", SECRET),
    )
    shouting = json.dumps({"NAME": "r.example", "USERNAME": "u", "PASSWORD": SECRET})
    assert load_settings({"registry": [shouting]}, environ={}).registries[0].password == SECRET


def test_an_at_file_entry_reads_logins_from_a_file(tmp_path: Path) -> None:
    login_file = tmp_path / "login.yaml"
    login_file.write_text(f"name: r.example\nuser: u\npassword: {SECRET}\n")
    logins = load_settings({"registry": [f"@{login_file}"]}, environ={}).registries
    assert logins == (RegistryCredentials("r.example", "u", SECRET),)
    assert logins[0].source == f"--registry: file '{login_file}'"
    from_env = load_settings({}, environ={"TINKLET_REGISTRY": f"@{login_file}"}).registries
    assert from_env == logins


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, r"--registry-file: file '.*' cannot be read: No such file or directory"),
        (
            '{"name": "r", "user": "u", "password": "' + SECRET + '"',
            r"--registry-file: file .* is not valid JSON or YAML",
        ),
        (
            '{"name": "r", "password": "' + SECRET + '"}',
            r"--registry-file: file .*: entry for 'r' needs name, user",
        ),
        ('["' + SECRET + '"]', r"--registry-file: file .*: an entry is not valid JSON"),
    ],
    ids=["missing", "truncated", "no-user", "a-string"],
)
def test_a_bad_login_file_is_one_line_that_never_echoes_it(
    tmp_path: Path, content: str | None, expected: str
) -> None:
    login_file = tmp_path / "logins.json"
    if content is not None:
        login_file.write_text(content)
    with pytest.raises(ConfigError, match=expected) as raised:
        load_settings({"registry_file": str(login_file)}, environ={})
    assert SECRET not in str(raised.value)


def test_a_login_under_the_wrong_config_key_is_never_echoed(tmp_path: Path) -> None:
    config = tmp_path / "tinklet.yaml"
    config.write_text(f"pull:\n  name: r.example\n  user: alice\n  password: {SECRET}\n")
    with pytest.raises(ConfigError) as raised:
        load_settings({"config": str(config)}, environ={})
    assert str(raised.value) == "config key 'pull': the mapping given is not one of missing, always, never"
    config.write_text(f"tink:\n  password: {SECRET}\nmax_backoff: [{SECRET}]\n")
    for flags in ({"config": str(config)}, {"config": str(config), "tink": "t:1"}):
        with pytest.raises(ConfigError) as raised:
            load_settings(flags, environ={})
        assert SECRET not in str(raised.value)
        assert "the mapping given" in str(raised.value) or "the list given" in str(raised.value)


def test_short_harmless_values_are_still_shown() -> None:
    with pytest.raises(ConfigError, match=r"^TINKLET_PULL: 'sometimes' is not one of"):
        load_settings({}, environ={"TINKLET_PULL": "sometimes"})
    with pytest.raises(ConfigError, match=r"^--max-backoff: expected float, got 'soon'$"):
        load_settings({"max_backoff": "soon"}, environ={})


def _helper(directory: Path, name: str, script: str) -> Path:
    """A ``docker-credential-NAME`` program in ``directory`` (put it on PATH)."""
    program = directory / f"docker-credential-{name}"
    program.write_text("#!/bin/sh\n" + script)
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    return program


def _store_helper(directory: Path, name: str, server: str, user: str, secret: str) -> Path:
    """A helper that knows one login, answering the documented ``get`` protocol."""
    answer = json.dumps({"ServerURL": server, "Username": user, "Secret": secret})
    return _helper(
        directory,
        name,
        f'[ "$1" = get ] || exit 3\nread -r server\nif [ "$server" = "{server}" ]; then\n'
        f"  printf '%s\\n' '{answer}'\n"
        "else\n  echo 'credentials not found in native keychain'\n  exit 1\nfi\n",
    )


@pytest.fixture
def helpers_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "bin"
    directory.mkdir()
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ['PATH']}")
    return directory


def _config(tmp_path: Path, **content: object) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(content))
    return path


def test_cred_helpers_and_creds_store_answer_before_inline_auths(
    tmp_path: Path, helpers_on_path: Path
) -> None:
    _store_helper(helpers_on_path, "per-registry", "r.example:5000", "helper-user", "helper-secret")
    _store_helper(helpers_on_path, "store", "s.example", "store-user", "store-secret")
    inline = base64.b64encode(b"inline-user:inline-secret").decode()
    config = _config(
        tmp_path,
        credHelpers={"https://r.example:5000": "per-registry"},
        credsStore="store",
        auths={"r.example:5000": {"auth": inline}, "i.example": {"auth": inline}},
    )
    assert docker_config_login(config, "r.example:5000") == RegistryCredentials(
        "r.example:5000", "helper-user", "helper-secret"
    )
    assert docker_config_login(config, "s.example") == RegistryCredentials(
        "s.example", "store-user", "store-secret"
    )
    assert docker_config_login(config, "i.example") == RegistryCredentials(
        "i.example", "inline-user", "inline-secret"
    )
    assert docker_config_login(config, "none.example") is None


def test_docker_hub_is_asked_for_by_its_index_url(tmp_path: Path, helpers_on_path: Path) -> None:
    _store_helper(helpers_on_path, "hub", "https://index.docker.io/v1/", "hub-user", "hub-secret")
    config = _config(tmp_path, credsStore="hub")
    assert docker_config_login(config, "docker.io") == RegistryCredentials(
        "docker.io", "hub-user", "hub-secret"
    )


def test_a_missing_or_failing_helper_is_a_warning_and_the_pull_goes_on(
    tmp_path: Path, helpers_on_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _helper(helpers_on_path, "broken", "echo 'keychain locked' >&2\necho 'error: keychain locked'\nexit 2\n")
    _helper(
        helpers_on_path,
        "token",
        'echo \'{"ServerURL": "t", "Username": "<token>", "Secret": "' + SECRET + "\"}'\n",
    )
    _helper(helpers_on_path, "garbled", f"echo 'not json {SECRET}'\n")
    inline = base64.b64encode(b"inline-user:inline-secret").decode()
    config = _config(
        tmp_path,
        credHelpers={
            "a.example": "absent",
            "b.example": "broken",
            "t.example": "token",
            "g.example": "garbled",
        },
        auths={"a.example": {"auth": inline}},
    )
    with caplog.at_level(logging.WARNING, logger="tinklet.registry"):
        assert docker_config_login(config, "a.example") == RegistryCredentials(
            "a.example", "inline-user", "inline-secret"
        )
        assert docker_config_login(config, "b.example") is None
        assert docker_config_login(config, "t.example") is None
        assert docker_config_login(config, "g.example") is None
    assert (
        f"docker config {config} (credHelpers) names credential helper docker-credential-absent, "
        "which is not installed" in caplog.text
    )
    assert (
        "credential helper docker-credential-broken failed for b.example (exit code 2): "
        "error: keychain locked" in caplog.text
    )
    assert "docker-credential-token holds an identity token for t.example" in caplog.text
    assert "docker-credential-garbled gave an unreadable answer for g.example" in caplog.text
    assert SECRET not in caplog.text


@pytest.mark.parametrize(
    "content",
    ['{"auths": {"r.example": {"auth": "ZXJpYw"}}}', '{"credsStore": ', "\x00\x01"],
    ids=["bad-padding", "truncated", "binary"],
)
def test_a_broken_docker_config_is_a_warning_naming_the_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: str
) -> None:
    config = tmp_path / "config.json"
    config.write_text(content)
    with caplog.at_level(logging.WARNING, logger="tinklet.registry"):
        assert docker_config_login(config, "r.example") is None
    assert str(config) in caplog.text


def test_the_debug_log_says_which_source_answered_and_never_the_secret(
    tmp_path: Path, helpers_on_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _store_helper(helpers_on_path, "store", "h.example", "helper-user", SECRET)
    config = _config(tmp_path, credsStore="store", auths={"i.example": {"username": "i", "password": SECRET}})
    flag = RegistryCredentials("f.example", "flag-user", SECRET, source="--registry")
    hook = ConfiguredRegistryCredentials([flag], config)
    with caplog.at_level(logging.DEBUG, logger="tinklet.registry"):
        for registry in ("f.example", "h.example", "i.example", "n.example"):
            hook.tinklet_registry_credentials(registry)
    assert "registry f.example: login for user flag-user from --registry" in caplog.text
    assert (
        "registry h.example: login for user helper-user from credential helper docker-credential-store"
        in caplog.text
    )
    assert f"registry i.example: login for user i from docker config {config} (auths)" in caplog.text
    assert "registry n.example: no login found" in caplog.text
    assert SECRET not in caplog.text
    assert base64.b64encode(SECRET.encode()).decode()[:12] not in caplog.text


def test_logins_where_other_users_can_see_them_are_warned_about(tmp_path: Path) -> None:
    private = tmp_path / "private.json"
    private.write_text(_login("p.example", "u"))
    private.chmod(0o600)
    shared = tmp_path / "shared.json"
    shared.write_text(_login("s.example", "u"))
    shared.chmod(0o644)
    quiet = load_settings({"registry_file": str(private), "registry": [f"@{private}"]}, environ={})
    assert quiet.warnings == ()
    loud = load_settings({"registry": [_login("f.example", "u"), f"@{shared}"]}, environ={})
    assert loud.warnings == (
        "--registry on the command line is visible to every user of this machine (ps); "
        "prefer --registry-file or --registry @FILE",
        f"registry login file {shared} is readable by other users; chmod 600 it",
    )
    assert all(SECRET not in warning for warning in loud.warnings)
