"""The runtime behaviour suite (moved into a package; split by theme in the next commit)."""

from tinklet_core.testing.runtime_suite.base import (
    AGENT,
    CAP_SYS_ADMIN,
    SUITE_LOGIN,
    RuntimeBehaviourSuite,
    SilentRegistry,
    make_action,
)

__all__ = ["AGENT", "CAP_SYS_ADMIN", "SUITE_LOGIN", "RuntimeBehaviourSuite", "SilentRegistry", "make_action"]
