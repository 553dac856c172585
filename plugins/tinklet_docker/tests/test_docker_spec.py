"""The small helpers around docker's errors (the container spec is the core's: tests/test_containers.py)."""

from __future__ import annotations

import threading

import pytest

from tinklet_core.runtime_helpers import Background, innermost_reason, one_line, without_secret


def test_connection_errors_are_reduced_to_the_operating_systems_words() -> None:
    inner = FileNotFoundError(2, "No such file or directory")
    wrapped = ConnectionError(ValueError("Connection aborted.", inner))
    try:
        raise RuntimeError("Error while fetching server API version: long text") from wrapped
    except RuntimeError as exc:
        assert innermost_reason(exc) == "No such file or directory"
    assert innermost_reason(ValueError("plain\nwords")) == "plain words"


def test_reasons_are_one_bounded_line_and_never_show_a_secret() -> None:
    assert one_line("a\n  b\tc") == "a b c"
    assert len(one_line("x" * 5000)) <= 400
    assert without_secret("login hunter2 failed", "hunter2") == "login *** failed"
    assert without_secret("text", None) == "text"


def test_background_hands_back_the_value_or_the_error() -> None:
    ok = Background(lambda: 42, name="ok")
    assert ok.join(5) and ok.result() == 42

    def fail() -> int:
        raise KeyError("boom")

    failed = Background(fail, name="fail")
    assert failed.join(5)
    with pytest.raises(KeyError):
        failed.result()


def test_background_result_before_it_finished_is_an_error() -> None:
    release = threading.Event()
    pending = Background(release.wait, name="pending")
    with pytest.raises(RuntimeError):
        pending.result()
    release.set()
    assert pending.join(5)
