"""Runs the Python binding's unittest suite (tests/python/test_*.py).

Started by $(BUILD)/tests/python (mk/python.mk), which points
LIBMIGRATE_LIBRARY at the freshly built library. Ends with the line
tests/run.sh counts: "N passed, N failed" (a skipped test is neither).

The layout test (test_run.Layout: the ctypes structs against the header)
runs first and alone: when the structs have drifted from migrate.h the
other tests would read the C structs at wrong offsets and may crash the
interpreter before any failure is reported, so they are then not run
(and counted neither passed nor failed: the layout failure makes the run red).
"""

import os
import sys
import unittest

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
LAYOUT = "test_run.Layout"


def tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from tests(t)
        else:
            yield t


loader = unittest.defaultTestLoader
runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2)
everything = list(tests(loader.discover(here, pattern="test_*.py", top_level_dir=here)))
first = [t for t in everything if t.id().startswith(LAYOUT + ".")]
rest = [t for t in everything if not t.id().startswith(LAYOUT + ".")]
results = [runner.run(unittest.TestSuite(first))]
if results[0].wasSuccessful():
    results.append(runner.run(unittest.TestSuite(rest)))
else:
    print(f"{LAYOUT} failed: the ctypes structs do not match include/migrate.h; "
          f"the other {len(rest)} tests were not run", flush=True)
failed = sum(len(r.failures) + len(r.errors) + len(r.unexpectedSuccesses) for r in results)
passed = sum(r.testsRun for r in results) - failed - sum(len(r.skipped) for r in results)
print(f"{passed} passed, {failed} failed", flush=True)
sys.exit(1 if failed else 0)
