"""Text from the server is escaped and bounded before it reaches a log line."""

from __future__ import annotations

from tinklet_core.log_safe import ID_LIMIT, loggable, short_id
from tinklet_core.model import Action


def test_control_characters_are_escaped_and_plain_text_is_left_alone() -> None:
    assert loggable("a\x00b\nc\td\re\x1b[31m\x7f\u2028f") == "a\\x00b\\nc\\td\\re\\x1b[31m\\x7f\\u2028f"
    assert loggable("wf-1/provision/stream-image: exit 0 — ok ünïcode") == (
        "wf-1/provision/stream-image: exit 0 — ok ünïcode"
    )


def test_long_text_is_cut_and_says_how_long_it_was() -> None:
    shown = loggable("x" * 5000, 100)
    assert shown == "x" * 100 + "…[5000 chars]"
    assert short_id("i" * 5000) == "i" * ID_LIMIT + "…[5000 chars]"
    assert len(loggable("\x00" * 50, 100)) <= 100 + len("…[50 chars]")  # escapes count towards the limit


def test_an_action_label_is_one_bounded_escaped_line_while_the_ids_stay_real() -> None:
    action = Action("w" * 5000, "t\nFAKE", "t\nFAKE/a\x00", "agent", "a\x00", "img")
    assert action.label == "w" * ID_LIMIT + "…[5000 chars]/t\\nFAKE/a\\x00"
    assert action.workflow_id == "w" * 5000 and action.labels()["tinklet.action"] == "t\nFAKE/a\x00"
