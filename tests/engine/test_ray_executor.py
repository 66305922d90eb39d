"""The Ray executor on a local 2-CPU cluster (started once for the module): the same
numbers as the local executor, a resumed run computes nothing, an actor killed
mid-run loses nothing, a batch that raises fails only its own pairs."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from preflab.engine import Engine, EngineOptions
from preflab.engine.executor import LocalExecutor
from preflab.engine.python import PythonScorer
from preflab.engine.units import reply_unit

ray = pytest.importorskip("ray")

from preflab.engine.ray_executor import RayExecutor  # noqa: E402


def fragile_reward(context: list[dict[str, str]], reply: str) -> float:
    """len(reply); a reply ``die:PATH`` kills its own process the first time (PATH
    marks that it happened) and a reply starting ``poison`` always raises."""
    if reply.startswith("poison"):
        raise ValueError(f"cannot score {reply!r}")
    if reply.startswith("die:"):
        marker = Path(reply[4:])
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
    return float(len(reply)) + 0.5 * len(context)


@pytest.fixture(scope="module")
def cluster():
    """One local 2-CPU cluster for the module; its workers import what the tests do."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in sys.path
                                                                    if p)}})
    yield
    ray.shutdown()


def units_of(replies: list[str]) -> list:
    # distinct contexts: every unit is a group of its own, so batches hold a few each
    return [reply_unit((("user", f"q{i}"),), r) for i, r in enumerate(replies)]


def engine(tmp_path: Path, name: str, executor=None) -> Engine:
    return Engine(EngineOptions(cache_path=tmp_path / f"{name}.sqlite", progress=False,
                                max_tokens=4), executor=executor)


def scorer() -> PythonScorer:
    return PythonScorer(fragile_reward, "fragile")


def test_ray_equals_local_and_a_rerun_is_all_cached(cluster, tmp_path) -> None:
    units = units_of([f"reply {'x' * i}" for i in range(40)])
    local = engine(tmp_path, "local").run(scorer(), units)
    with RayExecutor(actors=2) as ex:
        first = engine(tmp_path, "ray", ex)
        remote = first.run(scorer(), units)
        assert first.last_stats.computed == 40 and first.last_stats.batches == 10
        assert len(set(ex.pids())) == 2
        again = engine(tmp_path, "ray", ex)
        assert [float(v[0]) for v in again.run(scorer(), units)] == [float(v[0])
                                                                     for v in local]
        assert again.last_stats.cached == 40 and again.last_stats.computed == 0
    np.testing.assert_array_equal(np.concatenate(remote), np.concatenate(local))


def test_an_actor_killed_mid_run_loses_nothing(cluster, tmp_path) -> None:
    marker = tmp_path / "killed"
    replies = [f"reply {'y' * i}" for i in range(30)]
    replies[13] = f"die:{marker}"
    units = units_of(replies)
    marker.write_text("not here")  # the undisturbed run, in this process, must not die
    undisturbed = [float(v[0]) for v in engine(tmp_path, "local").run(scorer(), units)]
    marker.unlink()  # the Ray run loses an actor
    with RayExecutor(actors=2) as ex:
        pids = set(ex.pids())
        eng = engine(tmp_path, "ray", ex)
        values = [float(v[0]) for v in eng.run(scorer(), units)]
        assert int(marker.read_text()) in pids  # an actor's process died mid-run
        assert ex.replaced == 1 and len(set(ex.pids()) - pids) == 1
    assert values == undisturbed and not eng.failures
    assert eng.cache.count() == 30


def test_a_batch_that_raises_fails_only_its_own_units(cluster, tmp_path) -> None:
    replies = [f"reply {'z' * i}" for i in range(20)]
    replies[3], replies[11] = "poison one", "poison two"
    units = units_of(replies)
    local = engine(tmp_path, "local", LocalExecutor())
    expected = local.run(scorer(), units)
    with RayExecutor(actors=2) as ex:
        eng = engine(tmp_path, "ray", ex)
        values = eng.run(scorer(), units)
    assert sorted(eng.failures) == sorted([units[3].key, units[11].key])
    assert all("ValueError: cannot score 'poison" in e for e in eng.failures.values())
    assert eng.last_stats.failed == 2 and eng.last_stats.computed == 18
    got = np.array([v[0] for v in values])
    assert np.isnan(got[[3, 11]]).all() and np.isfinite(np.delete(got, [3, 11])).all()
    np.testing.assert_array_equal(got, np.array([v[0] for v in expected]))
    assert sorted(local.failures) == sorted(eng.failures)  # same with the local executor
    assert eng.cache.count() == 18  # a failure is never cached


def audit_files(tmp_path: Path, replies: list[tuple[str, str]]) -> tuple[Path, Path]:
    data = tmp_path / "pairs.jsonl"
    with data.open("w") as f:
        for i, (chosen, rejected) in enumerate(replies):
            f.write(json.dumps({"id": f"p{i}", "prompt": f"question {i % 7}",
                                "chosen": chosen, "rejected": rejected}) + "\n")
    committee = tmp_path / "committee.toml"
    here = "tests.engine.test_ray_executor"
    committee.write_text(f"""name = "fragile"
[engine]
executor = "ray"
actors = 2
[[member]]
name = "fragile"
kind = "python"
function = "{here}:fragile_reward"
[[member]]
name = "length"
kind = "python"
function = "tests.helpers:length_reward"
""")
    return data, committee


def test_audit_survives_a_killed_actor_and_leaves_out_failed_pairs(cluster, tmp_path
                                                                   ) -> None:
    from preflab.audit.audit_pairs import audit
    from preflab.data.read import iter_pairs, read_pairs

    marker = tmp_path / "killed"
    rng = np.random.default_rng(0)
    replies = [("a" * int(rng.integers(1, 60)), "b" * int(rng.integers(1, 60)))
               for _ in range(60)]
    replies[20] = (f"die:{marker}", "short")
    replies[41] = ("fine", "poison pill")
    data, committee = audit_files(tmp_path, replies)
    quiet = {"progress": False, "max_tokens": 4}
    ray_summary = audit(data, out=tmp_path / "ray", committee=committee, notify=None,
                        engine_options=EngineOptions(cache_path=tmp_path / "r.sqlite", **quiet),
                        chunk=16)
    assert marker.exists()  # the Ray run lost an actor
    local_summary = audit(data, out=tmp_path / "local", committee=committee,
                          executor="local", chunk=16,
                          engine_options=EngineOptions(cache_path=tmp_path / "l.sqlite", **quiet))
    # each member's scorer loads once per scoring pass (two: the failed pair is left
    # out and the rest scored again), not once per 16-pair chunk; each actor too
    for s in (ray_summary, local_summary):
        assert {name: run["loads"] for name, run in s["member_runs"].items()} == {
            "fragile": 2, "length": 2}
    loads = ray_summary["executor_info"]["actor_loads"]
    assert set(loads) == {"fragile", "length"} and all(sum(n) > 0 and max(n) <= 2
                                                       for n in loads.values())
    assert ray_summary["executor"] == "ray" and local_summary["executor"] == "local"
    for s in (ray_summary, local_summary):
        assert s["n_failed"] == 1 and s["n_pairs"] == 59
    poisoned = next(p.id for p in iter_pairs(read_pairs(data).pairs)
                    if p.rejected == "poison pill")
    failures = [json.loads(line) for line in (tmp_path / "ray" / "failures.jsonl").open()]
    assert failures == [{"id": poisoned, "members": ["fragile"],
                         "errors": ["ValueError: cannot score 'poison pill'"]}]
    remote = pd.read_parquet(tmp_path / "ray" / "audit.parquet")
    local = pd.read_parquet(tmp_path / "local" / "audit.parquet")
    assert poisoned not in set(remote["id"]) and len(remote) == 59
    pd.testing.assert_frame_equal(remote, local)


def test_audit_cli_takes_the_executor_flags(cluster, tmp_path) -> None:
    from typer.testing import CliRunner

    from preflab.cli.app import app

    data, committee = audit_files(tmp_path, [("a" * (i % 9 + 1), "bb" * (i % 5 + 1))
                                             for i in range(30)])
    plain = tmp_path / "plain.toml"  # the same committee without an [engine] table
    plain.write_text(committee.read_text().replace('[engine]\nexecutor = "ray"\nactors = 2\n',
                                                   ""))
    runner = CliRunner()
    bad = runner.invoke(app, ["audit", str(data), "--committee", str(plain), "--out",
                              str(tmp_path / "bad"), "--actors", "2"])
    assert bad.exit_code == 2 and "need --executor ray" in bad.output
    assert not (tmp_path / "bad").exists()
    ok = runner.invoke(app, ["audit", str(data), "--committee", str(plain), "--out",
                             str(tmp_path / "ok"), "--executor", "ray", "--actors", "1",
                             "--cache", str(tmp_path / "c.sqlite"), "--json"])
    assert ok.exit_code == 0, ok.output
    summary = json.loads(ok.output.strip().splitlines()[-1])
    assert summary["executor"] == "ray" and summary["executor_info"]["actors"] == 1
    assert summary["n_pairs"] == 30
