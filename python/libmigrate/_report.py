"""The Python side of a run's outcome: Report, Migration, LogLine, Event."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

Outcome = Literal["pending", "applied", "skipped_state", "skipped_check", "failed", "not_run"]
Status = Literal["ok", "failed", "canceled", "error"]
EventKind = Literal["plan", "start", "done", "log", "warning"]
LogLevel = Literal["info", "warn", "error"]


@dataclass(frozen=True)
class LogLine:
    """One line a script logged with ``log.info``/``log.warn``/``log.error``."""

    level: LogLevel
    message: str


@dataclass(frozen=True)
class Migration:
    """What happened to one migration of a run (``migrate_result`` and its log).

    ``error`` is set only when ``outcome`` is ``"failed"``: the id, the script
    path, the function and the Lua error with its traceback. ``seconds`` is the
    wall time spent in the migration's Lua. ``log`` keeps the report's lines
    (at most 1000, each at most 4096 bytes); ``log_dropped`` counts the rest.
    ``changes`` will list what the migration changed in the rehearsal
    (SPEC §4.6); it stays empty until the library implements the rehearsal.
    """

    id: str
    version: str
    path: str
    outcome: Outcome
    error: str | None = None
    seconds: float = 0.0
    log: tuple[LogLine, ...] = ()
    log_dropped: int = 0
    changes: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class Report:
    """The outcome of :func:`libmigrate.run`, read from the C report.

    ``status`` is ``"ok"`` (every migration in range is applied or was
    already), ``"failed"`` (a migration failed; ``failed`` names it),
    ``"canceled"`` (the event callback stopped the run) or ``"error"`` (the
    run did not get to run migrations: a bad tree, a corrupt state, a held
    lock, an I/O error). ``error`` is the library's message for anything but
    ``"ok"``. ``code`` is migrate_run()'s return code (0, or a negative
    MIGRATE_E* value) and ``code_name`` its migrate_strerror() text.
    """

    from_version: str | None
    to_version: str | None
    dry_run: bool
    status: Status
    error: str | None
    warnings: tuple[str, ...]
    migrations: tuple[Migration, ...]
    code: int = 0
    code_name: str = ""
    _json: str | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """True when the run returned MIGRATE_OK."""
        return self.status == "ok"

    @property
    def failed(self) -> Migration | None:
        """The migration that failed, or None (``migrate_report_failed``)."""
        for m in self.migrations:
            if m.outcome == "failed":
                return m
        return None

    def to_json(self) -> str:
        """The report as JSON, exactly the text of C ``migrate_report_json()``.

        A report made by the library keeps that text (a Report is frozen, so it
        cannot drift from it). One built by hand gets the same fields in the
        same order and layout; only the spelling of ``seconds`` may differ
        from cJSON's.
        """
        if self._json is not None:
            return self._json
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def to_dict(self) -> dict[str, Any]:
        """The report as the dict ``json.loads(report.to_json())`` gives."""
        if self._json is not None:
            return json.loads(self._json)
        migrations = []
        for m in self.migrations:
            d: dict[str, Any] = {
                "id": m.id,
                "version": m.version,
                "outcome": m.outcome,
                "seconds": m.seconds,
                "error": m.error,
                "log": [{"level": line.level, "message": line.message} for line in m.log],
            }
            if m.log_dropped:
                d["log_dropped"] = m.log_dropped
            if m.changes:
                d["changes"] = [dict(c) for c in m.changes]
            migrations.append(d)
        return {
            "from": self.from_version,
            "to": self.to_version,
            "dry_run": self.dry_run,
            "status": self.status,
            "error": self.error,
            "warnings": list(self.warnings),
            "migrations": migrations,
        }


@dataclass(frozen=True)
class Event:
    """A progress event, handed to ``on_event`` on the thread running the run.

    ``kind``: ``"plan"`` (``total`` is known), ``"start"`` (migration
    ``index`` is about to run), ``"done"`` (it finished; see
    ``migration.outcome``), ``"log"`` (a script logged ``message`` at
    ``level``) or ``"warning"`` (a runner warning, ``message``).
    ``migration`` is a snapshot of the migration for start, done and log
    (without its log lines), else None. Log messages arrive whole, even
    past the report's 4096-byte bound.
    """

    kind: EventKind
    index: int
    total: int
    migration: Migration | None = None
    level: LogLevel | None = None
    message: str | None = None
