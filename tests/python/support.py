"""Shared helpers of the binding's tests: temp trees of migrations."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import textwrap
import unittest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ORACLE = os.environ.get("LIBMIGRATE_TEST_ORACLE", "")
UNDER_SAN = os.environ.get("LIBMIGRATE_TEST_SAN") == "1"

# A migration whose effect is a marker file in the home.
MARKER = """
local MARK = "~/{name}.done"
function check()
  return fs.exists(MARK)
end
function migrate()
  log.info("writing", MARK)
  fs.write(MARK, "done\\n")
  return true
end
"""

# check() already true: skipped by check, recorded.
PRESENT = """
function check()
  log.info("already there")
  return true
end
function migrate()
  error("never called: check() is true")
end
"""

# A handled failure.
FAILS = """
function check()
  return false
end
function migrate()
  return false, "the disk says no"
end
"""

# Burns about `seconds` of CPU time in migrate(), then, when `wait` is
# true, spins until ~/go exists (made by the test while the run goes on),
# then marks itself done.
SLOW = """
local MARK = "~/slow.done"
function check()
  return fs.exists(MARK)
end
function migrate()
  local t = os.clock()
  while os.clock() - t < {seconds} do end
  while {wait} and not fs.exists("~/go") do end
  fs.write(MARK, "done\\n")
  return true
end
"""


def slow(seconds: float, wait: bool = False) -> str:
    return SLOW.replace("{seconds}", str(seconds)).replace("{wait}", "true" if wait else "false")


def write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(textwrap.dedent(text).lstrip())


class Tree:
    """A temp directory holding migrations/, home/ and the state path."""

    def __init__(self, scripts: dict[str, str]) -> None:
        self.root = tempfile.mkdtemp(prefix="libmigrate-py-")
        self.migrations = os.path.join(self.root, "migrations")
        self.home = os.path.join(self.root, "home")
        self.state = os.path.join(self.home, ".teleclaude", "migration_state.json")
        os.makedirs(self.migrations)
        os.makedirs(self.home)
        for rel, text in scripts.items():
            write(os.path.join(self.migrations, rel), text)

    def options(self) -> dict:
        return {"migrations_dir": self.migrations, "home": self.home, "state_path": self.state}

    def home_files(self) -> list[str]:
        out = []
        for d, _, files in os.walk(self.home):
            out += [os.path.relpath(os.path.join(d, f), self.home) for f in files]
        return sorted(out)

    def snapshot(self) -> dict[str, tuple]:
        """Everything under the home, byte for byte: each entry's type, mode,
        mtime and content (a file's bytes, a link's target); the home too."""
        out: dict[str, tuple] = {}
        for d, dirs, files in os.walk(self.home):
            for name in [".", *dirs, *files] if d == self.home else [*dirs, *files]:
                p = os.path.normpath(os.path.join(d, name))
                st = os.lstat(p)
                if os.path.islink(p):
                    body: object = os.readlink(p)
                elif os.path.isfile(p):
                    with open(p, "rb") as f:
                        body = f.read()
                else:
                    body = None
                out[os.path.relpath(p, self.home)] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode),
                                                      st.st_mtime_ns, body)
        return out

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


# The tree of the run_migrations cases: one of each outcome.
STANDARD = {
    "v1.0.0/001_first.lua": MARKER.replace("{name}", "first"),
    "v1.1.0/001_present.lua": PRESENT,
    "v1.2.0/001_fails.lua": FAILS,
    "v1.3.0/001_after.lua": MARKER.replace("{name}", "after"),
}


class TreeCase(unittest.TestCase):
    scripts: dict[str, str] = STANDARD

    def setUp(self) -> None:
        self.tree = Tree(self.scripts)
        self.addCleanup(self.tree.remove)
