"""pip install ./python, and make install PYTHONDIR=..., give an importable
package that finds the library."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

from support import REPO

FILES = ["__init__.py", "_api.py", "_native.py", "_report.py", "py.typed"]


def importable(where: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = where
    code = ("import libmigrate, os; assert os.path.dirname(libmigrate.__file__).startswith(%r), libmigrate.__file__;"
            "print(libmigrate.run_migrations('1.0.0', '1.0.0', home=os.getcwd()))" % where)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120, cwd=where)


class Packaging(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="libmigrate-pkg-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def test_pip_install(self) -> None:
        if importlib.util.find_spec("pip") is None:
            self.skipTest("pip is not installed (Debian python3-pip)")
        # A copy: a build writes build/ and *.egg-info beside pyproject.toml.
        src = os.path.join(self.tmp, "src")
        shutil.copytree(os.path.join(REPO, "python"), src,
                        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
        target = os.path.join(self.tmp, "site")
        env = dict(os.environ, PIP_NO_CACHE_DIR="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
        out = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--no-build-isolation", "--no-index", "--no-deps",
             "--target", target, src],
            env=env, capture_output=True, text=True, timeout=300,
        )
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        for f in FILES:
            self.assertTrue(os.path.isfile(os.path.join(target, "libmigrate", f)), f)
        got = importable(target)
        self.assertEqual(got.returncode, 0, got.stderr)
        self.assertIn("'planned_migrations': 0", got.stdout)

    def test_make_install_pythondir(self) -> None:
        build = os.path.dirname(os.path.dirname(os.environ.get("LIBMIGRATE_TEST_ORACLE", "")))
        if not build:
            self.skipTest("LIBMIGRATE_TEST_ORACLE is not set (run through make test)")
        dest = os.path.join(self.tmp, "dest")
        make = os.environ.get("MAKE", "make")
        args = [make, "-s", "-C", REPO, f"BUILD={build}", "LDCONFIG=:", f"DESTDIR={dest}", "PREFIX=/usr",
                "PYTHONDIR=/usr/lib/python3/dist-packages"]
        if os.environ.get("LIBMIGRATE_TEST_SAN") == "1":
            args.append("SAN=1")
        out = subprocess.run(args + ["install-python"], capture_output=True, text=True, timeout=300)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        pkg = os.path.join(dest, "usr/lib/python3/dist-packages")
        self.assertEqual(sorted(os.listdir(os.path.join(pkg, "libmigrate"))), sorted(FILES))
        got = importable(pkg)
        self.assertEqual(got.returncode, 0, got.stderr)
        out = subprocess.run(args + ["uninstall-python"], capture_output=True, text=True, timeout=300)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertFalse(os.path.exists(os.path.join(pkg, "libmigrate")))


if __name__ == "__main__":
    unittest.main()
