"""Proxy settings: read once in config (flags > TINKLET_* > config file > HTTP_PROXY > http_proxy),
given to every action in both spellings unless it sets its own, and never shown in logs."""

from __future__ import annotations

from pathlib import Path

from tinklet_core.config import child_environment, load_settings
from tinklet_core.containers.spec import container_spec
from tinklet_core.model import Action
from tinklet_core.proxy import ProxySettings, daemon_differences, differences_warning, with_proxy_defaults
from tinklet_core.runtime import Privilege

PROXY = "http://user:s3cret@proxy.test:3128"


def test_proxy_options_follow_the_usual_precedence(tmp_path: Path) -> None:
    config = tmp_path / "tinklet.yaml"
    config.write_text("https-proxy: http://file.test:1\nno_proxy: file.test\n")
    environ = {
        "TINKLET_CONFIG": str(config),
        "HTTP_PROXY": "http://upper.test:1",
        "http_proxy": "http://lower.test:1",
        "HTTPS_PROXY": "http://upper.test:2",
        "TINKLET_NO_PROXY": "tinklet.test",
    }
    settings = load_settings({"http_proxy": "http://flag.test:1"}, environ=environ)
    assert settings.proxy == ProxySettings("http://flag.test:1", "http://file.test:1", "tinklet.test")
    assert load_settings({}, environ={"http_proxy": "http://lower.test:1"}).proxy.http == "http://lower.test:1"
    assert load_settings({}, environ=environ).proxy.http == "http://upper.test:1"
    assert load_settings({}, environ={}).proxy == ProxySettings()
    assert settings.runtime_settings("agent").proxy == settings.proxy


def test_every_action_gets_both_spellings_but_its_own_env_wins() -> None:
    proxy = ProxySettings(http=PROXY, https=PROXY, no_proxy="10.0.0.0/8,.local")
    action = Action(
        "wf", "t", "a", "agent", "n", "img", env=(("HTTPS_PROXY", "http://own.test:8080"), ("A", "1"))
    )
    env = container_spec(action, "img", Privilege.NONE, "x", missing=(), proxy=proxy).environment
    assert env == (
        ("HTTPS_PROXY", "http://own.test:8080"),
        ("A", "1"),
        ("HTTP_PROXY", PROXY),
        ("http_proxy", PROXY),
        ("NO_PROXY", "10.0.0.0/8,.local"),
        ("no_proxy", "10.0.0.0/8,.local"),
    ), "the action's HTTPS_PROXY replaces both spellings of tinklet's"
    assert with_proxy_defaults((("no_proxy", ""),), proxy)[0] == ("no_proxy", "")
    assert with_proxy_defaults((), ProxySettings()) == ()


def test_a_private_podman_service_gets_the_proxy_but_no_tinklet_settings() -> None:
    environ = {"PATH": "/bin", "TINKLET_REGISTRY": "secret", "http_proxy": "http://old.test:1"}
    env = child_environment(environ, ProxySettings(http=PROXY))
    assert env == {"PATH": "/bin", "HTTP_PROXY": PROXY, "http_proxy": PROXY}
    assert child_environment(environ) == {"PATH": "/bin", "http_proxy": "http://old.test:1"}


def test_the_daemon_warning_names_variables_never_values() -> None:
    proxy = ProxySettings(http=PROXY, no_proxy="local.test")
    same = {"HttpProxy": "http://xxxxx:xxxxx@proxy.test:3128", "HttpsProxy": "", "NoProxy": "local.test"}
    assert daemon_differences(proxy, same) == [], "docker info masks credentials as xxxxx"
    differing = daemon_differences(proxy, {"HttpProxy": "", "NoProxy": "local.test"})
    assert differing == ["HTTP_PROXY"]
    warning = differences_warning(differing)
    assert warning is not None and "HTTP_PROXY" in warning
    assert "s3cret" not in warning and "proxy.test" not in warning
    assert differences_warning([]) is None
    assert "s3cret" not in repr(proxy)
