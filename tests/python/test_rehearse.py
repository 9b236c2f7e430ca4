"""rehearse=True (SPEC §4.6): the preview, the rehearsed upgrade, a refused
one, the rehearsal's events and its memory bound, with each migration's
changes as the binding reads them from the C accessors."""

from __future__ import annotations

import dataclasses
import json
import os
import unittest

import libmigrate
from support import MARKER, TreeCase

OLD_CONFIG = "# the app's config\nold_key = 1\nother = 2\n"
NEW_CONFIG = "# the app's config\nnew_key = 1\nother = 2\n"

# Renames a key in ~/app.conf (its diff: "-old_key = 1" / "+new_key = 1").
RENAME_KEY = """
local P = "~/app.conf"
function check()
  return not fs.read(P):find("old_key", 1, true)
end
function migrate()
  log.info("renaming old_key")
  fs.write(P, (fs.read(P):gsub("old_key", "new_key")))
  return true
end
"""

# Creates ~/notes.txt.
CREATE = """
function check()
  return fs.exists("~/notes.txt")
end
function migrate()
  fs.write("~/notes.txt", "hello\\n")
  return true
end
"""

# Moves the directory ~/olddir to ~/newdir.
MOVE_DIR = """
function check()
  return fs.is_dir("~/newdir")
end
function migrate()
  fs.rename("~/olddir", "~/newdir")
  return true
end
"""

RAISES = """
function check()
  return false
end
function migrate()
  error("the user's file is not shaped as expected")
end
"""

# Writes a 100 KB file: past a 4096-byte rehearsal_memory_limit.
BIG = """
function check()
  return fs.exists("~/big.bin")
end
function migrate()
  fs.write("~/big.bin", string.rep("x", 100000))
  return true
end
"""

THREE = {
    "v1.0.0/001_rename_key.lua": RENAME_KEY,
    "v1.1.0/001_create.lua": CREATE,
    "v1.2.0/001_move_dir.lua": MOVE_DIR,
}


class Rehearsal(TreeCase):
    scripts = THREE

    def setUp(self) -> None:
        super().setUp()
        with open(os.path.join(self.tree.home, "app.conf"), "w", encoding="utf-8") as f:
            f.write(OLD_CONFIG)
        os.makedirs(os.path.join(self.tree.home, "olddir", "sub"))
        with open(os.path.join(self.tree.home, "olddir", "sub", "data"), "w", encoding="utf-8") as f:
            f.write("kept\n")
        # Paths in changes are absolute, symlinks resolved.
        self.home = os.path.realpath(self.tree.home)

    def no_state_no_lock(self) -> None:
        self.assertFalse(os.path.lexists(self.tree.state), "a state file appeared")
        self.assertFalse(os.path.lexists(self.tree.state + ".lock"), "a lock file appeared")
        self.assertFalse(os.path.lexists(os.path.dirname(self.tree.state)), "the state's directory appeared")

    def check_changes(self, report: libmigrate.Report) -> None:
        """The three migrations' changes, as the rehearsal saw them."""
        mode = os.stat(os.path.join(self.tree.home, "app.conf")).st_mode & 0o7777
        rename, create, move = report.migrations
        self.assertEqual(len(rename.changes), 1, rename.changes)
        c = rename.changes[0]
        self.assertIsInstance(c, libmigrate.Change)
        self.assertEqual((c.kind, c.path, c.type), ("modified", os.path.join(self.home, "app.conf"), "file"))
        self.assertEqual((c.mode, c.old_mode, c.size), (mode, mode, len(NEW_CONFIG)))
        self.assertIsNone(c.from_path)
        self.assertIsNone(c.target)
        self.assertIsInstance(c.diff, str)
        lines = c.diff.splitlines()
        self.assertIn("-old_key = 1", lines)
        self.assertIn("+new_key = 1", lines)
        self.assertTrue(lines[0].startswith("--- ") and lines[1].startswith("+++ "), c.diff)
        self.assertNotIn("-other = 2", lines)  # unchanged lines are context

        self.assertEqual(len(create.changes), 1, create.changes)
        c = create.changes[0]
        self.assertEqual((c.kind, c.path, c.type, c.size), ("created", os.path.join(self.home, "notes.txt"), "file", 6))
        self.assertIsNone(c.old_mode)
        self.assertIsInstance(c.mode, int)
        self.assertEqual(c.diff.splitlines()[0], "--- /dev/null")
        self.assertIn("+hello", c.diff.splitlines())

        self.assertEqual(len(move.changes), 1, move.changes)
        c = move.changes[0]
        self.assertEqual(
            (c.kind, c.path, c.type, c.from_path),
            ("renamed", os.path.join(self.home, "newdir"), "dir", os.path.join(self.home, "olddir")),
        )
        self.assertEqual((c.mode, c.old_mode, c.diff, c.size, c.target), (None, None, None, None, None))

        # The names are the C JSON's: to_dict() of a Change is its JSON object,
        # and a Report built by hand gives the library's to_dict().
        data = json.loads(report.to_json())
        self.assertEqual([[c.to_dict() for c in m.changes] for m in report.migrations],
                         [m["changes"] for m in data["migrations"]])
        self.assertEqual(data["migrations"][0]["changes"][0]["mode"], f"0{mode:03o}")
        self.assertEqual(dataclasses.replace(report, _json=None).to_dict(), data)

    def test_preview_lists_the_changes_and_writes_nothing(self) -> None:
        before = self.tree.snapshot()
        report = libmigrate.run(None, "1.2.0", dry_run=True, rehearse=True, **self.tree.options())
        self.assertEqual(report.status, "ok", report.error)
        self.assertTrue(report.rehearse)
        self.assertTrue(report.dry_run)
        # The view held at least the new texts.
        self.assertGreaterEqual(report.rehearsal_peak_bytes, len(NEW_CONFIG) + len("hello\n"))
        self.assertEqual([(m.outcome, m.rehearsal) for m in report.migrations], [("pending", True)] * 3)
        self.assertEqual([l.message for l in report.migrations[0].log], ["renaming old_key"])
        self.check_changes(report)
        self.assertEqual(self.tree.snapshot(), before, "the preview changed the home")
        self.no_state_no_lock()
        # The executor's dict of a preview: what would run.
        result = libmigrate.run_migrations(None, "1.2.0", dry_run=True, rehearse=True, **self.tree.options())
        self.assertEqual(result, {"migrations_run": 3, "migrations_skipped": 0, "error": None,
                                  "planned_migrations": 3})
        self.assertEqual(self.tree.snapshot(), before)

    def test_rehearsed_upgrade_applies_and_keeps_the_changes(self) -> None:
        report = libmigrate.run(None, "1.2.0", rehearse=True, **self.tree.options())
        self.assertEqual(report.status, "ok", report.error)
        self.assertTrue(report.rehearse)
        self.assertFalse(report.dry_run)
        self.assertEqual([(m.outcome, m.rehearsal) for m in report.migrations], [("applied", False)] * 3)
        # The log is the real run's, once (not the rehearsal's as well).
        self.assertEqual([l.message for l in report.migrations[0].log], ["renaming old_key"])
        self.check_changes(report)
        with open(os.path.join(self.tree.home, "app.conf"), encoding="utf-8") as f:
            self.assertEqual(f.read(), NEW_CONFIG)
        with open(os.path.join(self.tree.home, "notes.txt"), encoding="utf-8") as f:
            self.assertEqual(f.read(), "hello\n")
        self.assertFalse(os.path.lexists(os.path.join(self.tree.home, "olddir")))
        with open(os.path.join(self.tree.home, "newdir", "sub", "data"), encoding="utf-8") as f:
            self.assertEqual(f.read(), "kept\n")
        with open(self.tree.state, encoding="utf-8") as f:
            self.assertEqual(json.load(f)["applied"], [m.id for m in report.migrations])
        # Recorded: a second rehearsed run has nothing to rehearse.
        again = libmigrate.run(None, "1.2.0", rehearse=True, **self.tree.options())
        self.assertEqual([m.outcome for m in again.migrations], ["skipped_state"] * 3)
        self.assertEqual([m.changes for m in again.migrations], [()] * 3)

    def test_a_run_without_rehearse_has_no_changes(self) -> None:
        report = libmigrate.run(None, "1.2.0", **self.tree.options())
        self.assertEqual(report.status, "ok", report.error)
        self.assertFalse(report.rehearse)
        self.assertEqual(report.rehearsal_peak_bytes, 0)
        self.assertEqual([(m.outcome, m.rehearsal, m.changes) for m in report.migrations],
                         [("applied", False, ())] * 3)
        data = json.loads(report.to_json())
        self.assertEqual(data["rehearse"], False)
        self.assertEqual(dataclasses.replace(report, _json=None).to_dict(), data)

    def test_events_say_which_run_sent_them(self) -> None:
        events: list[libmigrate.Event] = []
        # A preview sends only rehearsal events.
        libmigrate.run(None, "1.2.0", dry_run=True, rehearse=True, on_event=events.append,
                       **self.tree.options())
        self.assertEqual([(e.kind, e.rehearsal) for e in events if e.kind != "log"],
                         [("plan", False)] + [("start", True), ("done", True)] * 3)
        self.assertEqual([(e.message, e.rehearsal) for e in events if e.kind == "log"],
                         [("renaming old_key", True)])
        # A rehearsed upgrade: start/done per migration in the rehearsal, then for real.
        events.clear()
        report = libmigrate.run(None, "1.2.0", rehearse=True, on_event=events.append, **self.tree.options())
        self.assertEqual(report.status, "ok", report.error)
        self.assertEqual(events[0].kind, "plan")
        self.assertFalse(events[0].rehearsal)
        steps = [(e.kind, e.index, e.rehearsal) for e in events if e.kind in ("start", "done")]
        rehearsed = [(k, i, True) for i in range(3) for k in ("start", "done")]
        real = [(k, i, False) for i in range(3) for k in ("start", "done")]
        self.assertEqual(steps, rehearsed + real)
        logs = [(e.message, e.rehearsal) for e in events if e.kind == "log"]
        self.assertEqual(logs, [("renaming old_key", True), ("renaming old_key", False)])
        # Every rehearsal event comes before the first real one.
        flags = [e.rehearsal for e in events if e.kind != "plan"]
        self.assertEqual(flags, sorted(flags, reverse=True))
        # Both runs' done events say "applied": to the view, then for real.
        done = [e for e in events if e.kind == "done"]
        self.assertEqual([e.migration.outcome for e in done], ["applied"] * 6)

    def test_links_modes_copies_binaries_removals(self) -> None:
        for rel in THREE:
            os.remove(os.path.join(self.tree.migrations, rel))
        with open(os.path.join(self.tree.home, "blob.bin"), "wb") as f:
            f.write(b"a\0b")
        from support import write

        write(os.path.join(self.tree.migrations, "v1.0.0/001_misc.lua"), """
            function check() return fs.exists("~/link") end
            function migrate()
              fs.copy("~/app.conf", "~/app.conf.bak")
              fs.write("~/blob.bin", "a\\0c")
              fs.chmod("~/olddir", tonumber("700", 8))
              fs.remove_tree("~/olddir/sub")
              fs.symlink("app.conf", "~/link")
              return true
            end
        """)
        before = self.tree.snapshot()
        report = libmigrate.run(None, "1.0.0", dry_run=True, rehearse=True, **self.tree.options())
        self.assertEqual(report.status, "ok", report.error)
        self.assertEqual(self.tree.snapshot(), before)
        h = self.home
        dir_mode = before["olddir"][1]
        copy, blob, mode, removed, link = report.migrations[0].changes
        self.assertEqual((copy.kind, copy.path, copy.type, copy.from_path, copy.size),
                         ("created", f"{h}/app.conf.bak", "file", f"{h}/app.conf", len(OLD_CONFIG)))
        self.assertIn("+old_key = 1", copy.diff.splitlines())
        # Binary: no diff, the size after.
        self.assertEqual((blob.kind, blob.path, blob.diff, blob.size), ("modified", f"{h}/blob.bin", None, 3))
        self.assertEqual((mode.kind, mode.path, mode.type, mode.mode, mode.old_mode),
                         ("mode", f"{h}/olddir", "dir", 0o700, dir_mode))
        self.assertEqual((mode.size, mode.diff), (None, None))
        self.assertEqual((removed.kind, removed.path, removed.type), ("removed", f"{h}/olddir/sub", "dir"))
        self.assertEqual((link.kind, link.path, link.type, link.target, link.mode),
                         ("created", f"{h}/link", "link", "app.conf", None))
        data = json.loads(report.to_json())["migrations"][0]["changes"]
        self.assertEqual(data, [c.to_dict() for c in report.migrations[0].changes])
        self.assertEqual((data[2]["mode"], data[2]["old_mode"]), ("0700", f"0{dir_mode:03o}"))
        self.assertNotIn("size", data[4])

    def test_non_utf8_paths_round_trip(self) -> None:
        name = os.fsdecode(b"caf\xe9.conf")
        with open(os.path.join(self.tree.home, name), "w", encoding="utf-8") as f:
            f.write(OLD_CONFIG)
        tree = self.tree
        for rel in THREE:
            os.remove(os.path.join(tree.migrations, rel))
        from support import write

        write(os.path.join(tree.migrations, "v1.0.0/001_latin1.lua"),
              RENAME_KEY.replace("~/app.conf", "~/caf\\xe9.conf"))
        report = libmigrate.run(None, "1.0.0", dry_run=True, rehearse=True, **tree.options())
        self.assertEqual(report.status, "ok", report.error)
        (c,) = report.migrations[0].changes
        self.assertEqual(os.fsencode(c.path), os.fsencode(os.path.join(self.home, name)))
        self.assertIn("+new_key = 1", c.diff.splitlines())


class RefusedUpgrade(TreeCase):
    scripts = {
        "v1.0.0/001_rename_key.lua": RENAME_KEY,
        "v1.1.0/001_raises.lua": RAISES,
        "v1.2.0/001_after.lua": MARKER.replace("{name}", "after"),
    }

    def setUp(self) -> None:
        super().setUp()
        with open(os.path.join(self.tree.home, "app.conf"), "w", encoding="utf-8") as f:
            f.write(OLD_CONFIG)

    def test_a_rehearsal_failure_writes_nothing(self) -> None:
        before = self.tree.snapshot()
        report = libmigrate.run(None, "1.2.0", rehearse=True, **self.tree.options())
        self.assertEqual(report.status, "failed")
        self.assertEqual(report.code, -1)  # MIGRATE_EFAILED
        self.assertTrue(report.rehearse)
        first, raises, after = report.migrations
        self.assertIs(report.failed, raises)
        self.assertEqual(raises.outcome, "failed")
        self.assertTrue(raises.rehearsal)
        self.assertTrue(raises.error.startswith("in the rehearsal"), raises.error)
        self.assertIn("v1.1.0/001_raises", raises.error)
        self.assertIn("the user's file is not shaped as expected", raises.error)
        self.assertEqual(report.error, raises.error)
        # The first migration passed only in the rehearsal: its change is
        # listed, not made.
        self.assertEqual((first.outcome, first.rehearsal), ("pending", True))
        self.assertEqual([(c.kind, os.path.basename(c.path)) for c in first.changes], [("modified", "app.conf")])
        self.assertEqual((after.outcome, after.rehearsal), ("not_run", True))
        self.assertEqual(self.tree.snapshot(), before, "a refused upgrade changed the home")
        with open(os.path.join(self.tree.home, "app.conf"), encoding="utf-8") as f:
            self.assertEqual(f.read(), OLD_CONFIG)
        self.assertFalse(os.path.lexists(self.tree.state), "a state file appeared")
        self.assertFalse(os.path.lexists(self.tree.state + ".lock"), "a lock file appeared")
        # The executor's dict says why.
        result = libmigrate.run_migrations(None, "1.2.0", rehearse=True, **self.tree.options())
        self.assertTrue(result["error"].startswith("in the rehearsal"), result)
        # Nothing ran: the daemon must not think a migration was applied.
        self.assertEqual((result["migrations_run"], result["migrations_skipped"],
                          result["planned_migrations"]), (0, 0, 3))
        self.assertEqual(self.tree.snapshot(), before)

    def test_rehearsal_memory_limit(self) -> None:
        from support import write

        write(os.path.join(self.tree.migrations, "v1.1.0/001_raises.lua"), BIG)
        before = self.tree.snapshot()
        report = libmigrate.run(None, "1.2.0", rehearse=True, rehearsal_memory_limit=4096, **self.tree.options())
        self.assertEqual(report.status, "failed", report.error)
        self.assertEqual(report.failed.id, "v1.1.0/001_raises")
        self.assertTrue(report.failed.rehearsal)
        self.assertIn("rehearsal_memory_limit", report.failed.error)
        self.assertEqual(self.tree.snapshot(), before)
        self.assertFalse(os.path.lexists(self.tree.state))
        # With the default limit the same upgrade goes through.
        report = libmigrate.run(None, "1.2.0", rehearse=True, **self.tree.options())
        self.assertEqual(report.status, "ok", report.error)
        self.assertEqual(os.path.getsize(os.path.join(self.tree.home, "big.bin")), 100000)
        big = report.migrations[1].changes
        self.assertEqual([(c.kind, c.size) for c in big], [("created", 100000)])


if __name__ == "__main__":
    unittest.main()
