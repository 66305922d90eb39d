"""The reviewer's page in a real headless Chromium (Debian's `chromium`, driven by
Playwright): keyboard only, an edit, the randomised order mapped back, and replies
carrying HTML and script shown as text."""

from __future__ import annotations

import re
import shutil
import sqlite3

import pandas as pd
import pytest
from playwright import sync_api

from preflab.review.export import export_review
from preflab.review.project import init_review
from preflab.review.server import make_server
from tests.review.helpers import XSS, write_data

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
KEYS = ["1", "2", "3", "4", "5", "1", "2", "1", "2", "4"]
VERDICT = {"3": "both-good", "4": "both-bad", "5": "uncertain"}

@pytest.fixture
def browser(tmp_path):
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": 1280, "height": 900},
            bypass_csp=True)  # the page's CSP would block script; escaping must hold alone
        yield b
        b.close()


def pair_id(page) -> str:
    return page.evaluate("document.querySelector('#pair').dataset.pairId")


def text(page, selector: str) -> str:
    return page.evaluate(f"document.querySelector({selector!r}).textContent")


def test_a_reviewer_judges_ten_pairs_with_the_keyboard(hh_pairs, tmp_path, browser) -> None:
    pairs = hh_pairs[:10]
    assert pairs[0].chosen == XSS
    data, audit = write_data(pairs, tmp_path / "data")
    db = tmp_path / "r.sqlite"
    token = init_review(data, audit, db, sample=10, per_pair=1, reviewers=["ann"])["tokens"][
        "ann"]
    by_id = {p.id: p for p in pairs}
    server = make_server(db, port=0).start()
    try:
        page = browser.new_page()
        page.goto(f"{server.url}/?token={token}")
        assert page.url == f"{server.url}/"  # the token has left the address bar
        page.wait_for_function("document.querySelector('#pair').dataset.pairId !== ''")
        expect: dict[str, str] = {}
        saw_xss = False
        for k, key in enumerate(KEYS):
            current = pair_id(page)
            assert text(page, "#position").startswith(f"Pair {k + 1} of 10")
            assert "This pair" not in text(page, "#reveal")  # nothing before judging
            a, b = text(page, "#reply-A .text"), text(page, "#reply-B .text")
            if XSS in (a, b):
                saw_xss = True
                assert page.evaluate("window.__xss") is None
                assert page.evaluate("document.querySelectorAll('#work img').length") == 0
            if key in VERDICT:
                expect[current] = VERDICT[key]
            else:
                picked = a if key == "1" else b
                expect[current] = "chosen" if picked == by_id[current].chosen else "rejected"
            page.keyboard.press(key)
            page.keyboard.press("Enter")
            page.wait_for_function(
                f"document.querySelector('#pair').dataset.pairId !== {current!r}")
            reveal = text(page, "#reveal")
            assert f"Pair {k + 1} (just judged)" in reveal
            # the combination's probability, and why it can differ from the vote count
            assert re.search(r"Committee \([a-z-]+\): P\(A better\) = [01]\.\d\d", reveal)
            assert "members differ in weight" in reveal
        assert saw_xss and page.evaluate("window.__xss") is None
        assert page.is_visible("#done") and "All done" in text(page, "#done-title")
        assert "10 of 10 judged" in text(page, "#progress-mine")
        # Backspace: back to the tenth pair, its judgement and the reveal shown; change it
        page.keyboard.press("Backspace")
        page.wait_for_function("document.querySelector('#pair').dataset.pairId !== ''")
        last = pair_id(page)
        assert "This pair (10)" in text(page, "#reveal")
        assert page.is_checked('input[name="choice"][value="both-bad"]')
        page.keyboard.press("3")
        page.keyboard.press("Enter")
        page.wait_for_function("document.querySelector('#pair').dataset.pairId === ''")
        expect[last] = "both-good"
        assert "10 of 10 judged" in text(page, "#progress-mine")  # an edit is no new pair
        page.check("#hide-reveal")
        assert text(page, "#reveal") == "Hidden."
    finally:
        server.shutdown()
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*) FROM votes").fetchone()[0] == 11
    assert {r[0] for r in con.execute("SELECT page_version FROM votes")} == {"review-page/2"}
    con.close()
    export_review(db, tmp_path / "export")
    reviews = pd.read_parquet(tmp_path / "export" / "reviews.parquet")
    assert dict(zip(reviews["pair_id"], reviews["consensus"], strict=True)) == expect
    assert {"chosen", "rejected"} <= set(expect.values())
