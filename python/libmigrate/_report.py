"""The Python side of a run's outcome: Report, Migration, Change, LogLine, Event."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

Outcome = Literal["pending", "applied", "skipped_state", "skipped_check", "failed", "not_run"]
Status = Literal["ok", "failed", "canceled", "error"]
EventKind = Literal["plan", "start", "done", "log", "warning"]
LogLevel = Literal["info", "warn", "error"]
ChangeKind = Literal["created", "modified", "removed", "renamed", "mode"]
ChangeType = Literal["file", "dir", "link"]


@dataclass(frozen=True)
class LogLine:
    """One line a script logged with ``log.info``/``log.warn``/``log.error``."""

    level: LogLevel
    message: str


@dataclass(frozen=True)
class Change:
    """One change a migration made in the rehearsal (C ``migrate_change``, SPEC §4.6).

    ``kind``: ``"created"`` (a file, directory or symlink appeared),
    ``"modified"`` (a file's content was replaced, maybe its mode too),
    ``"removed"`` (``path`` went, with all under it), ``"renamed"``
    (``from_path`` moved to ``path``, replacing what was there) or ``"mode"``
    (``path``'s permission bits went from ``old_mode`` to ``mode``).
    ``type`` is what ``path`` is (was, for removed): ``"file"``, ``"dir"`` or
    ``"link"``. Paths are absolute with symlinks resolved, decoded as
    :func:`os.fsdecode` does (a non-UTF-8 name round-trips).

    ``from_path`` (C ``from``): a rename's old path, or the source of a file
    ``fs.copy`` made; else None. ``target``: a created link's target, as the
    script gave it; else None. ``mode``: the permission bits after (created,
    modified, mode), ``old_mode`` before (modified, mode), as ints (``0o644``);
    else None. ``size``: a created or modified file's size after, else None.
    ``diff``: a created or modified file's unified diff (``--- old`` /
    ``+++ new``, ``/dev/null`` for a new file); None when its content did not
    change, is binary (holds a NUL byte) or either text is over
    ``MIGRATE_MAX_DIFF_BYTES`` (1 MiB), and for every other change.

    Applying a migration's changes in order to the files as they were gives
    the files as the rehearsal left them.
    """

    kind: ChangeKind
    path: str
    type: ChangeType
    from_path: str | None = None
    target: str | None = None
    mode: int | None = None
    old_mode: int | None = None
    diff: str | None = None
    size: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The change as the report's JSON has it: C names, modes as "0644".

        ``from``, ``target``, ``mode`` and ``old_mode`` only when set;
        ``size`` and ``diff`` (possibly None) for a created or modified file.
        """
        d: dict[str, Any] = {"kind": self.kind, "path": self.path, "type": self.type}
        if self.from_path is not None:
            d["from"] = self.from_path
        if self.target is not None:
            d["target"] = self.target
        if self.mode is not None:
            d["mode"] = f"0{self.mode & 0o7777:03o}"
        if self.old_mode is not None:
            d["old_mode"] = f"0{self.old_mode & 0o7777:03o}"
        if self.type == "file" and self.kind in ("created", "modified"):
            d["size"] = self.size if self.size is not None else 0
            d["diff"] = self.diff
        return d


@dataclass(frozen=True)
class Migration:
    """What happened to one migration of a run (``migrate_result`` and its log).

    ``error`` is set only when ``outcome`` is ``"failed"``: the id, the script
    path, the function and the Lua error with its traceback. ``seconds`` is the
    wall time spent in the migration's Lua. ``log`` keeps the report's lines
    (at most 1000, each at most 4096 bytes); ``log_dropped`` counts the rest.

    ``rehearsal`` is True when the outcome is the rehearsal's (SPEC §4.6): a
    preview (``dry_run`` with ``rehearse``), or an upgrade the rehearsal
    refused (nothing was written). ``"pending"`` then means "the rehearsal
    applied it". It is False after a real run, also one that was rehearsed.
    ``changes`` lists the :class:`Change` objects for what the migration did in the
    rehearsal, in order: with ``rehearse=True``, those of every migration the
    rehearsal ran (kept after the real run that followed); empty without it.
    """

    id: str
    version: str
    path: str
    outcome: Outcome
    error: str | None = None
    seconds: float = 0.0
    log: tuple[LogLine, ...] = ()
    log_dropped: int = 0
    rehearsal: bool = False
    changes: tuple[Change, ...] = ()


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
    ``rehearse`` says whether the run was rehearsed (``rehearse=True``; with
    ``dry_run``, a preview). A rehearsal that failed is ``"failed"``, with the
    failed migration's ``rehearsal`` True and its error starting "in the
    rehearsal". ``rehearsal_peak_bytes`` is the most memory the rehearsal's
    view held (what ``rehearsal_memory_limit`` bounds; to size it), 0
    without ``rehearse``.
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
    rehearse: bool = False
    rehearsal_peak_bytes: int = 0
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
                "rehearsal": m.rehearsal,
                "changes": [c.to_dict() for c in m.changes],
                "log": [{"level": line.level, "message": line.message} for line in m.log],
            }
            if m.log_dropped:
                d["log_dropped"] = m.log_dropped
            migrations.append(d)
        out: dict[str, Any] = {
            "from": self.from_version,
            "to": self.to_version,
            "dry_run": self.dry_run,
            "rehearse": self.rehearse,
        }
        if self.rehearse:
            out["rehearsal_peak_bytes"] = self.rehearsal_peak_bytes
        out.update(status=self.status, error=self.error, warnings=list(self.warnings), migrations=migrations)
        return out


@dataclass(frozen=True)
class Event:
    """A progress event, handed to ``on_event`` on the thread running the run.

    ``kind``: ``"plan"`` (``total`` is known), ``"start"`` (migration
    ``index`` is about to run), ``"done"`` (it finished; see
    ``migration.outcome``), ``"log"`` (a script logged ``message`` at
    ``level``) or ``"warning"`` (a runner warning, ``message``).
    ``migration`` is a snapshot of the migration for start, done and log
    (without its log lines and changes), else None. Log messages arrive
    whole, even past the report's 4096-byte bound.

    ``rehearsal`` is True for start, done and log events sent from the
    rehearsal (SPEC §4.6); always False for plan and warning. A run with ``rehearse=True`` that is not a dry
    run sends start and done for each migration twice: first in the
    rehearsal (True), then, if the rehearsal passed, for real (False). In a
    rehearsal's done event, ``migration.outcome`` "applied" means applied to
    the rehearsal's view (read ``rehearsal`` here, not ``migration.rehearsal``,
    which the library sets on the report's results once the rehearsal is over).
    """

    kind: EventKind
    index: int
    total: int
    migration: Migration | None = None
    level: LogLevel | None = None
    message: str | None = None
    rehearsal: bool = False
