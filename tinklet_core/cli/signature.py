"""Typer signatures forged from option specs: each spec a keyword parameter with its flags,
help (default and variables in words), metavar and panel; values handed over as parsed."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any, Optional

from tinklet_core.config import OptionSpec


def values_as_parsed(command: Any, keys: set[str], help_names: Sequence[str] = ()) -> None:
    """Hand the values of the options named by ``keys`` (the spec-built ones: strings, string
    lists and on/off flags, converted and checked by :func:`~tinklet_core.config.load_settings`)
    and of every on/off flag (``--help``, made here with the names the command's contexts give
    it, and ``--json``) to the command as the parser read them, without typer's own coercion.

    typer builds a pydantic ``TypeAdapter`` for every option it processes, given or not; with
    ~100 options that import and those adapters were the largest part of every start (pydantic
    alone ~40-60 ms). A typer without that per-parameter hook (``_runtime_param``) is left as
    it is: slower, same result."""
    help_names = (getattr(command, "context_settings", None) or {}).get("help_option_names", help_names)
    params = [*getattr(command, "params", ())]
    if help_names and hasattr(command, "get_help_option"):  # made on first use, with these names
        params.append(command.get_help_option(SimpleNamespace(help_option_names=help_names)))
    for sub in getattr(command, "commands", {}).values():
        values_as_parsed(sub, keys, help_names)
    for param in params:
        if (param.name in keys or getattr(param, "is_flag", False)) and hasattr(param, "_runtime_param"):
            param._runtime_param = _AS_PARSED


class _AsParsed:
    """typer's coercion step for a spec-built option: ``None`` (not given) as typer gives it,
    several values as a list, anything else as parsed."""

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        """The value as the command's callback expects it."""
        several = param.multiple or param.nargs == -1
        if value is None:
            return () if several else None
        return list(value) if several else value


_AS_PARSED = _AsParsed()


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "?", "!")) else text + "."


def human_default(value: Any) -> str:
    """A default as a person writes it: ``on`` (not ``True``), ``5`` (not ``5.0``), lists joined."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (tuple, list)):
        return ", ".join(str(item) for item in value)
    return str(value)


def option_parameters(specs: Sequence[OptionSpec]) -> list[inspect.Parameter]:
    import typer

    parameters = []
    for spec in specs:
        help_text = _sentence(spec.help)
        if spec.choices:
            help_text += f" One of: {', '.join(spec.choices)}."
        if spec.default not in (None, (), [], "", False):
            help_text += f" Default: {human_default(spec.default)}."
        help_text += f" Env: {', '.join(spec.env_names)}."
        annotation: Any
        metavar = (
            "JSON" if spec.multiple and not spec.separator else ("N" if spec.kind in (int, float) else "TEXT")
        )
        names = (spec.name, *spec.aliases)
        if spec.kind is bool:
            annotation = Optional[bool]  # noqa: UP045 - typer needs the Optional form at runtime
            flags = tuple(f"--{name}/--no-{name}" for name in names)
        elif spec.multiple:
            annotation = Optional[list[str]]  # noqa: UP045
            flags = tuple(f"--{name}" for name in names)
        else:  # numbers are converted by the config loader, which names the flag in its error;
            # every value is kept, so that one given twice is a warning (config.load_settings)
            annotation = Optional[list[str]]  # noqa: UP045
            flags = tuple(f"--{name}" for name in names)
        parameters.append(
            inspect.Parameter(
                spec.key,
                inspect.Parameter.KEYWORD_ONLY,
                default=typer.Option(
                    None,
                    *flags,
                    help=help_text,
                    show_default=False,
                    metavar=None if spec.kind is bool else metavar,
                    rich_help_panel=spec.heading,
                ),
                annotation=annotation,
            )
        )
    return parameters


def with_options(
    func: Callable[..., None], fixed: Sequence[inspect.Parameter], specs: Sequence[OptionSpec]
) -> Callable[..., None]:
    """Give ``func(**params)`` a signature typer reads: ``fixed`` parameters, then the options."""
    parameters = [*fixed, *option_parameters(specs)]
    func.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    func.__annotations__ = {p.name: p.annotation for p in parameters}
    return func


def parameter(name: str, annotation: Any, default: Any = inspect.Parameter.empty) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
