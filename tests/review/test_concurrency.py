"""20 reviewers x 50 votes at once over HTTP to `preflab review serve` in its own
process; then the process is killed (SIGKILL) in the middle of a second round."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import requests

from preflab.review.project import init_review
from tests.helpers import wait_until

REVIEWERS = [f"r{k:02d}" for k in range(20)]
PAIRS = 50


class Served:
    """`preflab review serve DB --port 0` as a process."""

    def __init__(self, db: Path, log: Path) -> None:
        self.log = log.open("a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "preflab.cli", "review", "serve", str(db), "--port", "0",
             "--quiet"], stdout=subprocess.PIPE, stderr=self.log, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "serving review at" not in line:
            self.proc.kill()
            raise RuntimeError(f"review serve did not start: {log.read_text()[-2000:]}")
        self.url = line.split(" at ")[1].strip()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)
        self.log.close()


def submit_all(url: str, tokens: dict[str, str], plan: dict[str, list[dict]],
               acked: dict[str, list[str]], stop_on_error: bool,
               pause: tuple[int, threading.Event] | None = None) -> None:
    """Every reviewer's votes from its own thread and connection, all at once; with
    `pause` (k, event) each reviewer waits for the event before its k-th vote."""
    start = threading.Barrier(len(plan))

    def run(name: str) -> None:
        s = requests.Session()
        s.headers["Authorization"] = f"Bearer {tokens[name]}"
        start.wait()
        for i, body in enumerate(plan[name]):
            if pause is not None and i == pause[0]:
                pause[1].wait()
            try:
                r = s.post(f"{url}/api/votes", json=body, timeout=30)
            except requests.ConnectionError:
                if stop_on_error:
                    return
                raise
            assert r.status_code in (200, 201), r.text
            acked[name].append(body["submission"])

    threads = [threading.Thread(target=run, args=(n,)) for n in plan]
    for t in threads:
        t.start()
    for t in threads:
        t.join()  # each request has its own timeout


def make_plan(pair_ids: list[str], choices: tuple[str, ...]) -> dict[str, list[dict]]:
    return {name: [{"pair_id": p, "choice": choices[(i + k) % len(choices)],
                    "submission": str(uuid.uuid4()), "page_version": "load-test"}
                   for i, p in enumerate(pair_ids)] for k, name in enumerate(REVIEWERS)}


def count(db: Path, sql: str) -> int:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


def test_concurrent_votes_survive_a_killed_server(hh_data, tmp_path) -> None:
    data, audit = hh_data
    db = tmp_path / "load.sqlite"
    tokens = init_review(data, audit, db, sample=PAIRS, per_pair=len(REVIEWERS),
                         reviewers=REVIEWERS)["tokens"]
    served = Served(db, tmp_path / "serve.log")
    state = requests.get(f"{served.url}/api/state", timeout=10,
                         headers={"Authorization": f"Bearer {tokens['r00']}"}).json()
    pair_ids = [q["pair_id"] for q in state["queue"]]
    assert len(pair_ids) == PAIRS
    # round 1: 1,000 votes at once, and every reviewer retries one (a lost reply)
    plan = make_plan(pair_ids, ("A", "B", "both-good", "both-bad", "uncertain"))
    acked: dict[str, list[str]] = {n: [] for n in REVIEWERS}
    started = time.monotonic()
    submit_all(served.url, tokens, plan, acked, stop_on_error=False)
    seconds = time.monotonic() - started
    retry = {n: [plan[n][0]] for n in REVIEWERS}
    submit_all(served.url, tokens, retry, {n: [] for n in REVIEWERS}, stop_on_error=False)
    assert sum(map(len, acked.values())) == 1000, f"{seconds:.1f} s"
    assert count(db, "SELECT COUNT(*) FROM votes") == 1000
    assert count(db, "SELECT COUNT(DISTINCT submission) FROM votes") == 1000
    assert count(db, "SELECT COUNT(*) FROM (SELECT DISTINCT pair_id, reviewer FROM votes)") \
        == 1000
    # round 2: every reviewer edits every vote; the server is killed part-way, once 250
    # votes are acknowledged, while votes are in flight; no reviewer sends its 26th vote
    # before the kill, so the round is never over first, however fast the machine
    plan2 = make_plan(pair_ids, ("uncertain", "A", "B"))
    acked2: dict[str, list[str]] = {n: [] for n in REVIEWERS}
    killed = threading.Event()

    def kill() -> None:
        try:
            wait_until(lambda: sum(map(len, acked2.values())) >= 250, every=0.005)
            os.kill(served.proc.pid, signal.SIGKILL)
        finally:
            killed.set()

    killer = threading.Thread(target=kill)
    killer.start()
    submit_all(served.url, tokens, plan2, acked2, stop_on_error=True, pause=(25, killed))
    killer.join()
    served.proc.wait(30)
    assert served.proc.returncode == -signal.SIGKILL
    n_acked = sum(map(len, acked2.values()))
    assert 250 <= n_acked <= 500
    served.stop()
    # restarted: nothing acknowledged is lost, the file is sound, retries double nothing
    again = Served(db, tmp_path / "serve.log")
    try:
        con = sqlite3.connect(db)
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        have = {r[0] for r in con.execute("SELECT submission FROM votes")}
        con.close()
        assert all(s in have for subs in acked2.values() for s in subs)
        assert 1000 + n_acked <= len(have) < 2000
        # the clients retry what was not acknowledged (and one that was, per reviewer)
        retry2 = {n: [b for b in plan2[n] if b["submission"] not in acked2[n]]
                  + [b for b in plan2[n] if b["submission"] in acked2[n]][:1]
                  for n in REVIEWERS}
        submit_all(again.url, tokens, retry2, {n: [] for n in REVIEWERS}, stop_on_error=False)
        assert count(db, "SELECT COUNT(*) FROM votes") == 2000
        assert count(db, "SELECT COUNT(DISTINCT submission) FROM votes") == 2000
    finally:
        again.stop()

