"""Bad arguments raise ValueError/TypeError with the library's message;
SemVer functions; finding and checking the library."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import unittest

import libmigrate
from support import REPO, TreeCase


class BadArguments(TreeCase):
    def test_malformed_version(self) -> None:
        for bad in ("1.0", "1.02.3", "latest", "v", ""):
            with self.subTest(bad=bad):
                with self.assertRaises(ValueError) as caught:
                    libmigrate.run_migrations(bad, "1.3.0", **self.tree.options())
                self.assertIn(repr(bad)[1:-1] or "from", str(caught.exception))
                with self.assertRaises(ValueError):
                    libmigrate.run("1.0.0", bad, **self.tree.options())
        self.assertEqual(self.tree.home_files(), [], "something ran")

    def test_downgrade(self) -> None:
        with self.assertRaises(ValueError) as caught:
            libmigrate.run_migrations("1.3.0", "1.0.0", **self.tree.options())
        message = str(caught.exception)
        self.assertIn("1.3.0", message)
        self.assertIn("1.0.0", message)
        self.assertIn("downgrade", message)
        self.assertEqual(self.tree.home_files(), [])

    def test_options_the_library_refuses(self) -> None:
        cases = [
            ("home", dict(home="relative/home")),
            ("state_path", dict(state_path="state.json")),
            ("allowed_roots", dict(allowed_roots=[])),
            # Refused before a rehearsal (or a preview) would run.
            ("state_path", dict(state_path="state.json", rehearse=True)),
            ("home", dict(home="relative/home", rehearse=True, dry_run=True)),
        ]
        for name, bad in cases:
            with self.subTest(name=name):
                opts = {**self.tree.options(), **bad}
                with self.assertRaises(ValueError) as caught:
                    libmigrate.run("0.9.0", "1.3.0", **opts)
                self.assertIn(name, str(caught.exception))
        self.assertEqual(self.tree.home_files(), [])

    def test_wrong_types(self) -> None:
        cases = [
            ((1, "1.0.0"), {}),
            (("1.0.0", b"1.1.0"), {}),
            (("1.0.0", "1.1.0"), dict(allowed_roots="/tmp")),
            (("1.0.0", "1.1.0"), dict(allowed_roots=[None])),
            (("1.0.0", "1.1.0"), dict(home=b"/tmp")),
            (("1.0.0", "1.1.0"), dict(dry_run=1)),
            (("1.0.0", "1.1.0"), dict(rehearse="yes")),
            (("1.0.0", "1.1.0"), dict(rehearsal_memory_limit=1.5)),
            (("1.0.0", "1.1.0"), dict(timeout_ms=1.5)),
            (("1.0.0", "1.1.0"), dict(timeout_ms=True)),
            (("1.0.0", "1.1.0"), dict(on_event="print")),
        ]
        for args, kwargs in cases:
            with self.subTest(args=args, kwargs=kwargs):
                with self.assertRaises(TypeError):
                    libmigrate.run(*args, **{**self.tree.options(), **kwargs})
        with self.assertRaises(TypeError):
            libmigrate.run_migrations("1.0.0", "1.1.0", no_such_option=1)

    def test_out_of_range_numbers_and_nul(self) -> None:
        for kwargs in (dict(timeout_ms=-1), dict(timeout_ms=2**32), dict(memory_limit=-5),
                       dict(rehearsal_memory_limit=-1),
                       dict(lock_timeout_ms=2**40), dict(home="/tmp/a\0b")):
            with self.subTest(kwargs=kwargs):
                with self.assertRaises(ValueError):
                    libmigrate.run("1.0.0", "1.1.0", **{**self.tree.options(), **kwargs})
        with self.assertRaises(ValueError):
            libmigrate.run("1.0.0\0x", "1.1.0", **self.tree.options())

    def test_options_reach_the_library(self) -> None:
        from support import slow, write

        write(os.path.join(self.tree.migrations, "v1.0.0/001_first.lua"), slow(5))
        report = libmigrate.run("0.9.0", "1.0.0", timeout_ms=50, **self.tree.options())
        self.assertEqual(report.status, "failed")
        self.assertIn("timed out after 50 ms", report.error)
        # memory_limit: a script that allocates far past 1 MiB fails.
        write(os.path.join(self.tree.migrations, "v1.0.0/001_first.lua"),
              'function check() local t = {} for i = 1, 1e6 do t[i] = i end return true end\n'
              'function migrate() return true end\n')
        report = libmigrate.run("0.9.0", "1.0.0", memory_limit=1 << 20, **self.tree.options())
        self.assertEqual(report.status, "failed")
        self.assertIn("memory", report.error.lower())


class SemVer(unittest.TestCase):
    def test_parse_version(self) -> None:
        v = libmigrate.parse_version("v1.2.3-rc.1+build.5")
        self.assertEqual((v.major, v.minor, v.patch, v.prerelease, v.build), (1, 2, 3, "rc.1", "build.5"))
        self.assertEqual(str(v), "1.2.3-rc.1+build.5")
        self.assertEqual(libmigrate.parse_version("18446744073709551615.0.0").major, 2**64 - 1)
        self.assertIsNone(libmigrate.parse_version("1.0.0").prerelease)
        for bad in ("1.0", "01.0.0", "1.0.0-", "18446744073709551616.0.0", "vv1.0.0", " 1.0.0"):
            with self.subTest(bad=bad), self.assertRaises(ValueError) as caught:
                libmigrate.parse_version(bad)
            self.assertIn(repr(bad), str(caught.exception))
        with self.assertRaises(TypeError):
            libmigrate.parse_version(None)  # type: ignore[arg-type]

    def test_version_cmp(self) -> None:
        self.assertEqual(libmigrate.version_cmp("1.0.0-rc.1", "1.0.0"), -1)
        self.assertEqual(libmigrate.version_cmp("1.0.0", "v1.0.0+build"), 0)
        self.assertEqual(libmigrate.version_cmp("1.10.0", "1.9.0"), 1)
        self.assertEqual(libmigrate.version_cmp("1.0.0-alpha.10", "1.0.0-alpha.9"), 1)
        with self.assertRaises(ValueError) as caught:
            libmigrate.version_cmp("1.0.0", "x")
        self.assertIn("'x'", str(caught.exception))

    def test_version_in_range(self) -> None:
        self.assertTrue(libmigrate.version_in_range("1.1.0", "1.0.0", "1.1.0"))
        self.assertFalse(libmigrate.version_in_range("1.0.0", "1.0.0", "1.1.0"))
        self.assertTrue(libmigrate.version_in_range("9.0.0", "1.0.0", None))
        self.assertTrue(libmigrate.version_in_range("0.0.1", None, "1.0.0"))
        self.assertFalse(libmigrate.version_in_range("1.1.0-rc.1", "1.1.0", None))
        with self.assertRaises(ValueError):
            libmigrate.version_in_range("1.0.0", "bad", None)


def python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)


class FindingTheLibrary(unittest.TestCase):
    def base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "LIBMIGRATE_LIBRARY"}
        env["PYTHONPATH"] = os.path.join(REPO, "python")
        env["LD_LIBRARY_PATH"] = "/nonexistent"
        return env

    def test_loads_the_library_it_was_pointed_at(self) -> None:
        self.assertEqual(libmigrate.library_path(), os.environ.get("LIBMIGRATE_LIBRARY", "libmigrate.so.1"))
        self.assertEqual(libmigrate.library_version().split(".")[0], "1")

    def test_a_missing_library_is_an_oserror_naming_both_ways(self) -> None:
        env = self.base_env()
        env["LIBMIGRATE_LIBRARY"] = "/nonexistent/libmigrate.so"
        out = python("import libmigrate\ntry:\n libmigrate.run(None, None)\nexcept OSError as e:\n print('OSError:', e)", env)
        self.assertIn("OSError: ", out.stdout, out.stderr)
        self.assertIn("/nonexistent/libmigrate.so", out.stdout)
        self.assertIn("libmigrate.so.1", out.stdout)
        if not os.path.exists("/usr/local/lib/libmigrate.so.1") and not os.path.exists("/usr/lib/libmigrate.so.1"):
            del env["LIBMIGRATE_LIBRARY"]
            out = python("import libmigrate\ntry:\n libmigrate.load()\nexcept OSError as e:\n print('OSError:', e)", env)
            self.assertIn("OSError: ", out.stdout, out.stderr)
            self.assertIn("LIBMIGRATE_LIBRARY is not set", out.stdout)
            self.assertIn("libmigrate.so.1", out.stdout)

    def test_import_needs_no_library(self) -> None:
        env = self.base_env()
        env["LIBMIGRATE_LIBRARY"] = "/nonexistent/libmigrate.so"
        out = python("import libmigrate; print('imported', libmigrate.__version__)", env)
        # The package's version is pyproject.toml's.
        with open(os.path.join(REPO, "python", "pyproject.toml"), encoding="utf-8") as f:
            version = re.search(r'^version = "([^"]+)"', f.read(), re.M).group(1)
        self.assertEqual(out.stdout.strip(), f"imported {version}", out.stderr)

    def stand_in(self, version: str) -> subprocess.CompletedProcess:
        """Loads a library whose migrate_library_version() says `version`."""
        from support import Tree

        tree = Tree({})
        self.addCleanup(tree.remove)
        src = os.path.join(tree.root, "old.c")
        so = os.path.join(tree.root, "libold.so")
        with open(src, "w") as f:
            f.write('const char *migrate_library_version(void) { return "%s"; }\n' % version)
        cc = os.environ.get("CC", "cc")
        subprocess.run([cc, "-shared", "-fPIC", "-o", so, src], check=True, timeout=60)
        env = self.base_env()
        env["LIBMIGRATE_LIBRARY"] = so
        code = "import libmigrate\ntry:\n libmigrate.load()\nexcept OSError as e:\n print('OSError:', e)"
        return python(code, env)

    def test_a_library_of_another_major_is_refused(self) -> None:
        # A stand-in: a library that says it is 0.1.0 (the API before 1.0).
        out = self.stand_in("0.1.0")
        self.assertIn("OSError: ", out.stdout, out.stderr)
        self.assertIn("is libmigrate 0.1.0", out.stdout)
        self.assertIn("written for 1.1", out.stdout)

    def test_a_1_0_library_is_refused(self) -> None:
        # 1.0 has no rehearsal: its migrate_result and migrate_event end
        # before the `rehearsal` fields the binding reads.
        out = self.stand_in("1.0.0")
        self.assertIn("OSError: ", out.stdout, out.stderr)
        self.assertIn("is libmigrate 1.0.0", out.stdout)
        self.assertIn("written for 1.1 or a later 1.x", out.stdout)


if __name__ == "__main__":
    unittest.main()
