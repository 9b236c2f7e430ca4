"""Runs the Python binding's unittest suite (tests/python/test_*.py).

Started by $(BUILD)/tests/python (mk/python.mk), which points
LIBMIGRATE_LIBRARY at the freshly built library. Ends with the line
tests/run.sh counts: "N passed, N failed" (a skipped test is neither).
"""

import os
import sys
import unittest

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
suite = unittest.defaultTestLoader.discover(here, pattern="test_*.py", top_level_dir=here)
result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2).run(suite)
failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
passed = result.testsRun - failed - len(result.skipped)
print(f"{passed} passed, {failed} failed", flush=True)
sys.exit(1 if failed else 0)
