"""The secret rule, written once: what tinklet says about a value, and what it never says.

Two halves:

- **Masking.** :func:`mask_secret` removes a password from a text in every encoding a container
  engine or registry may hand back in an error: the plain text, its JSON- and URL-escaped forms,
  and any base64 (standard or URL-safe, padded or not) token that decodes to something holding
  it — ``Basic base64(user:pass)``, a docker ``auth`` field, the base64 JSON of an
  ``X-Registry-Auth`` header, even one cut short by a length limit. :func:`mask_credentials`
  does the same for a :class:`~tinklet_core.model.RegistryCredentials`.
- **Describing.** :func:`shown_value` decides whether an option's value may appear in an error
  at all: only a short single line from an option that never holds a secret. Everything else is
  named ("the value given", its kind), never echoed. :func:`option_error` builds the one line.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tinklet_core.model import RegistryCredentials

MASK = "***"
#: Options whose values are secrets (or files that commonly are pasted in place of a path).
SECRET_OPTIONS = frozenset({"registry", "registry_file", "tls_key"})
MAX_SHOWN = 80
MAX_SHOWN_PATH = 200
_RUN = 12  # a piece of a hidden value this long left in a message hides the whole message
HIDDEN_DETAILS = "(details not shown: they repeat the value given)"
_MIN_HIDDEN_PART = 4  # shorter lines of a hidden value (a blank, a brace) are not masked
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{6,}={0,2}")
_MIN_TRUNCATED = 4
_MAX_DEPTH = 3
_LOOKS_STRUCTURED = re.compile(r"-----BEGIN|[{}\[\]\"]")


def mask_secret(text: str, secret: str | None) -> str:
    """``text`` with ``secret`` masked in its plain, escaped and base64-encoded forms."""
    if not secret or not text:
        return text
    wanted = _Wanted.of(secret)
    for form in wanted.forms:
        text = text.replace(form, MASK)
    return _BASE64_RUN.sub(lambda match: _masked_token(match.group(0), wanted, 0), text)


def mask_credentials(text: str, credentials: RegistryCredentials | None) -> str:
    """``text`` with the password of ``credentials`` masked (see :func:`mask_secret`)."""
    return mask_secret(text, credentials.password if credentials else None)


@dataclass(frozen=True)
class _Wanted:
    """A secret and its unencoded forms (raw, JSON-escaped, URL-escaped), longest first."""

    secret: str
    forms: tuple[str, ...]
    heads: frozenset[str]

    @classmethod
    def of(cls, secret: str) -> _Wanted:
        forms = {
            secret,
            json.dumps(secret)[1:-1],
            urllib.parse.quote(secret, safe=""),
            urllib.parse.quote_plus(secret),
        }
        ordered = tuple(sorted((form for form in forms if form), key=len, reverse=True))
        return cls(secret, ordered, frozenset(form[:_MIN_TRUNCATED] for form in ordered))


def _masked_token(token: str, wanted: _Wanted, depth: int) -> str:
    """``MASK`` when the base64 ``token`` (at any alignment) decodes to text holding the secret."""
    if depth >= _MAX_DEPTH:
        return token
    for offset in range(4):
        decoded = _decode(token[offset:])
        if decoded and _holds(decoded, wanted, depth):
            return token[:offset] + MASK if offset else MASK
    return token


def _decode(token: str) -> str:
    """The text a (possibly truncated, unpadded, URL-safe) base64 token decodes to; ``""`` when
    it is not base64 or decodes to bytes that are not text (ordinary words, digests)."""
    body = token.rstrip("=")
    body = body[: len(body) - len(body) % 4] if len(body) % 4 == 1 else body
    padded = body + "=" * (-len(body) % 4)
    for alphabet in (b"+/", b"-_"):
        try:
            raw = base64.b64decode(padded, altchars=alphabet, validate=True)
        except (binascii.Error, ValueError):
            continue
        text = raw.decode("utf-8", "replace").rstrip("\ufffd")  # a cut token may end mid-character
        readable = "\ufffd" not in text and all(ch.isprintable() or ch in "\t\r\n" for ch in text)
        return text if readable else ""
    return ""


def _holds(decoded: str, wanted: _Wanted, depth: int) -> bool:
    """True when ``decoded`` contains the secret, ends in its first characters (a cut token), or
    holds a further base64 token that does (an ``auth`` field inside base64 JSON)."""
    if any(head in decoded for head in wanted.heads):
        if any(form in decoded for form in wanted.forms):
            return True
        secret = wanted.secret
        if any(decoded.endswith(secret[:size]) for size in range(_MIN_TRUNCATED, len(secret))):
            return True
    return any(
        _masked_token(match.group(0), wanted, depth + 1) != match.group(0)
        for match in _BASE64_RUN.finditer(decoded)
    )


def shown_value(key: str, value: Any, path: bool = False) -> str | None:
    """``repr(value)`` (for a ``path`` or URL: the bare text, up to :data:`MAX_SHOWN_PATH`
    characters) when it may appear in an error, else ``None``.

    A value is shown only when its option (``key``, the underscore name) never holds a secret
    and the value is a short single line that does not look like a key, a certificate or JSON.
    A URL's password (``tcp://user:PASSWORD@host``) is shown as ``***``.
    """
    if key in SECRET_OPTIONS or not isinstance(value, (str, int, float)) or isinstance(value, bool):
        return None
    text = str(value)
    too_long = len(text) > (MAX_SHOWN_PATH if path else MAX_SHOWN)
    if too_long or not text.isprintable() or _LOOKS_STRUCTURED.search(text):
        return None
    if not isinstance(value, str):
        return repr(value)
    text = _without_password(text)
    return text if path else repr(text)


def described_value(key: str, value: Any, path: bool = False) -> str:
    """How an option's value (``key``: the underscore name) appears in an error or a warning:
    :func:`shown_value` when that is safe, else what kind of value it was and how long, never
    its text (``the value given (2,345 characters, not shown)``). Paths and URLs (``path``) are
    shown bare: ``cannot read config file /etc/tinklet.yaml``."""
    shown = shown_value(key, value, path)
    if shown is not None:
        return shown
    if isinstance(value, dict):
        return "the mapping given"
    if isinstance(value, (list, tuple)):
        return "the list given"
    if isinstance(value, (str, bytes)):
        return f"the value given ({len(value):,} characters, not shown)"
    return "the value given"


def without_value(text: str, key: str, value: str) -> str:
    """``text`` (a library's error about an option's ``value``, which it may quote whole, split,
    or URL-encoded) with the part of ``value`` :func:`described_value` would not show masked:
    nothing for a path shown as is, a URL's password, else the value and each of its lines."""
    if described_value(key, value, path=True) == value:
        return text
    if has_url_password(value):
        return mask_secret(text, _url_password(value))
    for part in sorted({value, *value.splitlines()}, key=len, reverse=True):
        if len(part.strip()) >= _MIN_HIDDEN_PART:
            text = mask_secret(text, part.strip())
    return HIDDEN_DETAILS if _shares_a_run(text, value) else text


def _shares_a_run(text: str, value: str) -> bool:
    """True when ``text`` still holds :data:`_RUN` characters in a row of ``value`` (a piece cut
    by a length limit, lines joined), plain or URL-encoded."""
    compact = "".join(value.split())
    runs = {
        form[start : start + _RUN]
        for form in (compact, urllib.parse.quote(compact, safe=""), urllib.parse.quote_plus(compact))
        for start in range(len(form) - _RUN + 1)
    }
    return any(text[start : start + _RUN] in runs for start in range(len(text) - _RUN + 1))


def _url_password(text: str) -> str:
    """The password of a URL's ``user:password@`` part (see :func:`has_url_password`)."""
    return text.partition("://")[2].partition("@")[0].split(":", 1)[1]


def has_url_password(text: str) -> bool:
    """True when ``text`` is a URL with a password in it (``http://user:PASSWORD@host``)."""
    return _without_password(text) != text


def _without_password(text: str) -> str:
    """``text`` with the password of a URL's ``user:password@`` part masked."""
    if "://" not in text or "@" not in text:
        return text
    scheme, _, rest = text.partition("://")
    userinfo, at, host = rest.partition("@")
    if not at or "/" in userinfo or ":" not in userinfo:
        return text
    return f"{scheme}://{userinfo.split(':', 1)[0]}:{MASK}@{host}"


def option_error(origin: str, key: str, value: Any, problem: str) -> str:
    """One line saying what is wrong with an option, echoing the value only when safe.

    ``option_error("config key 'pull'", "pull", {...}, "is not one of missing, always")`` gives
    ``config key 'pull': the mapping given is not one of missing, always``.
    """
    return f"{origin}: {described_value(key, value)} {problem}"
