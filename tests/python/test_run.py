"""run_migrations()' dict and run()'s Report over a tree with every outcome."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import unittest

import libmigrate
from support import ORACLE, STANDARD, TreeCase

KEYS = {"migrations_run", "migrations_skipped", "error", "planned_migrations"}


class RunMigrationsDict(TreeCase):
    def check_shape(self, result: dict) -> None:
        self.assertIs(type(result), dict)
        self.assertEqual(set(result), KEYS)
        for key in ("migrations_run", "migrations_skipped", "planned_migrations"):
            self.assertIs(type(result[key]), int, key)
        self.assertTrue(result["error"] is None or type(result["error"]) is str)

    def test_applied_then_skipped_by_check(self) -> None:
        result = libmigrate.run_migrations("0.9.0", "1.1.0", **self.tree.options())
        self.check_shape(result)
        self.assertEqual(
            result, {"migrations_run": 1, "migrations_skipped": 1, "error": None, "planned_migrations": 2}
        )
        self.assertEqual(
            self.tree.home_files(),
            [".teleclaude/migration_state.json", ".teleclaude/migration_state.json.lock", "first.done"],
        )

    def test_second_run_is_skipped_by_state(self) -> None:
        libmigrate.run_migrations("0.9.0", "1.1.0", **self.tree.options())
        result = libmigrate.run_migrations("0.9.0", "1.1.0", **self.tree.options())
        self.check_shape(result)
        self.assertEqual(
            result, {"migrations_run": 0, "migrations_skipped": 2, "error": None, "planned_migrations": 2}
        )
        report = libmigrate.run("0.9.0", "1.1.0", **self.tree.options())
        self.assertEqual([m.outcome for m in report.migrations], ["skipped_state", "skipped_state"])

    def test_failure_is_a_result_not_an_exception(self) -> None:
        result = libmigrate.run_migrations("0.9.0", "1.3.0", **self.tree.options())
        self.check_shape(result)
        self.assertEqual(result["migrations_run"], 1)  # v1.0.0, before the failure
        self.assertEqual(result["migrations_skipped"], 1)  # v1.1.0 by check
        self.assertEqual(result["planned_migrations"], 4)
        self.assertIn("v1.2.0/001_fails", result["error"])
        self.assertIn("the disk says no", result["error"])
        self.assertNotIn("after.done", self.tree.home_files())
        # A later run resumes at the failed migration: the earlier ones are recorded.
        again = libmigrate.run_migrations("0.9.0", "1.3.0", **self.tree.options())
        self.assertEqual((again["migrations_run"], again["migrations_skipped"]), (0, 2))
        self.assertIn("the disk says no", again["error"])

    def test_dry_run_counts_what_would_run_and_writes_nothing(self) -> None:
        result = libmigrate.run_migrations("0.9.0", "1.3.0", dry_run=True, **self.tree.options())
        self.check_shape(result)
        # first, fails and after would run (check() false), present is skipped.
        self.assertEqual(
            result, {"migrations_run": 3, "migrations_skipped": 1, "error": None, "planned_migrations": 4}
        )
        self.assertEqual(self.tree.home_files(), [])
        self.assertEqual(os.listdir(self.tree.home), [])

    def test_dry_run_after_a_real_run(self) -> None:
        libmigrate.run_migrations("0.9.0", "1.1.0", **self.tree.options())
        result = libmigrate.run_migrations("0.9.0", "1.3.0", dry_run=True, **self.tree.options())
        self.assertEqual(
            result, {"migrations_run": 2, "migrations_skipped": 2, "error": None, "planned_migrations": 4}
        )

    def test_a_run_that_cannot_start_is_an_error_result(self) -> None:
        opts = self.tree.options()
        opts["migrations_dir"] = os.path.join(self.tree.root, "missing")
        result = libmigrate.run_migrations("0.9.0", "1.3.0", **opts)
        self.check_shape(result)
        self.assertEqual((result["migrations_run"], result["migrations_skipped"]), (0, 0))
        self.assertEqual(result["planned_migrations"], 0)
        self.assertIn("missing", result["error"])
        report = libmigrate.run("0.9.0", "1.3.0", **opts)
        self.assertEqual(report.status, "error")
        self.assertEqual(report.code, -3)  # MIGRATE_EMANIFEST


class ReportFields(TreeCase):
    def test_report_of_a_failed_run(self) -> None:
        report = libmigrate.run("0.9.0", "1.3.0", **self.tree.options())
        self.assertIsInstance(report, libmigrate.Report)
        self.assertEqual(report.status, "failed")
        self.assertFalse(report.ok)
        self.assertEqual(report.code, -1)
        self.assertEqual((report.from_version, report.to_version, report.dry_run), ("0.9.0", "1.3.0", False))
        self.assertEqual(report.warnings, ())
        self.assertEqual(
            [(m.id, m.version, m.outcome) for m in report.migrations],
            [
                ("v1.0.0/001_first", "1.0.0", "applied"),
                ("v1.1.0/001_present", "1.1.0", "skipped_check"),
                ("v1.2.0/001_fails", "1.2.0", "failed"),
                ("v1.3.0/001_after", "1.3.0", "not_run"),
            ],
        )
        for m, rel in zip(report.migrations, STANDARD):
            self.assertEqual(os.path.realpath(m.path), os.path.realpath(os.path.join(self.tree.migrations, rel)))
            self.assertIsInstance(m.seconds, float)
            self.assertGreaterEqual(m.seconds, 0.0)
            # Not rehearsed: no changes listed, no outcome of a rehearsal.
            self.assertEqual(m.changes, ())
            self.assertFalse(m.rehearsal)
        first, present, fails, after = report.migrations
        self.assertEqual([(l.level, l.message) for l in first.log], [("info", "writing ~/first.done")])
        self.assertEqual([(l.level, l.message) for l in present.log], [("info", "already there")])
        self.assertIsNone(first.error)
        self.assertIn("the disk says no", fails.error)
        self.assertIs(report.failed, fails)
        self.assertEqual(report.error, fails.error)

    def test_to_json_is_migrate_report_json(self) -> None:
        if not ORACLE:
            self.skipTest("LIBMIGRATE_TEST_ORACLE is not set (run through make test)")
        ours = libmigrate.run("0.9.0", "1.3.0", **self.tree.options()).to_json()
        # The same run again from scratch, by a C host printing migrate_report_json().
        os.remove(self.tree.state)
        os.remove(os.path.join(self.tree.home, "first.done"))
        out = subprocess.run(
            [ORACLE, "run", self.tree.migrations, self.tree.home, self.tree.state, "0.9.0", "1.3.0", "0"],
            check=True, capture_output=True, text=True, timeout=120,
        ).stdout
        # Only the measured times may differ between the two runs.
        seconds = re.compile(r'("seconds": )[0-9.e+-]+')
        self.assertIn('"seconds": ', out)
        self.assertEqual(seconds.sub(r"\g<1>T", ours), seconds.sub(r"\g<1>T", out))
        self.assertIn('"status": "failed"', out)

    def test_fields_are_the_json(self) -> None:
        report = libmigrate.run("0.9.0", "1.3.0", dry_run=True, **self.tree.options())
        data = json.loads(report.to_json())
        self.assertEqual(data, report.to_dict())
        # A Report built by hand gives the same dict: the library's names.
        self.assertEqual(dataclasses.replace(report, _json=None).to_dict(), data)
        self.assertEqual(data["status"], report.status)
        self.assertEqual(data["dry_run"], True)
        self.assertEqual(data["rehearse"], False)
        self.assertEqual([m["outcome"] for m in data["migrations"]], [m.outcome for m in report.migrations])
        self.assertEqual([m["seconds"] for m in data["migrations"]], [m.seconds for m in report.migrations])
        self.assertEqual(
            [[(l["level"], l["message"]) for l in m["log"]] for m in data["migrations"]],
            [[(l.level, l.message) for l in m.log] for m in report.migrations],
        )

    def test_warnings_reach_the_report(self) -> None:
        libmigrate.run("0.9.0", "1.1.0", **self.tree.options())
        # Rolled back: the state records v1.1.0, above `to`.
        report = libmigrate.run("0.9.0", "1.0.0", **self.tree.options())
        self.assertEqual(report.status, "ok")
        self.assertEqual(len(report.warnings), 1)
        self.assertIn("v1.1.0/001_present", report.warnings[0])
        self.assertEqual(json.loads(report.to_json())["warnings"], list(report.warnings))


class Layout(unittest.TestCase):
    """The ctypes structs are the C structs (guards a header change)."""

    def test_structs_match_the_header(self) -> None:
        if not ORACLE:
            self.skipTest("LIBMIGRATE_TEST_ORACLE is not set (run through make test)")
        import ctypes

        from libmigrate import _native

        out = subprocess.run([ORACLE, "layout"], check=True, capture_output=True, text=True, timeout=60).stdout
        structs = {
            "migrate_options": _native.OptionsStruct,
            "migrate_result": _native.ResultStruct,
            "migrate_change": _native.ChangeStruct,
            "migrate_event": _native.EventStruct,
            "migrate_version": _native.VersionStruct,
        }
        seen = set()
        sized = set()
        kinds = {}
        for line in out.splitlines():
            name, size, offset = line.split()
            if name == "MIGRATE_OPTIONS_VERSION":
                self.assertEqual(int(size), _native.OPTIONS_VERSION)
            elif name == "MIGRATE_VERSION_MAJOR":
                self.assertEqual(int(size), _native.API_MAJOR)
            elif name == "MIGRATE_ECANCELED":
                self.assertEqual(int(size), _native.ECANCELED)
            elif name == "MIGRATE_MAX_DIFF_BYTES":
                self.assertEqual(int(size), _native.MAX_DIFF_BYTES)
            elif name.startswith("MIGRATE_CHANGE_"):
                kinds[int(size)] = name[len("MIGRATE_CHANGE_"):].lower()
            elif "." in name:
                struct, field = name.split(".")
                self.assertIn(field, dict(structs[struct]._fields_), f"{name}: a C field the ctypes struct lacks")
                desc = getattr(structs[struct], field)
                self.assertEqual((desc.size, desc.offset), (int(size), int(offset)), name)
                seen.add(name)
            else:
                self.assertEqual(ctypes.sizeof(structs[name]), int(size), name)
                sized.add(name)
        self.assertEqual(sized, set(structs), "a struct the oracle does not lay out")
        for struct, cls in structs.items():
            for field, _ in cls._fields_:
                self.assertIn(f"{struct}.{field}", seen, "a ctypes field the C struct lacks")
        # The change kinds: the header's enum values, and the library's names.
        self.assertEqual(kinds, dict(enumerate(_native.CHANGE_KINDS)))
        lib = _native.library()
        for i, kind in enumerate(_native.CHANGE_KINDS):
            self.assertEqual(lib.migrate_change_kind_name(i).decode(), kind)
        for i, outcome in enumerate(_native.OUTCOMES):
            self.assertEqual(lib.migrate_outcome_name(i).decode(), outcome)


if __name__ == "__main__":
    unittest.main()
