"""Reliability checks of SPEC §8: the grader gives the same answer every time, in any order, side by side.

``python3 -m workbook dev reliability [--runs 20] [--orders 5] [--short]``

1. repeated full grading runs of the solutions give identical reports;
2. runs in random test order (``--workbook-random-order SEED``) give the same report;
3. two grading runs at once against the same servers both pass, and data the grader did not
   create (a table in the server's default database, keys in Redis db 0 and db 3) survives;
4. a grading run killed with SIGKILL mid-way leaves nothing the next run trips over, and
   ``python3 -m workbook services clean`` removes what it created.

`--short` (what ``python3 -m workbook test`` runs) does 2 repeats and 2 orders, each order compared
with the first repeat's report.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from workbook import ROOT, services
from workbook.grading import runner as grader


def _fingerprint(report_dict: dict) -> str:
    return json.dumps(report_dict, sort_keys=True)


_BASELINE: list[str] = []  # the report of the first repeated run, which the random orders must match


def repeated(runs: int) -> tuple[bool, str]:
    seen = [_fingerprint(grader.grade(target="solutions")[0].as_dict()) for _ in range(runs)]
    _BASELINE[:] = seen[:1]
    return len(set(seen)) == 1, f"{runs} full runs, {len(set(seen))} distinct report(s)"


def stubs_in_any_order(orders: int) -> tuple[bool, str]:
    """Untouched stubs (failures everywhere) give the same report in any order: messages included."""
    import tempfile

    from workbook.sandbox import copy_workbook

    with tempfile.TemporaryDirectory(prefix="workbook-reliability-") as scratch:
        root = copy_workbook(Path(scratch) / "copy")
        reports = set()
        for seed in [None, *range(2000, 2000 + orders)]:
            command = [sys.executable, "-m", "workbook", "grade", "--json", str(root / "report.json")]
            if seed is not None:
                command.append(f"--random-order={seed}")
            subprocess.run(command, cwd=root, env={**os.environ, "WORKBOOK_NO_BOOTSTRAP": "1"},
                           capture_output=True, text=True, timeout=300)
            reports.add((root / "report.json").read_text(encoding="utf-8"))
    return len(reports) == 1, f"stubs graded in {orders + 1} orders, {len(reports)} distinct report(s)"


def random_orders(orders: int) -> tuple[bool, str]:
    # The repeated runs' report is the baseline (one full run saved, 16 s); run alone, make one.
    baseline = _BASELINE[0] if _BASELINE else _fingerprint(grader.grade(target="solutions")[0].as_dict())
    seeds = [1000 + i for i in range(orders)]
    differing = [seed for seed in seeds
                 if _fingerprint(grader.grade(target="solutions", pytest_args=(f"--workbook-random-order={seed}",))[0]
                                 .as_dict()) != baseline]
    return not differing, f"{orders} random orders (seeds {seeds[0]}..{seeds[-1]}); differing: {differing or 'none'}"


def _cli(*args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "WORKBOOK_TARGET"}
    return subprocess.Popen([sys.executable, "-m", "workbook", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


async def plant_foreign_data(marker: str) -> None:
    """Create data the grader must never touch: a table `marker` in the server's default database, keys in Redis db 0 and 3."""
    import asyncpg
    from redis.asyncio import Redis

    connection = await asyncpg.connect(services.resolve("postgres").url)
    try:
        await connection.execute(f"CREATE TABLE {marker} (note text)")
        await connection.execute(f"INSERT INTO {marker} VALUES ('not the grader''s')")
    finally:
        await connection.close()
    for db in (0, 3):
        client = Redis.from_url(_redis_db(db))
        await client.set(f"{marker}:key", "mine")
        await client.aclose()


async def foreign_data_survived(marker: str) -> bool:
    """Whether everything `plant_foreign_data(marker)` made is intact; removes it either way."""
    import asyncpg
    from redis.asyncio import Redis

    connection = await asyncpg.connect(services.resolve("postgres").url)
    try:
        rows = await connection.fetch(f"SELECT note FROM {marker}")
        await connection.execute(f"DROP TABLE {marker}")
    finally:
        await connection.close()
    kept = len(rows) == 1
    for db in (0, 3):
        client = Redis.from_url(_redis_db(db))
        kept = kept and await client.get(f"{marker}:key") == b"mine"
        await client.delete(f"{marker}:key")
        await client.aclose()
    return kept


def _redis_db(db: int) -> str:
    base = services.resolve("redis").url.split("?")[0]
    head, _, tail = base.rpartition("/")
    return f"{head}/{db}" if tail.isdigit() else f"{base.rstrip('/')}/{db}"


def concurrent() -> tuple[bool, str]:
    marker = f"learner_{uuid.uuid4().hex[:8]}"
    asyncio.run(plant_foreign_data(marker))
    try:
        with ThreadPoolExecutor(2) as pool:
            codes = list(pool.map(lambda _: _exit_code("grade", "--target", "solutions"), range(2)))
    finally:
        survived = asyncio.run(foreign_data_survived(marker))
    return all(c == 0 for c in codes) and survived, f"exit codes {codes}; other data survived: {survived}"


def _exit_code(*args: str) -> int:
    process = _cli(*args)
    process.communicate(timeout=300)
    return process.returncode


async def run_databases(pid: int | None = None) -> set[str]:
    """The names of the run databases (wbrun_*) on the PostgreSQL in use; with `pid`, only that process's.

    Other grading runs (a classmate's, another checkout's) may use the same server at the same time:
    a check of what one run left must look only at names carrying its process id,
    wbrun_<time>_<pid>_<hex>, and compare with what existed before it started.
    """
    import re

    import asyncpg

    connection = await asyncpg.connect(services.resolve("postgres").url)
    try:
        names = {r["datname"] for r in await connection.fetch("SELECT datname FROM pg_database WHERE datname LIKE 'wbrun\\_%'")}
    finally:
        await connection.close()
    return names if pid is None else {n for n in names if re.fullmatch(rf"wbrun_\d+_{pid}_[0-9a-f]{{6}}", n)}


def killed() -> tuple[bool, str]:
    before = asyncio.run(run_databases())
    caught: set[str] = set()
    for _attempt in range(5):
        process = _cli("grade", "--target", "solutions")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            caught = asyncio.run(run_databases(process.pid)) - before
            if caught:
                os.killpg(process.pid, signal.SIGKILL)
                break
            time.sleep(0.01)
        process.wait()
        if caught:
            break
    if not caught:
        return False, "could not catch a grading run while its database existed"
    killed_at, killed_pid = time.monotonic(), process.pid
    next_ok = _exit_code("grade", "--target", "solutions") == 0
    # The kill may have cut a CREATE DATABASE short of its label; cleaning recognises such a
    # database once it is older than any creation could take (services._UNLABELLED_AFTER_SECONDS).
    time.sleep(max(0.0, services._UNLABELLED_AFTER_SECONDS + 1 - (time.monotonic() - killed_at)))
    _exit_code("services", "clean")
    left = asyncio.run(run_databases(killed_pid)) - before  # everything the killed run made, seen or not
    orphans = _grading_processes()
    return next_ok and not left and not orphans, (
        f"killed a run holding {len(caught)} database(s); next run passed: {next_ok}; "
        f"left after `services clean`: {sorted(left) or 'nothing'}; grading processes still running: {len(orphans)}")


def _grading_processes() -> list[int]:
    """Chapter processes of this workbook still running (a killed grader's must have stopped by now)."""
    import psutil

    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        cmdline = process.info["cmdline"] or []
        if "workbook.grading.child" in cmdline and f"--rootdir={ROOT}" in cmdline:
            found.append(process.info["pid"])
    return found


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m workbook dev reliability", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="repeated full grading runs (default 20)")
    parser.add_argument("--orders", type=int, default=5, help="random-order runs (default 5)")
    parser.add_argument("--short", action="store_true", help="the CI form: 2 runs and 2 orders")
    args = parser.parse_args(argv)
    runs, orders = (2, 2) if args.short else (args.runs, args.orders)
    checks = [("repeated runs", lambda: repeated(runs)), ("random order", lambda: random_orders(orders)),
              ("stubs in random order", lambda: stubs_in_any_order(orders)),
              ("two runs at once", concurrent), ("killed run", killed)]
    failed = []
    for name, check in checks:
        started = time.perf_counter()
        ok, detail = check()
        print(f"{'✔' if ok else '✘'} {name}: {detail} ({time.perf_counter() - started:.1f} s)", flush=True)
        if not ok:
            failed.append(name)
    return 1 if failed else 0
