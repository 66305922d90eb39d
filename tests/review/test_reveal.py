"""The reveal counts what the committee counts (review finding 3): "Voters: X of Y
prefer A" is counted from the voters' votes (members merged into one voter vote once,
a member turned round is counted turned round), listed under it, and the members' own
votes say which are merged or turned round."""

from __future__ import annotations

import json

import requests

from preflab.review import store
from preflab.review.project import init_review
from preflab.review.server import make_server
from tests.review.helpers import write_audit, write_data
from tests.review.test_browser import browser, text  # noqa: F401  (the fixture)

VOTERS = {"rm-a+rm-b", "judge", "fit"}


def merged_project(pairs, folder, reviewers=("ann",)) -> tuple[object, dict[str, str]]:
    data, _ = write_data(pairs, folder)
    audit = write_audit(pairs, folder / "merged-audit", merged=True)
    layout = json.loads((audit / "summary.json").read_text())["committee_probability"]
    assert layout["voters"]["rm-a+rm-b"]["members"] == {"rm-a": 1, "rm-b": 1}
    assert layout["voters"]["judge"]["members"] == {"judge": -1}  # the premise
    db = folder / "r.sqlite"
    tokens = init_review(data, audit, db, sample=12, per_pair=1, reviewers=list(reviewers))[
        "tokens"]
    return db, tokens


def test_the_reveal_counts_voters_and_marks_merged_and_turned_members(hh_pairs,
                                                                      tmp_path) -> None:
    db, tokens = merged_project(hh_pairs[:40], tmp_path)
    with store.opened(db) as con:
        ids = [q["pair_id"] for q in store.queue(con, "ann")]
    server = make_server(db, port=0).start()
    try:
        reveals = [requests.post(f"{server.url}/api/votes", timeout=10,
                                 json={"pair_id": i, "choice": "A"},
                                 headers={"Authorization": f"Bearer {tokens['ann']}"}
                                 ).json()["reveal"]["committee"] for i in ids]
    finally:
        server.shutdown()
    with store.opened(db) as con:
        stored = {p["pair_id"]: p["committee"] for p in store.all_pairs(con)}
    turned = 0
    for pair_id, c in zip(ids, reveals, strict=True):
        assert set(c["voter_votes"]) == VOTERS
        assert set(c["member_votes"]) == {"rm-a", "rm-b", "judge", "fit"}
        sides = list(c["voter_votes"].values())
        assert c["prefer_A"] == sides.count("A") and c["voters"] == 3 - sides.count(None)
        assert c["voters"] == stored[pair_id]["members"]  # the audit's own count
        assert c["member_notes"] == {
            "rm-a": "merged with rm-b into voter rm-a+rm-b",
            "rm-b": "merged with rm-a into voter rm-a+rm-b",
            "judge": "counted turned round"}
        own, cast = c["member_votes"]["judge"], c["voter_votes"]["judge"]
        if own is not None:
            assert {own, cast} == {"A", "B"}  # counted the other way round
            turned += 1
    assert turned


def test_the_page_shows_voters_and_members_own_votes(hh_pairs, tmp_path, browser) -> None:  # noqa: F811
    db, tokens = merged_project(hh_pairs[:40], tmp_path)
    server = make_server(db, port=0).start()
    try:
        page = browser.new_page()
        page.goto(f"{server.url}/?token={tokens['ann']}")
        page.wait_for_function("document.querySelector('#pair').dataset.pairId !== ''")
        current = page.evaluate("document.querySelector('#pair').dataset.pairId")
        page.keyboard.press("1")
        page.keyboard.press("Enter")
        page.wait_for_function(
            f"document.querySelector('#pair').dataset.pairId !== {current!r}")
        line = text(page, "#reveal .voters-line")
        counted = page.evaluate(
            "[...document.querySelectorAll('#reveal ul.voters li')].map(e => e.textContent)")
        own = page.evaluate(
            "[...document.querySelectorAll('#reveal ul.own-votes li')].map(e => e.textContent)")
    finally:
        server.shutdown()
    assert line.startswith("Voters: ")
    shown, of = line.removeprefix("Voters: ").split(" prefer A")[0].split(" of ")
    assert len(counted) == 3 and {c.split(": ")[0] for c in counted} == VOTERS
    assert int(shown) == sum(c.endswith(": A") for c in counted)
    assert int(of) == sum(not c.endswith("no score") for c in counted)
    assert len(own) == 4
    assert any(o.startswith("judge: ") and o.endswith("(counted turned round)") for o in own)
    assert any("merged with rm-a into voter rm-a+rm-b" in o for o in own)
