"""The behaviour suite's proxy tests: actions and pulls and tinklet's proxy settings."""

from __future__ import annotations

import uuid

from tinklet_core.model import State
from tinklet_core.proxy import ProxySettings
from tinklet_core.testing.pytest_plugin import not_applicable
from tinklet_core.testing.recording_proxy import RecordingHttpServer
from tinklet_core.testing.runtime_suite.base import SuiteBase, make_action


class ProxyTests(SuiteBase):
    """Proxy settings reach actions and pulls (tests inherited by :class:`RuntimeBehaviourSuite`)."""

    def test_actions_reach_the_web_through_the_proxy(self) -> None:
        """wget in the action goes through ``--http-proxy``; an action's own ``http_proxy``
        wins, and ``NO_PROXY`` reaches the action in both spellings."""
        if not self.host_namespaces:
            not_applicable(f"{self.runtime_name} does not give actions the host's network by default")
        with RecordingHttpServer("proxy") as proxy, RecordingHttpServer("direct") as direct:
            settings = ProxySettings(http=proxy.url, https=proxy.url, no_proxy="direct.test,127.0.0.1")
            fetch = "busybox wget -q -O - http://proxied.test/hello"
            report = "env | grep -i _proxy= | sort"
            with self.opened(proxy=settings):
                outcome, lines = self.execute(
                    make_action(self.image, ["sh", "-c", f"{fetch}; {report}"], network_namespace="host")
                )
                own, own_lines = self.execute(
                    make_action(
                        self.image,
                        ["busybox", "wget", "-q", "-O", "-", f"{direct.url}/own"],
                        network_namespace="host",
                        env=(("http_proxy", ""),),
                    )
                )
        assert outcome.state is State.SUCCESS, lines
        assert lines[0] == "proxy http://proxied.test/hello"
        assert proxy.seen() == ["GET http://proxied.test/hello"], "only the proxied request goes to the proxy"
        for name in ("HTTP_PROXY", "HTTPS_PROXY"):
            assert f"{name}={proxy.url}" in lines and f"{name.lower()}={proxy.url}" in lines
        assert "NO_PROXY=direct.test,127.0.0.1" in lines and "no_proxy=direct.test,127.0.0.1" in lines
        assert own.state is State.SUCCESS, own_lines
        assert own_lines == ["direct /own"] and direct.seen() == ["GET /own"]

    def test_pulls_go_through_the_proxy_where_tinklet_decides(self) -> None:
        if not self.pulls_through_proxy:
            not_applicable(f"{self.runtime_name} pulls with its own proxy settings, not tinklet's")
        image = f"proxied-{uuid.uuid4().hex[:8]}.test/tinklet-suite/absent:1"
        with RecordingHttpServer("proxy") as proxy:
            with self.opened(proxy=ProxySettings(http=proxy.url, https=proxy.url)):
                outcome, _ = self.execute(make_action(image, ["true"]))
            assert outcome.state is State.FAILED
            host = image.split("/")[0]
            assert f"CONNECT {host}:443" in proxy.seen(), outcome.reason
