"""run(), run_migrations() and the SemVer functions over the C library."""

from __future__ import annotations

import ctypes
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict, Union

from . import _native
from ._native import EVENT_FN, ChangeStruct, EventStruct, OptionsStruct, ResultStruct, VersionStruct
from ._report import Change, Event, LogLine, Migration, Report

PathLike = Union[str, "os.PathLike[str]"]
EventCallback = Callable[[Event], object]


# ---- helpers ------------------------------------------------------------------


def _text(raw: bytes | None) -> str | None:
    """A message from the library: UTF-8 (invalid bytes become U+FFFD)."""
    return None if raw is None else raw.decode("utf-8", "replace")


def _path(raw: bytes | None) -> str:
    """A path from the library, decoded as os.fsdecode does."""
    return "" if raw is None else os.fsdecode(raw)


def _version_arg(name: str, value: object, *, allow_none: bool) -> bytes | None:
    if value is None and allow_none:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str{' or None' if allow_none else ''}, not {type(value).__name__}")
    if "\0" in value:
        raise ValueError(f"{name} {value!r} is not a version: it holds a NUL character")
    return value.encode("utf-8")


def _path_arg(name: str, value: object) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        raise TypeError(f"{name} must be a str or os.PathLike, not bytes")
    try:
        raw = os.fsencode(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{name} must be a str or os.PathLike, not {type(value).__name__}") from None
    if b"\0" in raw:
        raise ValueError(f"{name} {os.fsdecode(raw)!r}: a path cannot hold a NUL character")
    return raw


def _uint_arg(name: str, value: object, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not 0 <= value <= maximum:
        raise ValueError(f"{name} is {value}: it must be between 0 and {maximum}")
    return value


def _bool_arg(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, not {type(value).__name__}")
    return value


def _optional_path(raw: bytes | None) -> str | None:
    return None if raw is None else os.fsdecode(raw)


def _change(c: ChangeStruct) -> Change:
    """A copy of one migrate_change (paths decoded as os.fsdecode does)."""
    kind = _native.CHANGE_KINDS[c.kind] if 0 <= c.kind < len(_native.CHANGE_KINDS) else "unknown"
    file = c.type == b"file" and kind in ("created", "modified")
    return Change(
        kind=kind,  # type: ignore[arg-type]
        path=_path(c.path),
        type=_text(c.type) or "",  # type: ignore[arg-type]
        from_path=_optional_path(getattr(c, "from")),
        target=_optional_path(c.target),
        mode=c.mode if c.mode >= 0 else None,
        old_mode=c.old_mode if c.old_mode >= 0 else None,
        diff=_text(c.diff),
        size=c.size if file else None,
    )


def _changes(lib: _native.Library, handle: int, i: int) -> tuple[Change, ...]:
    """Migration i's rehearsal changes, read through the C accessors."""
    out = []
    for j in range(lib.migrate_result_change_count(handle, i)):
        c = lib.migrate_result_change(handle, i, j)
        if c:
            out.append(_change(c.contents))
    return tuple(out)


def _migration(res: ResultStruct) -> Migration:
    """A snapshot of one migrate_result (no log, no changes: the struct has neither)."""
    outcome = _native.OUTCOMES[res.outcome] if 0 <= res.outcome < len(_native.OUTCOMES) else "unknown"
    return Migration(
        id=_text(res.id) or "",
        version=_text(res.version) or "",
        path=_path(res.path),
        outcome=outcome,  # type: ignore[arg-type]
        error=_text(res.error),
        seconds=res.seconds,
        rehearsal=bool(res.rehearsal),
    )


def _report(lib: _native.Library, handle: int, code: int) -> Report:
    """Builds a Report from a C report: its JSON, plus what only accessors hold."""
    raw = lib.migrate_report_json(handle)
    if not raw:
        raise MemoryError("libmigrate: migrate_report_json() ran out of memory")
    try:
        text = ctypes.string_at(raw).decode("utf-8", "replace")
    finally:
        lib.free(raw)
    data = json.loads(text)
    count = lib.migrate_report_count(handle)
    migrations = []
    for i, m in enumerate(data["migrations"]):
        res = lib.migrate_report_get(handle, i) if i < count else None
        migrations.append(
            Migration(
                id=m["id"],
                version=m["version"],
                path=_path(res.contents.path) if res else "",
                outcome=m["outcome"],
                error=m["error"],
                seconds=float(m["seconds"]),
                log=tuple(LogLine(line["level"], line["message"]) for line in m.get("log", ())),
                log_dropped=int(m.get("log_dropped", 0)),
                rehearsal=bool(m.get("rehearsal", False)),
                changes=_changes(lib, handle, i) if i < count else (),
            )
        )
    return Report(
        from_version=data["from"],
        to_version=data["to"],
        dry_run=bool(data["dry_run"]),
        status=data["status"],
        error=data["error"],
        warnings=tuple(data.get("warnings", ())),
        migrations=tuple(migrations),
        code=code,
        code_name=lib.strerror(code),
        rehearse=bool(data.get("rehearse", False)),
        rehearsal_peak_bytes=int(data.get("rehearsal_peak_bytes", 0)),
        _json=text,
    )


class _Callback:
    """Adapts a Python on_event to migrate_event_fn for one run.

    Never lets an exception escape into C (ctypes would print it and carry
    on): the first one is kept, the run is asked to stop (non-zero return)
    and the user's callable is not called again during that run.
    """

    def __init__(self, fn: EventCallback) -> None:
        self.fn = fn
        self.error: BaseException | None = None
        # The CFUNCTYPE object: C holds only its address, so this reference
        # keeps it (and the closure) alive for the whole call.
        self.c_fn = EVENT_FN(self._trampoline)

    def _trampoline(self, ev_ptr: Any, _payload: Any) -> int:
        if self.error is not None:
            return 1
        try:
            self.fn(_event(ev_ptr.contents))
            return 0
        except BaseException as e:  # noqa: BLE001 - re-raised after the run
            self.error = e
            return 1
        finally:
            # The C event is gone once this returns; the traceback kept with
            # the exception holds this frame, so it must not reach it.
            ev_ptr = None


def _event(ev: EventStruct) -> Event:
    """A Python copy of a migrate_event (valid only during the callback)."""
    kind = _native.EVENT_KINDS[ev.kind] if 0 <= ev.kind < len(_native.EVENT_KINDS) else "unknown"
    level = None
    if kind == "log":
        level = _native.LOG_LEVELS[ev.level] if 0 <= ev.level < len(_native.LOG_LEVELS) else "info"
    return Event(
        kind=kind,  # type: ignore[arg-type]
        index=ev.index,
        total=ev.total,
        migration=_migration(ev.migration.contents) if ev.migration else None,
        level=level,  # type: ignore[arg-type]
        message=_text(ev.message),
        # Set for start, done and log only (migrate.h), like level for log.
        rehearsal=kind in ("start", "done", "log") and bool(ev.rehearsal),
    )


# ---- run ------------------------------------------------------------------------


def run(
    from_version: str | None,
    to_version: str | None,
    *,
    migrations_dir: PathLike | None = None,
    home: PathLike | None = None,
    state_path: PathLike | None = None,
    allowed_roots: Sequence[PathLike] | None = None,
    dry_run: bool = False,
    rehearse: bool = False,
    recover_corrupt_state: bool = False,
    timeout_ms: int | None = None,
    memory_limit: int | None = None,
    rehearsal_memory_limit: int | None = None,
    lock_timeout_ms: int | None = None,
    on_event: EventCallback | None = None,
) -> Report:
    """Runs the migrations with ``from_version < v <= to_version`` (C ``migrate_run``).

    Either version may be None for "unbounded" (SPEC §2); a leading "v" is
    accepted. Options left None take the library's defaults:
    ``migrations_dir`` "migrations" (relative to the working directory),
    ``home`` $HOME, ``state_path`` <home>/.teleclaude/migration_state.json
    (absolute), ``allowed_roots`` [home], ``timeout_ms`` 300000 per
    check()/migrate() call (0: none), ``memory_limit`` 256 MiB per script,
    ``lock_timeout_ms`` 0 (fail at once when another run holds the lock).

    ``rehearse=True`` (SPEC §4.6) first runs every pending migration against
    an in-memory copy-on-write view of the allowed roots, which writes
    nothing; only if all of them pass does the real run follow, under the
    same lock. A migration that fails in the rehearsal refuses the upgrade:
    ``status`` "failed", that migration's ``rehearsal`` True and its error
    starting "in the rehearsal", and nothing at all written (not even the
    state file or its lock file). With ``dry_run=True`` as well, the
    rehearsal is the whole run: a *preview* that writes nothing and takes no
    lock, every migration ``rehearsal`` True ("pending": the rehearsal
    applied it). Either way each migration's ``changes`` lists what it did
    in the rehearsal (:class:`Change`).
    ``rehearsal_memory_limit`` bounds the view's memory (default 256 MiB;
    past it the rehearsal fails with a message naming the option).

    ``on_event`` is called with an :class:`Event` for each progress event, on
    the thread running this call, while the C library waits. An exception it
    raises asks the run to stop at the next safe point (what was applied
    stays recorded); once the run has returned, that exception is re-raised,
    with the report as its ``libmigrate_report`` attribute when it takes one.
    Its return value is ignored.

    Returns the :class:`Report`, also when a migration failed (``status``
    "failed") or the run could not start (a bad tree, a corrupt state, a held
    lock: ``status`` "error"). Raises TypeError for an argument of the wrong
    type, ValueError with the library's message for a bad argument
    (MIGRATE_EINVAL: a malformed version, a downgrade, a home or root that is
    not an absolute directory, a relative state path), OSError when the
    library cannot be loaded, MemoryError when it ran out of memory before
    making a report.

    The GIL is released while the library runs: call it through
    ``asyncio.to_thread`` from an event loop. Runs on different state paths
    may go on in parallel threads.
    """
    from_b = _version_arg("from_version", from_version, allow_none=True)
    to_b = _version_arg("to_version", to_version, allow_none=True)
    mig_b = _path_arg("migrations_dir", migrations_dir)
    home_b = _path_arg("home", home)
    state_b = _path_arg("state_path", state_path)
    roots = None
    if allowed_roots is not None:
        if isinstance(allowed_roots, (str, bytes)) or not isinstance(allowed_roots, Sequence):
            raise TypeError(
                f"allowed_roots must be a sequence of paths (a list), not {type(allowed_roots).__name__}"
            )
        root_b = [_path_arg(f"allowed_roots[{i}]", r) for i, r in enumerate(allowed_roots)]
        if any(r is None for r in root_b):
            raise TypeError("allowed_roots: an entry is None, not a path")
        roots = (ctypes.c_char_p * (len(root_b) + 1))(*root_b, None)
    dry = _bool_arg("dry_run", dry_run)
    reh = _bool_arg("rehearse", rehearse)
    recover = _bool_arg("recover_corrupt_state", recover_corrupt_state)
    if on_event is not None and not callable(on_event):
        raise TypeError(f"on_event must be callable, not {type(on_event).__name__}")

    lib = _native.library()
    opts = OptionsStruct()
    rc = lib.migrate_options_init(ctypes.byref(opts), _native.OPTIONS_VERSION)
    if rc != _native.OK:
        raise OSError(
            f"{lib.path}: migrate_options_init() refuses options version "
            f"{_native.OPTIONS_VERSION}: {lib.strerror(rc)}"
        )
    opts.migrations_dir = mig_b
    opts.home = home_b
    opts.state_path = state_b
    if roots is not None:
        opts.allowed_roots = ctypes.cast(roots, ctypes.POINTER(ctypes.c_char_p))
    opts.dry_run = dry
    opts.rehearse = reh
    opts.recover_corrupt_state = recover
    if timeout_ms is not None:
        opts.timeout_ms = _uint_arg("timeout_ms", timeout_ms, _native.UINT_MAX)
    if memory_limit is not None:
        opts.memory_limit = _uint_arg("memory_limit", memory_limit, _native.SIZE_MAX)
    if rehearsal_memory_limit is not None:
        opts.rehearsal_memory_limit = _uint_arg("rehearsal_memory_limit", rehearsal_memory_limit, _native.SIZE_MAX)
    if lock_timeout_ms is not None:
        opts.lock_timeout_ms = _uint_arg("lock_timeout_ms", lock_timeout_ms, _native.UINT_MAX)
    callback = _Callback(on_event) if on_event is not None else None
    if callback is not None:
        opts.on_event = callback.c_fn

    handle = ctypes.c_void_p()
    # The GIL is released for the whole call (ctypes.CDLL). The bytes objects,
    # roots and callback (with its CFUNCTYPE object) are locals referenced
    # below, so they live until the call has returned.
    code = lib.migrate_run(from_b, to_b, ctypes.byref(opts), ctypes.byref(handle))
    report = None
    try:
        if handle.value:
            report = _report(lib, handle.value, code)
    finally:
        lib.migrate_report_free(handle)
    raised = callback.error if callback is not None else None
    del roots, callback
    if raised is not None:
        if report is not None:
            try:
                raised.libmigrate_report = report  # type: ignore[attr-defined]
            except AttributeError:
                pass
        raise raised
    if report is None:
        if code == _native.ENOMEM:
            raise MemoryError(f"libmigrate: {lib.strerror(code)}")
        raise OSError(f"libmigrate: migrate_run() returned {code} ({lib.strerror(code)}) and no report")
    if code == _native.EINVAL:
        raise ValueError(report.error or lib.strerror(code))
    return report


# ---- the executor's call ----------------------------------------------------------


class MigrationCounts(TypedDict):
    """What :func:`run_migrations` returns: the daemon executor's dict."""

    migrations_run: int
    migrations_skipped: int
    error: str | None
    planned_migrations: int


def counts(report: Report) -> MigrationCounts:
    """The executor's dict for a report (see :func:`run_migrations`)."""
    n = {o: 0 for o in _native.OUTCOMES}
    for m in report.migrations:
        n[m.outcome] = n.get(m.outcome, 0) + 1
    return {
        # "pending" is "would run" in a dry run; in a real run the rehearsal
        # refused, it ran nothing (SPEC §4.6).
        "migrations_run": n["applied"] + (n["pending"] if report.dry_run else 0),
        "migrations_skipped": n["skipped_state"] + n["skipped_check"],
        "error": None if report.status == "ok" else (report.error or report.code_name or report.status),
        "planned_migrations": len(report.migrations),
    }


def run_migrations(
    from_ver: str | None, to_ver: str | None, dry_run: bool = False, **options: Any
) -> MigrationCounts:
    """The daemon executor's call: ``run()``, summed up as the dict it reads.

    Returns exactly ``{"migrations_run", "migrations_skipped", "error",
    "planned_migrations"}``, where, over the migrations in the range:

    - ``planned_migrations``: every migration with from_ver < version <= to_ver
      (the plan, whatever the state says; 0 when the run could not read the
      tree);
    - ``migrations_run``: those whose ``migrate()`` ran and was confirmed
      (outcome "applied"); in a dry run, those that *would* run (outcome
      "pending": not recorded and ``check()`` false);
    - ``migrations_skipped``: those already in effect: recorded in the state
      ("skipped_state") or ``check()`` true ("skipped_check");
    - ``error``: None when the run succeeded; else the library's message (for
      a failed migration: its id, script, function and Lua traceback).

    A failed migration counts in none of the three counts of work, nor do
    the ones after it (outcome "not_run"): after a failure,
    ``migrations_run + migrations_skipped + 1 + not_run == planned_migrations``.
    With ``rehearse=True``, an upgrade the rehearsal refused wrote nothing,
    and says so: ``migrations_run`` is 0, the migrations that passed the
    rehearsal (outcome "pending") count as not run, and ``error`` starts
    "in the rehearsal".
    ``**options`` are :func:`run`'s keyword options. Raises what
    :func:`run` raises (ValueError for a malformed version or a downgrade).
    """
    return counts(run(from_ver, to_ver, dry_run=dry_run, **options))


# ---- SemVer -------------------------------------------------------------------------


@dataclass(frozen=True)
class Version:
    """A parsed SemVer 2.0.0 version (C ``migrate_version``).

    ``prerelease`` and ``build`` are the text after "-" and "+" (None when
    absent). ``str()`` gives the canonical text, without a leading "v".
    Compare versions with :func:`version_cmp` (precedence ignores build).
    """

    major: int
    minor: int
    patch: int
    prerelease: str | None = None
    build: str | None = None

    def __str__(self) -> str:
        s = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease is not None:
            s += f"-{self.prerelease}"
        if self.build is not None:
            s += f"+{self.build}"
        return s


def _parse(lib: _native.Library, name: str, text: object) -> tuple[bytes, Version]:
    raw = _version_arg(name, text, allow_none=False)
    assert raw is not None
    v = VersionStruct()
    if lib.migrate_version_parse(raw, ctypes.byref(v)) != _native.OK:
        raise ValueError(
            f"{name} {text!r} is not a SemVer 2.0.0 version "
            f"(MAJOR.MINOR.PATCH[-prerelease][+build], optionally after one 'v')"
        )
    pre = ctypes.string_at(v.prerelease, v.prerelease_len).decode("ascii") if v.prerelease else None
    build = ctypes.string_at(v.build, v.build_len).decode("ascii") if v.build else None
    return raw, Version(v.major, v.minor, v.patch, pre, build)


def parse_version(text: str) -> Version:
    """Parses strict SemVer 2.0.0 ("1.2.3-rc.1+build.5", or with one leading "v").

    Leading zeros and numbers above 2**64-1 are refused. Raises ValueError
    for anything that is not SemVer, TypeError for a non-str.
    """
    return _parse(_native.library(), "version", text)[1]


def version_cmp(a: str, b: str) -> int:
    """SemVer precedence of two versions: -1 if a < b, 0 if equal, 1 if a > b.

    Build metadata is ignored ("1.0.0+x" equals "1.0.0"). Raises ValueError
    naming the one that is not a version.
    """
    lib = _native.library()
    ra, _ = _parse(lib, "a", a)
    rb, _ = _parse(lib, "b", b)
    out = ctypes.c_int()
    rc = lib.migrate_version_cmp(ra, rb, ctypes.byref(out))
    if rc != _native.OK:  # pragma: no cover - both parsed above
        raise ValueError(f"version_cmp({a!r}, {b!r}): {lib.strerror(rc)}")
    return out.value


def version_in_range(version: str, from_version: str | None, to_version: str | None) -> bool:
    """Whether ``from_version < version <= to_version`` by SemVer precedence.

    The range a run from ``from_version`` to ``to_version`` covers; a None
    bound is unbounded on that side. Raises ValueError naming a text that is
    not a version.
    """
    lib = _native.library()
    rv, _ = _parse(lib, "version", version)
    rf = _parse(lib, "from_version", from_version)[0] if from_version is not None else None
    rt = _parse(lib, "to_version", to_version)[0] if to_version is not None else None
    out = ctypes.c_bool()
    rc = lib.migrate_version_in_range(rv, rf, rt, ctypes.byref(out))
    if rc != _native.OK:  # pragma: no cover - all parsed above
        raise ValueError(f"version_in_range({version!r}, {from_version!r}, {to_version!r}): {lib.strerror(rc)}")
    return bool(out.value)


def library_version() -> str:
    """migrate_library_version() of the loaded library, "MAJOR.MINOR.PATCH"."""
    return _native.library().version


def library_path() -> str:
    """What the binding loaded: $LIBMIGRATE_LIBRARY's value or the installed SONAME."""
    return _native.library().path


def load() -> None:
    """Loads the library now (else it loads on first use).

    A daemon can call it at start-up to fail early, with the OSError that
    says where the binding looked and why it could not load the library.
    """
    _native.library()
