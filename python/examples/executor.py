#!/usr/bin/env python3
"""The daemon's update executor call site, with its import changed to libmigrate.

    python3 python/examples/executor.py [--home DIR] [FROM [TO]]

Runs the repository's own migrations (migrations/, found from the working
directory as the daemon finds its own: the library's default
migrations_dir) from an asyncio program, exactly as the daemon's executor
does, then the same upgrade again (everything is recorded: nothing runs).

Without --home it works on a throw-away home, as `make demo` does: a copy of
tests/fixtures/demo/before (a home left by version 1.0.0) in a temporary
directory, made $HOME for the run. FROM defaults to 1.0.0, TO to 1.3.0.
Prints one line per run: the dict run_migrations returned, as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

import libmigrate

# Before: from teleclaude.deployment.migrations import run_migrations
from libmigrate import run_migrations

log = logging.getLogger("executor")
REPO = Path(__file__).resolve().parents[2]


async def execute_update(from_version: str, target_version: str) -> dict:
    """The executor's step, unchanged but for the import above."""
    result = await asyncio.to_thread(run_migrations, from_version, target_version)
    if result["error"]:
        log.error("migrations failed: %s", result["error"])
    else:
        log.info(
            "migrations: %d run, %d skipped",
            result["migrations_run"],
            result["migrations_skipped"],
        )
    return result


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", help="the home to migrate (default: a throw-away copy of the demo fixture)")
    parser.add_argument("from_version", nargs="?", default="1.0.0")
    parser.add_argument("target_version", nargs="?", default="1.3.0")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)

    libmigrate.load()  # at start-up: a missing library fails here, not mid-upgrade
    scratch = None
    home = args.home
    if home is None:
        scratch = tempfile.mkdtemp(prefix="libmigrate-executor-")
        home = os.path.join(scratch, "home")
        shutil.copytree(REPO / "tests" / "fixtures" / "demo" / "before", home, symlinks=True)
    # The daemon runs with its user's $HOME and from the directory that holds
    # migrations/: the library's defaults, so the call takes no options.
    os.environ["HOME"] = os.path.abspath(home)
    os.chdir(REPO)
    try:
        first = await execute_update(args.from_version, args.target_version)
        print("upgrade:", json.dumps(first), flush=True)
        again = await execute_update(args.from_version, args.target_version)
        print("again:", json.dumps(again), flush=True)
        return 0 if first["error"] is None and again["error"] is None else 1
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
