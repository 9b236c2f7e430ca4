"""libmigrate: the Python binding of the libmigrate C library (1.1 or a later 1.x).

Runs a daemon's deployment migrations (Lua scripts with check()/migrate())
from Python, standard library only (ctypes). The daemon's update executor
keeps its call site::

    from libmigrate import run_migrations

    result = await asyncio.to_thread(run_migrations, from_version, target_version)
    if result["error"]:
        ...

The library is found through $LIBMIGRATE_LIBRARY (a path), else the
installed ``libmigrate.so.1``; it is loaded on first use (or by
:func:`load`), and refused unless ``migrate_library_version()`` is 1.1 or a
later 1.x.
"""

from ._api import (
    EventCallback,
    MigrationCounts,
    Version,
    counts,
    library_path,
    library_version,
    load,
    parse_version,
    run,
    run_migrations,
    version_cmp,
    version_in_range,
)
from ._report import Change, Event, LogLine, Migration, Report

__all__ = [
    "Change",
    "Event",
    "EventCallback",
    "LogLine",
    "Migration",
    "MigrationCounts",
    "Report",
    "Version",
    "counts",
    "library_path",
    "library_version",
    "load",
    "parse_version",
    "run",
    "run_migrations",
    "version_cmp",
    "version_in_range",
]

__version__ = "1.1.0"
