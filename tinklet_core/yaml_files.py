"""Reading a YAML (or JSON) file that a person wrote: the config file, a registry login file, a
workflow file, with the one-line errors each names it by."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def read_yaml_file(path: Path, error: type[Exception], cannot_read: str, not_valid: str) -> Any:
    """The parsed content of ``path`` (``None`` when empty). A file that cannot be read raises
    ``error(cannot_read + ": REASON")``, one that does not parse ``error(not_valid + " (line N)")``;
    neither repeats the file's text or its path (the caller's words name it safely)."""
    import yaml  # only when such a file is given: PyYAML costs every start otherwise

    try:
        return yaml.safe_load(path.read_text())
    except (OSError, ValueError) as exc:  # ValueError: a path holding a NUL, text not UTF-8
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise error(f"{cannot_read}: {reason}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        raise error(f"{not_valid}{line}") from None
