"""python/examples/executor.py, the daemon's call site, on the repository's
real migrations and a throw-away home seeded as `make demo` seeds its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import unittest

from support import REPO


class Executor(unittest.TestCase):
    def test_executor_runs_the_real_migrations(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.path.join(REPO, "python")
        out = subprocess.run(
            [sys.executable, os.path.join(REPO, "python", "examples", "executor.py"), "1.0.0", "1.3.0"],
            env=env, capture_output=True, text=True, timeout=300, cwd="/",
        )
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        lines = dict(line.split(": ", 1) for line in out.stdout.splitlines())
        migrations = sorted(
            f"{d}/{f}" for d in os.listdir(os.path.join(REPO, "migrations")) if d.startswith("v")
            for f in os.listdir(os.path.join(REPO, "migrations", d)) if f[0].isdigit() and f.endswith(".lua")
        )
        n = len(migrations)
        self.assertGreater(n, 0)
        self.assertEqual(json.loads(lines["upgrade"]),
                         {"migrations_run": n, "migrations_skipped": 0, "error": None, "planned_migrations": n})
        self.assertEqual(json.loads(lines["again"]),
                         {"migrations_run": 0, "migrations_skipped": n, "error": None, "planned_migrations": n})
        self.assertIn(f"executor: migrations: {n} run, 0 skipped", out.stderr)


if __name__ == "__main__":
    unittest.main()
