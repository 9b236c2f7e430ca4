"""The ctypes layer: finding libmigrate.so.1 and declaring its C API.

Everything here mirrors ``include/migrate.h`` of libmigrate 1.1 (and later 1.x). The public
module (``libmigrate``) builds on it; nothing outside the package should need
it. The library is loaded on first use (:func:`library`), not at import, so
that ``import libmigrate`` works on a machine without the library and the
error names where it looked.

ctypes.CDLL (never PyDLL) releases the GIL around every foreign call, so a
run started from ``asyncio.to_thread`` leaves the event loop free; a
CFUNCTYPE callback takes the GIL back while the Python callable runs.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_bool,
    c_char_p,
    c_double,
    c_int,
    c_size_t,
    c_uint,
    c_uint64,
    c_void_p,
)

#: The MAJOR version of the C API this binding is written for (SONAME
#: libmigrate.so.1). Another MAJOR changes struct layouts: refused.
API_MAJOR = 1
#: The oldest MINOR of that MAJOR with everything this binding calls: 1.1
#: added the rehearsal (migrate_change and its accessors, and the
#: ``rehearsal`` fields at the ends of migrate_result and migrate_event,
#: which a 1.0 library's structs lack: reading them there would read past
#: the struct), so a 1.0 library is refused.
API_MINOR = 1
#: MIGRATE_OPTIONS_VERSION of the header this binding mirrors.
OPTIONS_VERSION = 1
#: The file name the dynamic linker knows the installed library by.
SONAME = f"libmigrate.so.{API_MAJOR}"
#: The environment variable naming the library file to load instead.
ENV_VAR = "LIBMIGRATE_LIBRARY"

# Return codes (migrate.h).
OK = 0
EFAILED = -1
EINVAL = -2
EMANIFEST = -3
ESTATE = -4
ELOCKED = -5
EIO = -6
ENOMEM = -7
ECANCELED = -8

OUTCOMES = ("pending", "applied", "skipped_state", "skipped_check", "failed", "not_run")
EVENT_KINDS = ("plan", "start", "done", "log", "warning")
LOG_LEVELS = ("info", "warn", "error")
CHANGE_KINDS = ("created", "modified", "removed", "renamed", "mode")
#: MIGRATE_MAX_DIFF_BYTES: a diff is kept for texts up to this size (1 MiB).
MAX_DIFF_BYTES = 1 << 20

UINT_MAX = 2 ** (8 * ctypes.sizeof(c_uint)) - 1
SIZE_MAX = 2 ** (8 * ctypes.sizeof(c_size_t)) - 1


class VersionStruct(Structure):
    """``migrate_version``; prerelease and build point into the parsed text."""

    _fields_ = [
        ("major", c_uint64),
        ("minor", c_uint64),
        ("patch", c_uint64),
        ("prerelease", c_void_p),
        ("prerelease_len", c_size_t),
        ("build", c_void_p),
        ("build_len", c_size_t),
    ]


class ResultStruct(Structure):
    """``migrate_result``; owned by the report (or the event) it comes from."""

    _fields_ = [
        ("id", c_char_p),
        ("version", c_char_p),
        ("path", c_char_p),
        ("outcome", c_int),
        ("error", c_char_p),
        ("seconds", c_double),
        # The outcome is the rehearsal's: a preview, or a refused upgrade.
        ("rehearsal", c_bool),
    ]


class ChangeStruct(Structure):
    """``migrate_change``: one change a migration made in the rehearsal.

    Owned by the report. ``from`` is a Python keyword: read it with
    ``getattr(change, "from")``. ``mode``/``old_mode`` are -1 when unset.
    """

    _fields_ = [
        ("kind", c_int),
        ("path", c_char_p),
        ("type", c_char_p),
        ("from", c_char_p),
        ("target", c_char_p),
        ("mode", c_int),
        ("old_mode", c_int),
        ("diff", c_char_p),
        ("size", c_uint64),
    ]


class EventStruct(Structure):
    """``migrate_event``; valid only during the callback."""

    _fields_ = [
        ("kind", c_int),
        ("index", c_size_t),
        ("total", c_size_t),
        ("migration", POINTER(ResultStruct)),
        ("level", c_int),
        ("message", c_char_p),
        # START, DONE, LOG: sent from the rehearsal (SPEC §4.6).
        ("rehearsal", c_bool),
    ]


#: ``int (*migrate_event_fn)(const migrate_event *, void *payload)``
EVENT_FN = CFUNCTYPE(c_int, POINTER(EventStruct), c_void_p)


class OptionsStruct(Structure):
    """``migrate_options`` as of MIGRATE_OPTIONS_VERSION 1 (libmigrate 1.0)."""

    _fields_ = [
        ("version", c_uint),
        ("migrations_dir", c_char_p),
        ("home", c_char_p),
        ("state_path", c_char_p),
        ("allowed_roots", POINTER(c_char_p)),
        ("dry_run", c_bool),
        ("rehearse", c_bool),
        ("recover_corrupt_state", c_bool),
        ("memory_limit", c_size_t),
        ("rehearsal_memory_limit", c_size_t),
        ("timeout_ms", c_uint),
        ("lock_timeout_ms", c_uint),
        ("on_event", EVENT_FN),
        ("payload", c_void_p),
    ]


_SIGNATURES = {
    # name: (restype, argtypes)
    "migrate_strerror": (c_char_p, [c_int]),
    "migrate_library_version": (c_char_p, []),
    "migrate_version_parse": (c_int, [c_char_p, POINTER(VersionStruct)]),
    "migrate_version_cmp": (c_int, [c_char_p, c_char_p, POINTER(c_int)]),
    "migrate_version_in_range": (c_int, [c_char_p, c_char_p, c_char_p, POINTER(c_bool)]),
    "migrate_outcome_name": (c_char_p, [c_int]),
    "migrate_options_init": (c_int, [POINTER(OptionsStruct), c_uint]),
    "migrate_run": (c_int, [c_char_p, c_char_p, POINTER(OptionsStruct), POINTER(c_void_p)]),
    "migrate_discover": (c_int, [c_char_p, c_char_p, POINTER(OptionsStruct), POINTER(c_void_p)]),
    "migrate_report_count": (c_size_t, [c_void_p]),
    "migrate_report_get": (POINTER(ResultStruct), [c_void_p, c_size_t]),
    "migrate_report_failed": (POINTER(ResultStruct), [c_void_p]),
    "migrate_report_error": (c_char_p, [c_void_p]),
    "migrate_report_warning_count": (c_size_t, [c_void_p]),
    "migrate_report_warning": (c_char_p, [c_void_p, c_size_t]),
    # char *: c_void_p, not c_char_p, so the pointer survives to be freed.
    "migrate_report_json": (c_void_p, [c_void_p]),
    "migrate_report_free": (None, [c_void_p]),
    "migrate_change_kind_name": (c_char_p, [c_int]),
    "migrate_result_change_count": (c_size_t, [c_void_p, c_size_t]),
    "migrate_result_change": (POINTER(ChangeStruct), [c_void_p, c_size_t, c_size_t]),
}


class Library:
    """The loaded C library with its functions declared, and where it came from."""

    def __init__(self, cdll: ctypes.CDLL, path: str) -> None:
        self.cdll = cdll
        self.path = path
        # The version first: a library of another MAJOR may lack (or have
        # changed) any of the other functions.
        try:
            get_version = cdll.migrate_library_version
        except AttributeError:
            raise OSError(f"{path}: no symbol migrate_library_version; not libmigrate") from None
        get_version.restype = c_char_p
        get_version.argtypes = []
        raw = get_version()
        self.version = raw.decode("ascii", "replace") if raw else "?"
        parts = self.version.split(".")
        try:
            major, minor = int(parts[0]), int(parts[1])
        except (IndexError, ValueError):
            raise OSError(f"{path}: migrate_library_version() is {self.version!r}, not MAJOR.MINOR.PATCH") from None
        if major != API_MAJOR or minor < API_MINOR:
            raise OSError(
                f"{path} is libmigrate {self.version}; this binding is written for "
                f"{API_MAJOR}.{API_MINOR} or a later {API_MAJOR}.x ({SONAME})"
            )
        for name, (restype, argtypes) in _SIGNATURES.items():
            try:
                fn = getattr(cdll, name)
            except AttributeError:
                raise OSError(
                    f"{path}: no symbol {name}; this binding needs libmigrate "
                    f"{API_MAJOR}.{API_MINOR} or a later {API_MAJOR}.x"
                ) from None
            fn.restype = restype
            fn.argtypes = argtypes
            setattr(self, name, fn)
        # free() for migrate_report_json()'s string: the C library's own.
        libc = ctypes.CDLL(None)
        self.free = libc.free
        self.free.restype = None
        self.free.argtypes = [c_void_p]

    def strerror(self, code: int) -> str:
        """migrate_strerror(code) as text."""
        return self.migrate_strerror(code).decode("utf-8", "replace")


_lock = threading.Lock()
_library: Library | None = None


def _try(path: str) -> tuple[ctypes.CDLL | None, str]:
    try:
        return ctypes.CDLL(path), ""
    except OSError as e:
        return None, str(e)


def _find() -> tuple[ctypes.CDLL, str]:
    """Loads the library: $LIBMIGRATE_LIBRARY when set, else the installed one.

    A set LIBMIGRATE_LIBRARY that does not load is an error by itself: a
    deliberate choice never falls back, silently, to another library.
    """
    explicit = os.environ.get(ENV_VAR)
    if explicit:
        # A path with a slash is a file: made absolute now, so that loading
        # on first use does not depend on a chdir() made since start-up.
        if "/" in explicit:
            explicit = os.path.abspath(explicit)
        cdll, why = _try(explicit)
        if cdll is not None:
            return cdll, explicit
        raise OSError(
            f"libmigrate: {ENV_VAR}={explicit!r} does not load ({why}); "
            f"the installed {SONAME} was not tried because {ENV_VAR} is set "
            f"(unset it to use the installed library)"
        )
    cdll, why = _try(SONAME)
    if cdll is not None:
        return cdll, SONAME
    found = ctypes.util.find_library("migrate")
    if found and found.startswith(SONAME):
        cdll, why2 = _try(found)
        if cdll is not None:
            return cdll, found
        why = f"{why}; {found}: {why2}"
    raise OSError(
        f"libmigrate: the C library was not found: {ENV_VAR} is not set, and "
        f"the installed {SONAME} does not load ({why}). Install libmigrate "
        f"(make install; ldconfig) or set {ENV_VAR} to the path of libmigrate.so"
    )


def library() -> Library:
    """The loaded library, loading it on first use (thread-safe).

    Raises OSError when it cannot be found or is not a 1.x libmigrate.
    """
    global _library
    lib = _library
    if lib is not None:
        return lib
    with _lock:
        if _library is None:
            cdll, path = _find()
            _library = Library(cdll, path)
        return _library
