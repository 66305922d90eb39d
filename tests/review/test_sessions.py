"""Tokens and logins (issue 32, items 7-9): `review serve` never writes a token to its
access log; the login cookie lasts --session-days and survives a browser restart; a
second reviewer's link in a browser logged in as the first asks before switching; the
reveal shows the committee's combined probability and why it can differ from the votes."""

from __future__ import annotations

import html
import http.client
import http.server
import logging
import subprocess
import sys
import threading

import requests

from preflab.review import store
from preflab.review.project import init_review
from preflab.review.server import RedactTokens, make_server
from tests.review.test_browser import browser, text  # noqa: F401  (the fixture)


def test_the_access_log_never_shows_a_token(hh_data, tmp_path) -> None:
    data, audit = hh_data
    db = tmp_path / "r.sqlite"
    token = init_review(data, audit, db, sample=2, per_pair=1, reviewers=["ann"])["tokens"][
        "ann"]
    proc = subprocess.Popen([sys.executable, "-m", "preflab.cli", "review", "serve", str(db),
                             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "serving review at" in line, line
        url = line.split(" at ")[1].strip()
        s = requests.Session()
        assert s.get(f"{url}/?token={token}", allow_redirects=False, timeout=10
                     ).status_code == 303
        assert s.get(f"{url}/?x=1&token={token}x", timeout=10).status_code == 401
        # the app decodes parameter names: an encoded 'token' logs in, and is redacted
        raw = http.client.HTTPConnection(url.removeprefix("http://"), timeout=10)
        raw.request("GET", f"/?tok%65n={token}")  # as sent (requests would normalise it)
        assert raw.getresponse().status == 303
        raw.close()
        assert s.get(f"{url}/api/state", timeout=10).status_code == 200
    finally:
        proc.terminate()
        rest, errors = proc.communicate(timeout=30)
    log = line + rest + errors
    assert "GET /?token=[redacted] HTTP/1.1\" 303" in log, log
    assert "GET /?x=1&token=[redacted] HTTP/1.1\" 401" in log, log
    assert "GET /?tok%65n=[redacted] HTTP/1.1\" 303" in log, log
    assert "GET /api/state HTTP/1.1\" 200" in log
    assert token not in log and token[:12] not in log


def test_redaction_follows_how_the_app_reads_parameter_names() -> None:
    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s "%s %s"', (
        "127.0.0.1:5", "GET", "/?a=1&t%6Fken=S1&%74oken=S2&token=S3&tok+en=keep&tokens=keep"
                              "&x=token%3DS4"), None)
    RedactTokens().filter(record)
    line = record.getMessage()
    assert "S1" not in line and "S2" not in line and "S3" not in line, line
    assert "t%6Fken=[redacted]&%74oken=[redacted]&token=[redacted]" in line
    assert "tok+en=keep&tokens=keep&x=token%3DS4" in line  # other names and values stay


def test_the_login_cookie_lasts_session_days(hh_data, tmp_path) -> None:
    data, audit = hh_data
    db = tmp_path / "r.sqlite"
    token = init_review(data, audit, db, sample=2, per_pair=1, reviewers=["ann"])["tokens"][
        "ann"]
    for days, seconds in ((30.0, 2_592_000), (2.0, 172_800)):
        server = make_server(db, port=0, session_days=days).start()
        try:
            r = requests.get(f"{server.url}/?token={token}", allow_redirects=False, timeout=10)
        finally:
            server.shutdown()
        cookie = r.headers["set-cookie"].lower()
        assert f"max-age={seconds}" in cookie and "httponly" in cookie, cookie


def test_the_reveal_shows_the_combination_and_that_members_differ_in_weight(
        hh_data, tmp_path) -> None:
    data, audit = hh_data
    db = tmp_path / "r.sqlite"
    token = init_review(data, audit, db, sample=2, per_pair=1, reviewers=["ann"])["tokens"][
        "ann"]
    with store.opened(db) as con:
        pair_id = store.queue(con, "ann")[0]["pair_id"]
    server = make_server(db, port=0).start()
    try:
        r = requests.post(f"{server.url}/api/votes", json={"pair_id": pair_id, "choice": "A"},
                          headers={"Authorization": f"Bearer {token}"}, timeout=10)
    finally:
        server.shutdown()
    committee = r.json()["reveal"]["committee"]
    assert committee["combination"] == "stacked" and 0 <= committee["p_A"] <= 1
    assert "P(A better) is the committee's combination (stacked)" in committee["weights_note"]
    assert "members differ in weight" in committee["weights_note"]


def test_login_survives_a_browser_restart_and_switching_reviewer_asks_first(
        hh_data, tmp_path) -> None:
    from playwright import sync_api

    from tests.review.test_browser import CHROMIUM, FLAGS

    data, audit = hh_data
    db = tmp_path / "r.sqlite"
    tokens = init_review(data, audit, db, sample=4, per_pair=1, reviewers=["ann", "bob"])[
        "tokens"]
    server = make_server(db, port=0).start()
    profile = str(tmp_path / "profile")

    def launch(p):
        return p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=FLAGS,
            bypass_csp=True)  # Playwright's polling evaluates strings; the page forbids it

    try:
        with sync_api.sync_playwright() as p:
            first = launch(p)
            page = first.new_page()
            page.goto(f"{server.url}/?token={tokens['ann']}")
            assert text(page, "#reviewer") == "ann"
            first.close()  # the browser quits
            again = launch(p)  # and starts again with the same profile
            page = again.new_page()
            page.goto(server.url)
            assert text(page, "#reviewer") == "ann"  # still logged in
            page.goto(f"{server.url}/?token={tokens['bob']}")  # bob's link, ann's browser
            assert text(page, "#current") == "ann" and text(page, "#other") == "bob"
            page.goto(server.url)  # not switched until confirmed
            assert text(page, "#reviewer") == "ann"
            page.goto(f"{server.url}/?token={tokens['bob']}")
            page.click("#switch-to")
            page.wait_for_url(f"{server.url}/")
            assert text(page, "#reviewer") == "bob"
            again.close()
    finally:
        server.shutdown()


class _LinkPage(http.server.BaseHTTPRequestHandler):
    """Another website: one page with a reviewer's link on it."""

    link = ""

    def do_GET(self) -> None:
        body = f'<!doctype html><a id="go" href="{html.escape(self.link)}">review</a>'.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_link_clicked_on_another_site_still_asks_before_switching(
        hh_data, tmp_path, browser) -> None:  # noqa: F811  (the fixture)
    data, audit = hh_data
    db = tmp_path / "r.sqlite"
    tokens = init_review(data, audit, db, sample=4, per_pair=1, reviewers=["ann", "bob"])[
        "tokens"]
    server = make_server(db, port=0).start()
    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _LinkPage)
    _LinkPage.link = f"{server.url}/?token={tokens['bob']}"
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        page = browser.new_page()
        page.goto(f"{server.url}/?token={tokens['ann']}")
        assert text(page, "#reviewer") == "ann"
        # localhost is another site than 127.0.0.1: the click is a cross-site navigation
        page.goto(f"http://localhost:{other.server_address[1]}/")
        page.click("#go")
        page.wait_for_url(f"{server.url}/**")
        assert text(page, "#current") == "ann" and text(page, "#other") == "bob"
        page.goto(server.url)
        assert text(page, "#reviewer") == "ann"  # nothing switched behind her back
        # a link elsewhere that claims the switch was confirmed is asked about too
        _LinkPage.link += "&switch=1"
        page.goto(f"http://localhost:{other.server_address[1]}/")
        page.click("#go")
        page.wait_for_url(f"{server.url}/**")
        assert text(page, "#current") == "ann"
        page.click("#switch-to")  # confirmed on the app's own page: switched
        page.wait_for_url(f"{server.url}/")
        assert text(page, "#reviewer") == "bob"
    finally:
        other.shutdown()
        other.server_close()
        server.shutdown()
