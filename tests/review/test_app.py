"""The review server over HTTP: tokens, isolation, CSRF, limits, votes that are never
lost or doubled, and the export's mapping back to chosen/rejected."""

from __future__ import annotations

import json
import uuid

import pandas as pd
import pytest
import requests

from preflab.review import store
from preflab.review.export import export_review
from preflab.review.project import init_review
from preflab.review.server import is_loopback, make_server


@pytest.fixture
def project(hh_data, tmp_path):
    """12 pairs, each judged by one of ann, bob and cy; served on a free port."""
    data, audit = hh_data
    db = tmp_path / "r.sqlite"
    tokens = init_review(data, audit, db, sample=12, per_pair=1,
                         reviewers=["ann", "bob", "cy"])["tokens"]
    server = make_server(db, port=0).start()
    yield server.url, tokens, db
    server.shutdown()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def queue(url: str, token: str) -> list[str]:
    r = requests.get(f"{url}/api/state", headers=bearer(token), timeout=10)
    assert r.status_code == 200, r.text
    return [q["pair_id"] for q in r.json()["queue"]]


def test_every_request_needs_its_reviewers_token(project) -> None:
    url, tokens, _ = project
    assert requests.get(f"{url}/api/state", timeout=10).status_code == 401
    assert requests.get(f"{url}/api/state", headers=bearer("x" * 43), timeout=10
                        ).status_code == 401
    page = requests.get(url, timeout=10)
    assert page.status_code == 401 and "token" in page.text
    assert requests.get(f"{url}/?token=wrong", timeout=10).status_code == 401
    ann, bob = queue(url, tokens["ann"]), queue(url, tokens["bob"])
    assert ann and bob and not set(ann) & set(bob)
    # bob can neither read nor judge ann's pair; nobody can vote as someone else
    r = requests.get(f"{url}/api/pairs/{ann[0]}", headers=bearer(tokens["bob"]), timeout=10)
    assert r.status_code == 404
    r = requests.post(f"{url}/api/votes", headers=bearer(tokens["bob"]), timeout=10,
                      json={"pair_id": ann[0], "choice": "A", "reviewer": "ann"})
    assert r.status_code == 404
    sub = str(uuid.uuid4())
    r = requests.post(f"{url}/api/votes", headers=bearer(tokens["ann"]), timeout=10,
                      json={"pair_id": ann[0], "choice": "B", "submission": sub})
    assert r.status_code == 201
    r = requests.post(f"{url}/api/votes", headers=bearer(tokens["bob"]), timeout=10,
                      json={"pair_id": bob[0], "choice": "A", "submission": sub})
    assert r.status_code == 409  # ann's submission id: bob cannot see or replace it
    r = requests.get(f"{url}/api/pairs/{bob[0]}", headers=bearer(tokens["bob"]), timeout=10)
    assert r.json()["mine"] is None  # ann's vote is not bob's


def test_login_sets_a_lax_cookie_and_posts_need_csrf_and_same_origin(project) -> None:
    url, tokens, _ = project
    s = requests.Session()
    r = s.get(f"{url}/?token={tokens['ann']}", allow_redirects=False, timeout=10)
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"].lower()
    # Lax: a link to the app clicked on another site carries the cookie (the "switch
    # reviewer?" check sees who is signed in); votes stay guarded by CSRF and Origin
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    page = s.get(url, timeout=10)
    assert page.status_code == 200 and "script-src 'self'" in page.headers[
        "content-security-policy"]
    csrf = page.text.split('name="csrf-token" content="')[1].split('"')[0]
    pair_id = queue(url, tokens["ann"])[0]
    vote = {"pair_id": pair_id, "choice": "A"}
    assert s.post(f"{url}/api/votes", json=vote, timeout=10).status_code == 403  # no token
    r = s.post(f"{url}/api/votes", json=vote, timeout=10,
               headers={"X-CSRF-Token": csrf, "Origin": "http://evil.example"})
    assert r.status_code == 403 and "cross-site" in r.text
    r = s.post(f"{url}/api/votes", data="choice=A", timeout=10, headers={
        "X-CSRF-Token": csrf, "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415  # a cross-site form cannot send JSON
    r = s.post(f"{url}/api/votes", json=vote, timeout=10,
               headers={"X-CSRF-Token": csrf, "Origin": url})
    assert r.status_code == 201, r.text
    with store.opened(project[2]) as con:
        assert con.execute("SELECT COUNT(*) FROM votes").fetchone()[0] == 1


def test_bad_and_oversized_votes_are_refused(project) -> None:
    url, tokens, db = project
    h = bearer(tokens["ann"])
    pair_id = queue(url, tokens["ann"])[0]
    cases = [({"pair_id": pair_id, "choice": "C"}, 400, "choice"),
             ({"pair_id": pair_id, "choice": "A", "source_tag": "boring"}, 400, "source_tag"),
             ({"pair_id": pair_id, "choice": "A", "note": 5}, 400, "note"),
             ({"choice": "A"}, 400, "pair_id"),
             ({"pair_id": pair_id, "choice": "A", "note": "x" * 5000}, 400, "longer"),
             ({"pair_id": pair_id, "choice": "A", "note": "x" * 70_000}, 413, "bytes")]
    for body, status, word in cases:
        r = requests.post(f"{url}/api/votes", headers=h, json=body, timeout=10)
        assert r.status_code == status and word in r.json()["error"], (body, r.text)
    r = requests.post(f"{url}/api/votes", headers={**h, "Content-Type": "application/json"},
                      data=b"[1, 2]", timeout=10)
    assert r.status_code == 400
    with store.opened(db) as con:
        assert con.execute("SELECT COUNT(*) FROM votes").fetchone()[0] == 0


def test_edits_append_retries_do_not_and_the_export_maps_back(project, hh_pairs) -> None:
    url, tokens, db = project
    by_id = {p.id: p for p in hh_pairs}
    plan = ["A", "B", "both-good", "both-bad", "uncertain"]
    expect = {}
    for name in ("ann", "bob", "cy"):
        h = bearer(tokens[name])
        for k, pair_id in enumerate(queue(url, tokens[name])):
            view = requests.get(f"{url}/api/pairs/{pair_id}", headers=h, timeout=10).json()
            assert view["reveal"] is None  # nothing shown before judging
            choice = plan[k % len(plan)]
            body = {"pair_id": pair_id, "choice": choice, "submission": str(uuid.uuid4()),
                    "source_tag": "subjective" if k % 2 else "", "note": "<b>n</b>"}
            r = requests.post(f"{url}/api/votes", headers=h, json=body, timeout=10)
            assert r.status_code == 201 and r.json()["created"]
            again = requests.post(f"{url}/api/votes", headers=h, json=body, timeout=10)
            assert again.status_code == 200 and again.json()["vote_id"] == r.json()["vote_id"]
            shown_a = view["replies"]["A"]["text"]
            if choice in ("A", "B"):
                picked = shown_a if choice == "A" else view["replies"]["B"]["text"]
                expect[pair_id] = "chosen" if picked == by_id[pair_id].chosen else "rejected"
            else:
                expect[pair_id] = choice
            reveal = r.json()["reveal"]
            assert reveal["original_label"] == ("A" if shown_a == by_id[pair_id].chosen
                                                else "B")
    # one edit: ann changes her first judgement; it is a new row and the latest counts
    first = queue(url, tokens["ann"])[0]
    r = requests.post(f"{url}/api/votes", headers=bearer(tokens["ann"]), timeout=10,
                      json={"pair_id": first, "choice": "both-bad"})
    assert r.status_code == 201
    expect[first] = "both-bad"
    summary = export_review(db, db.parent / "export")
    assert summary["n_vote_rows"] == 13 and summary["n_judgements"] == 12
    assert summary["n_edits"] == 1
    reviews = pd.read_parquet(db.parent / "export" / "reviews.parquet")
    assert dict(zip(reviews["pair_id"], reviews["consensus"], strict=True)) == expect
    assert (reviews["support"] == 1).all()
    votes = pd.read_parquet(db.parent / "export" / "votes.parquet")
    assert len(votes) == 13 and votes["latest"].sum() == 12
    report = (db.parent / "export" / "report.html").read_text()
    assert "<b>n</b>" not in report and "data:image/png;base64," in report
    assert json.loads((db.parent / "export" / "summary.json").read_text())["n_pairs"] == 12


def test_loopback_detection() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
