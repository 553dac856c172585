"""Making outside text (anything the Tink server sent) safe to put in a log line.

A Tink server is not trusted with tinklet's log: an action id, name, image or error detail may
hold a NUL, a newline, a tab or an ESC sequence that would split a log line, forge one, or drive
the terminal it is shown on; an id may be thousands of characters long. Every place where
server text reaches a log passes it through :func:`loggable` (or :func:`short_id`). Reports sent
back to the server keep the real text; only what is logged changes.
"""

from __future__ import annotations

ID_LIMIT = 64
"""How much of an id a log line shows."""

MESSAGE_LIMIT = 2000
"""How much of a longer text (an error detail, a reported message) a log line shows."""

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escaped(text: str) -> str:
    """``text`` with every non-printable character escaped (``\\x1b``, ``\\x7f``, ``\\x9b``,
    ``\\u2028``, ``\\u202e``…), however long: an action's output line as a log shows it."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in text)


def loggable(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """``text`` on one line: every non-printable character escaped (``\\n``, ``\\t``, ``\\x00``,
    ``\\x1b``, ``\\u2028``…), and, when that is longer than ``limit``, its first ``limit``
    characters followed by ``…`` and the full length."""
    if text.isprintable() and len(text) <= limit:
        return text
    escaped = "".join(ch if ch.isprintable() else _escape(ch) for ch in text[: limit + 1])
    if len(escaped) <= limit and len(text) <= limit:
        return escaped
    return f"{escaped[:limit]}…[{len(text)} chars]"


def short_id(text: str) -> str:
    """An id from the server as a log line shows it: escaped, at most :data:`ID_LIMIT` characters
    of it."""
    return loggable(text, ID_LIMIT)


def _escape(ch: str) -> str:
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"
