"""The GIL is released during a run; on_event runs on the run's thread; an
exception in on_event cancels the run and is re-raised after it."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
import threading
import time
import unittest

import libmigrate
from support import MARKER, Tree, TreeCase, slow

SLOW_SECONDS = 0.5
# Ticks the loop must see during the run before it lets the migration end.
TICKS_NEEDED = 5


class EventLoopKeepsTicking(unittest.TestCase):
    """A run from asyncio.to_thread while a coroutine ticks every 10 ms.

    The migration burns SLOW_SECONDS of CPU, then spins until ~/go exists;
    the ticker creates ~/go only once it has ticked TICKS_NEEDED times since
    the run started. So the run can succeed only if the event loop ran while
    the C library was running: with the GIL held during the call, the
    script would spin until its timeout and fail. No timing bound is
    asserted (the machine is shared); the max gap between ticks during the
    run is measured and printed.
    """

    def setUp(self) -> None:
        self.tree = Tree({"v1.0.0/001_slow.lua": slow(SLOW_SECONDS, wait=True)})
        self.addCleanup(self.tree.remove)

    def test_ticks_arrive_while_a_slow_migration_runs(self) -> None:
        span: dict[str, float] = {}
        go = os.path.join(self.tree.home, "go")

        def timed_run() -> dict:
            span["start"] = time.monotonic()
            try:
                return libmigrate.run_migrations("0.9.0", "1.0.0", timeout_ms=30000, **self.tree.options())
            finally:
                span["end"] = time.monotonic()

        async def main() -> tuple[dict, list[float]]:
            ticks: list[float] = []
            done = asyncio.Event()

            async def ticker() -> None:
                seen = 0
                while not done.is_set():
                    ticks.append(time.monotonic())
                    if "start" in span and "end" not in span:
                        seen += 1
                        if seen == TICKS_NEEDED:
                            with open(go, "w") as f:
                                f.write("go\n")
                    await asyncio.sleep(0.01)

            task = asyncio.create_task(ticker())
            try:
                result = await asyncio.to_thread(timed_run)
            finally:
                done.set()
                await task
            return result, ticks

        result, ticks = asyncio.run(main())
        during = [t for t in ticks if span["start"] < t < span["end"]]
        run_s = span["end"] - span["start"]
        points = [span["start"], *during, span["end"]]
        max_gap = max(b - a for a, b in zip(points, points[1:]))
        print(
            f"\n    event loop during a {run_s * 1000:.0f} ms run from asyncio.to_thread: "
            f"{len(during)} ticks of 10 ms, max gap {max_gap * 1000:.1f} ms",
            file=sys.stderr,
        )
        self.assertIsNone(result["error"], "the loop did not run during the call")
        self.assertEqual(result["migrations_run"], 1, result)
        self.assertGreaterEqual(len(during), TICKS_NEEDED)


class EventCallback(TreeCase):
    def test_events_arrive_on_the_running_thread(self) -> None:
        events: list[libmigrate.Event] = []
        threads: set[int] = set()

        def on_event(ev: libmigrate.Event) -> None:
            threads.add(threading.get_ident())
            gc.collect()  # the callback object must survive a collection mid-run
            events.append(ev)

        async def main() -> int:
            def work() -> int:
                libmigrate.run("0.9.0", "1.3.0", on_event=on_event, **self.tree.options())
                return threading.get_ident()

            return await asyncio.to_thread(work)

        worker = asyncio.run(main())
        self.assertEqual(threads, {worker})
        self.assertNotEqual(worker, threading.get_ident())
        kinds = [e.kind for e in events]
        self.assertEqual(kinds[0], "plan")
        self.assertEqual(events[0].total, 4)
        self.assertIn("log", kinds)
        done = [e for e in events if e.kind == "done"]
        self.assertEqual(
            [(e.index, e.migration.id, e.migration.outcome) for e in done],
            [
                (0, "v1.0.0/001_first", "applied"),
                (1, "v1.1.0/001_present", "skipped_check"),
                (2, "v1.2.0/001_fails", "failed"),
            ],
        )
        log = [e for e in events if e.kind == "log"]
        self.assertEqual((log[0].level, log[0].message, log[0].migration.id), ("info", "writing ~/first.done", "v1.0.0/001_first"))

    def test_exception_at_start_cancels_and_is_reraised(self) -> None:
        calls: list[str] = []

        class Shutdown(Exception):
            pass

        def on_event(ev: libmigrate.Event) -> None:
            calls.append(ev.kind)
            if ev.kind == "start":
                raise Shutdown("daemon is stopping")

        with self.assertRaises(Shutdown) as caught:
            libmigrate.run("0.9.0", "1.3.0", on_event=on_event, **self.tree.options())
        self.assertEqual(str(caught.exception), "daemon is stopping")
        self.assertEqual(calls, ["plan", "start"], "called again after it raised")
        report = caught.exception.libmigrate_report
        self.assertEqual(report.status, "canceled")
        self.assertEqual(report.code, -8)  # MIGRATE_ECANCELED
        self.assertEqual({m.outcome for m in report.migrations}, {"not_run"})
        self.assertEqual(self.tree.home_files(), [".teleclaude/migration_state.json.lock"], "the first migration ran")

    def test_exception_in_a_log_event_stops_the_script(self) -> None:
        def on_event(ev: libmigrate.Event) -> None:
            if ev.kind == "log":
                raise KeyError("stop here")

        with self.assertRaises(KeyError):
            libmigrate.run_migrations("0.9.0", "1.3.0", on_event=on_event, **self.tree.options())
        # The log line comes before fs.write in migrate(): nothing was written,
        # nothing recorded; the next run starts over.
        self.assertNotIn("first.done", self.tree.home_files())
        result = libmigrate.run_migrations("0.9.0", "1.1.0", **self.tree.options())
        self.assertEqual((result["migrations_run"], result["migrations_skipped"]), (1, 1))

    def test_exception_after_done_keeps_what_was_applied(self) -> None:
        def on_event(ev: libmigrate.Event) -> None:
            if ev.kind == "done" and ev.index == 0:
                raise RuntimeError("enough")

        with self.assertRaises(RuntimeError) as caught:
            libmigrate.run("0.9.0", "1.3.0", on_event=on_event, **self.tree.options())
        report = caught.exception.libmigrate_report
        self.assertEqual([m.outcome for m in report.migrations], ["applied", "not_run", "not_run", "not_run"])
        with open(self.tree.state, encoding="utf-8") as f:
            self.assertEqual(json.load(f)["applied"], ["v1.0.0/001_first"])

    def test_nothing_is_printed_when_the_callback_raises(self) -> None:
        # ctypes prints "Exception ignored on calling ctypes callback function"
        # for an exception that escapes into C; the binding lets none escape.
        code = (
            "import libmigrate, sys\n"
            "def boom(ev):\n"
            "    raise ValueError('from the callback')\n"
            "try:\n"
            "    libmigrate.run('0.9.0', '1.3.0', on_event=boom, migrations_dir=sys.argv[1],"
            " home=sys.argv[2], state_path=sys.argv[3])\n"
            "except ValueError as e:\n"
            "    print('raised:', e, e.libmigrate_report.status)\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code, self.tree.migrations, self.tree.home, self.tree.state],
            capture_output=True, text=True, timeout=120,
        )
        self.assertEqual(out.stdout, "raised: from the callback canceled\n", out.stderr)
        self.assertEqual(out.stderr, "")

    def test_return_value_is_ignored(self) -> None:
        # e.g. loop.call_soon_threadsafe(...) returns a (truthy) Handle.
        result = libmigrate.run_migrations("0.9.0", "1.1.0", on_event=lambda ev: True, **self.tree.options())
        self.assertEqual(result["migrations_run"], 1)

    def test_events_into_an_asyncio_queue(self) -> None:
        async def main() -> tuple[dict, list[str]]:
            loop = asyncio.get_running_loop()
            queue: asyncio.Queue = asyncio.Queue()
            result = await asyncio.to_thread(
                libmigrate.run_migrations, "0.9.0", "1.1.0",
                on_event=lambda ev: loop.call_soon_threadsafe(queue.put_nowait, ev), **self.tree.options(),
            )
            await asyncio.sleep(0)
            kinds = []
            while not queue.empty():
                kinds.append(queue.get_nowait().kind)
            return result, kinds

        result, kinds = asyncio.run(main())
        self.assertEqual(result["migrations_run"], 1)
        self.assertEqual(kinds.count("done"), 2)


class ParallelRuns(unittest.TestCase):
    def test_runs_on_separate_state_paths_in_threads(self) -> None:
        trees = [Tree({"v1.0.0/001_a.lua": MARKER.replace("{name}", "a")}) for _ in range(4)]
        for t in trees:
            self.addCleanup(t.remove)

        async def main() -> list[dict]:
            return await asyncio.gather(
                *(asyncio.to_thread(libmigrate.run_migrations, None, "1.0.0", **t.options()) for t in trees)
            )

        for result in asyncio.run(main()):
            self.assertEqual(result, {"migrations_run": 1, "migrations_skipped": 0, "error": None, "planned_migrations": 1})


if __name__ == "__main__":
    unittest.main()
