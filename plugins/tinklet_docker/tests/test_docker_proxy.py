"""A running dockerd pulls with its own proxy settings: tinklet warns once when they differ from
its own, without showing either value."""

from __future__ import annotations

import logging
import uuid

import docker
import pytest
from tinklet_docker import DockerRuntime
from tinklet_docker.engine import DEFAULT_URL

from tinklet_core.proxy import ProxySettings
from tinklet_core.runtime import RuntimeSettings


def daemon_proxy() -> ProxySettings:
    """The proxy the shared dockerd itself uses, as ``docker info`` reports it."""
    client = docker.APIClient(base_url=DEFAULT_URL, version="auto")
    try:
        info = client.info()
    finally:
        client.close()
    return ProxySettings(info.get("HttpProxy") or "", info.get("HttpsProxy") or "", info.get("NoProxy") or "")


def open_with(proxy: ProxySettings) -> None:
    DockerRuntime(RuntimeSettings(agent_id=f"proxy-{uuid.uuid4().hex[:8]}", proxy=proxy)).close()


def test_a_proxy_the_daemon_does_not_use_is_warned_about_once(caplog: pytest.LogCaptureFixture) -> None:
    ours = ProxySettings(http="http://user:pw-9f3k@proxy-14b.test:3128", no_proxy=daemon_proxy().no_proxy)
    with caplog.at_level(logging.WARNING, logger="tinklet.docker"):
        open_with(ours)
    warnings = [r.getMessage() for r in caplog.records if "own proxy settings" in r.getMessage()]
    assert len(warnings) == 1
    assert "HTTP_PROXY" in warnings[0] and "NO_PROXY" not in warnings[0]
    assert "pw-9f3k" not in caplog.text and "proxy-14b.test" not in caplog.text


def test_the_daemons_own_proxy_gives_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="tinklet.docker"):
        open_with(daemon_proxy())  # here: nothing set on either side, nothing to warn about
    assert "own proxy settings" not in caplog.text
