"""A transport that takes work from a spool directory instead of a Tink server.

``tinklet --protocol spool --spool-dir DIR --identifier ID`` runs each ``DIR/*.yaml`` workflow
file (Tinkerbell's template format, in name order) action by action, and appends each status
event to ``DIR/events.log`` as ``NAME STATE``. A workflow stops at its first action that does
not succeed, and a finished file is renamed ``*.done`` (one that is not a valid workflow,
``*.bad``). No server address is needed.
"""

from __future__ import annotations

from pathlib import Path

from tinklet_core import (
    Action,
    Event,
    PluginOption,
    State,
    TinkletError,
    TransportError,
    TransportSettings,
    TransportSpec,
    hookimpl,
    load_workflow,
)


class SpoolTransport:
    """Serves the actions of the workflow files in one directory, one file after another."""

    def __init__(self, directory: Path, agent_id: str) -> None:
        self.directory = directory
        self.agent_id = agent_id
        self._current: Path | None = None
        self._pending: list[Action] = []

    @classmethod
    def from_settings(cls, settings: TransportSettings) -> SpoolTransport:
        """The transport for ``--spool-dir``."""
        directory = settings.options.get("spool_dir")
        if not directory:
            raise TransportError("--spool-dir is not set", retryable=False)
        return cls(Path(directory), settings.identifier)

    def read(self) -> Action | None:
        """The next action of the current file, or of the next file; ``None`` when none is left."""
        if not self._pending:
            self._next_file()
        return self._pending[0] if self._pending else None

    def write(self, event: Event) -> None:
        """Log the event; a final one moves on (past the rest of the file if it did not succeed)."""
        try:
            with (self.directory / "events.log").open("a") as out:
                out.write(f"{event.action.name} {event.state.value}\n")
        except OSError as exc:
            raise TransportError(f"cannot write {self.directory}/events.log: {exc.strerror}") from exc
        if not event.state.is_final:
            return
        self._pending.pop(0)
        if event.state is not State.SUCCESS:
            self._pending.clear()
        if not self._pending:
            self._finish_file()

    @property
    def exhausted(self) -> bool:
        """True once no workflow file is left."""
        return not self._pending and not self._files()

    def close(self) -> None:
        """Nothing is held open."""

    def _files(self) -> list[Path]:
        return sorted(path for path in self.directory.glob("*.yaml") if path != self._current)

    def _next_file(self) -> None:
        files = self._files()
        if not files:
            return
        try:
            self._pending = list(load_workflow(files[0], agent_id=self.agent_id).actions)
        except TinkletError as exc:  # set the file aside, so the next one can run
            files[0].rename(files[0].with_suffix(".bad"))
            raise TransportError(f"{files[0].name} set aside as .bad: {exc}") from exc
        self._current = files[0]

    def _finish_file(self) -> None:
        if self._current is not None:
            self._current.rename(self._current.with_suffix(".done"))
            self._current = None


@hookimpl
def tinklet_transports() -> list[TransportSpec]:
    """The ``spool`` transport."""
    return [
        TransportSpec(
            "spool",
            SpoolTransport.from_settings,
            summary="workflow files from a directory",
            options=(PluginOption("spool-dir", "Directory of workflow files to run."),),
            needs_server=False,
        )
    ]
