"""A host that cannot grant what ``--action-privilege`` asks for: recognise it, name the way out.

Some hosts (sandboxes, nested containers, hardened machines) run the container engine with a
capability bounding set that lacks some capabilities, or without access to host devices. An OCI
runtime asked for more than that refuses to start the container (runc: ``unable to apply caps:
operation not permitted``), and every action fails the same way. ``--action-privilege
all-caps`` (every capability the host allows, no host devices) or ``none`` is the way out; this
module words that advice once for every engine:

- :func:`refused_privilege` recognises the refusal in an engine's error text. The OCI runtime's
  words are the only signal an engine passes on (dockerd, Podman and containerd all hand back
  the runtime's message as text, with no error code of its own), so the match is narrow: the
  runtime's own phrase for failing to apply capabilities or to create device nodes, together
  with ``operation not permitted``. Anything else stays an ordinary engine failure.
- :func:`refusal_advice` is the sentence a FAILED report and the log carry.
- :func:`startup_warning` is the warning a runtime logs once when it opens on a host whose
  bounding set lacks what ``privileged`` would ask the engine for.

Nothing here imports an engine's client library.
"""

from __future__ import annotations

from tinklet_core.runtime import Privilege

#: The OCI runtimes' phrases for a refused capability or device (lower case): runc's
#: ``unable to apply caps`` and ``error creating device nodes``, crun's ``capset``.
_REFUSAL_PHRASES = ("unable to apply caps", "capset", "error creating device nodes")
_NOT_PERMITTED = "operation not permitted"

#: What each privilege asks the host for, as the advice names it.
_ASKS = {
    Privilege.PRIVILEGED: "capabilities outside its bounding set or host devices",
    Privilege.ALL_CAPS: "capabilities outside its bounding set",
    Privilege.NONE: "the engine's default capabilities",
}
#: The way out from each privilege.
_WAY_OUT = {
    Privilege.PRIVILEGED: "pass --action-privilege all-caps (every capability the host allows, no host "
    "devices) or --action-privilege none",
    Privilege.ALL_CAPS: "pass --action-privilege none",
    Privilege.NONE: "the engine's own configuration must change (--action-privilege none already asks "
    "for the least)",
}


def refused_privilege(engine_words: str) -> bool:
    """True when ``engine_words`` (an engine's error text) is an OCI runtime refusing the
    capabilities or devices the container asks for; see the module docstring for why only text."""
    words = engine_words.lower()
    return _NOT_PERMITTED in words and any(phrase in words for phrase in _REFUSAL_PHRASES)


def refusal_advice(privilege: Privilege) -> str:
    """One sentence naming the way out for a container refused under ``privilege``."""
    return (
        f"this host cannot grant what --action-privilege {privilege.value} asks for "
        f"({_ASKS[privilege]}): {_WAY_OUT[privilege]}"
    )


def refusal_reason(engine_words: str, privilege: Privilege) -> str:
    """The FAILED reason for a refused container: the engine's words, then the advice."""
    return f"{engine_words} — {refusal_advice(privilege)}"


def startup_warning(privilege: Privilege, ungrantable: tuple[str, ...]) -> str | None:
    """The warning for a runtime opening with ``privilege`` whose engine cannot grant the
    capabilities ``ungrantable`` (names without ``CAP_``) that ``privileged`` would ask for;
    ``None`` when nothing is missing or the privilege does not ask for them."""
    if privilege is not Privilege.PRIVILEGED or not ungrantable:
        return None
    names = ", ".join(f"CAP_{name}" for name in ungrantable)
    return (
        f"this host cannot run privileged containers (its capability bounding set lacks {names}): "
        f"every action would fail to start; {_WAY_OUT[Privilege.PRIVILEGED]}"
    )
