"""The secret rule: passwords masked in every encoding, option values never echoed when unsafe."""

from __future__ import annotations

import base64
import json
import urllib.parse

import pytest

from tinklet_core.model import RegistryCredentials
from tinklet_core.redaction import MASK, described_value, mask_credentials, mask_secret, option_error
from tinklet_core.runtime_helpers import without_secret

USER = "eric"
SECRET = 'Marker-PW"9/+&x'


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _b64url(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def _registry_auth_header() -> str:
    """What docker-py sends as ``X-Registry-Auth``: URL-safe base64 of the JSON login."""
    return _b64url(json.dumps({"username": USER, "password": SECRET, "serveraddress": "r.example"}))


ENCODINGS = {
    "plain": f"login {USER}:{SECRET} refused",
    "basic": f"401 with Authorization: Basic {_b64(f'{USER}:{SECRET}')}",
    "basic-unpadded": f"Basic {_b64(f'{USER}:{SECRET}').rstrip('=')}.",
    "urlsafe": f"token={_b64url(f'{USER}:{SECRET}')}",
    "password-alone": f"pw {_b64(SECRET)}",
    "json": f"body {json.dumps({'password': SECRET})}",
    "json-auth": json.dumps({"auths": {"r.example": {"auth": _b64(f"{USER}:{SECRET}")}}}),
    "registry-auth-header": f"X-Registry-Auth: {_registry_auth_header()}",
    "base64-of-config": _b64(json.dumps({"auths": {"r": {"auth": _b64(f"{USER}:{SECRET}")}}})),
    "url-escaped": f"https://{USER}:{urllib.parse.quote(SECRET, safe='')}@r.example/v2/",
    "cut-short": f"Basic {_b64(f'{USER}:{SECRET}')[:14]}…",
}


@pytest.mark.parametrize("text", ENCODINGS.values(), ids=ENCODINGS.keys())
def test_a_password_is_masked_in_every_encoding(text: str) -> None:
    masked = mask_secret(text, SECRET)
    assert MASK in masked
    assert SECRET not in masked
    for token in masked.replace('"', " ").replace("=", " ").split():
        assert SECRET[:6] not in _decoded(token)


def _decoded(token: str) -> str:
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            return decode(token + "=" * (-len(token) % 4)).decode("utf-8", "replace")
        except ValueError:
            continue
    return ""


def test_text_without_the_password_is_left_alone() -> None:
    text = "image pull failed: unauthorized: authentication required (sha256:0123abcd, Basic cmVhbG0=)"
    assert mask_secret(text, SECRET) == text
    assert mask_secret(text, None) == text
    assert mask_secret(text, "") == text


def test_the_rest_of_the_message_survives() -> None:
    masked = mask_secret(f"pull r.example/a:1 failed: Basic {_b64(f'{USER}:{SECRET}')} refused", SECRET)
    assert masked == f"pull r.example/a:1 failed: Basic {MASK} refused"


def test_credentials_and_the_runtime_helper_use_the_same_rule() -> None:
    text = ENCODINGS["basic"]
    credentials = RegistryCredentials("r.example", USER, SECRET)
    assert mask_credentials(text, credentials) == without_secret(text, SECRET) == mask_secret(text, SECRET)
    assert mask_credentials(text, None) == text


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [
        ("pull", "alwayz", "'alwayz'"),
        ("max_backoff", "soon", "'soon'"),
        ("pull", {"name": "r", "user": "alice", "password": SECRET}, "the mapping given"),
        ("pull", [SECRET], "the list given"),
        ("pull", "x" * 200, "the value given (200 characters, not shown)"),
        (
            "tls_ca",
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
            "the value given (58 characters, not shown)",
        ),
        ("pull", '{"password": "p"}', "the value given (17 characters, not shown)"),
        ("registry", "short", "the value given (5 characters, not shown)"),
        ("tls_key", "/etc/key.pem", "the value given (12 characters, not shown)"),
        ("pull", "two\nlines", "the value given (9 characters, not shown)"),
        ("docker_host", "tcp://alice:s3cret-pw@engine:2375", "'tcp://alice:***@engine:2375'"),
        ("pull", "y" * 2345, "the value given (2,345 characters, not shown)"),
    ],
)
def test_only_short_single_line_values_of_harmless_options_are_shown(
    key: str, value: object, shown: str
) -> None:
    assert described_value(key, value) == shown


def test_an_option_error_names_the_option_and_the_problem() -> None:
    line = option_error("config key 'pull'", "pull", {"password": SECRET}, "is not one of missing, always")
    assert line == "config key 'pull': the mapping given is not one of missing, always"
