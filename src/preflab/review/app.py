"""The reviewer's web app: an ASGI app (Starlette; Jinja2 page, one static script).

Routes: ``GET /`` (the page; ``/?token=T`` logs in: it sets an HttpOnly, SameSite=Lax
cookie that lasts `session_days` and redirects to ``/`` so the token leaves the address
bar; a browser signed in as another reviewer is asked first, also when the link was
clicked on another website: Lax sends the cookie with that navigation, where Strict
would not), ``GET /api/state``
(the reviewer's queue and progress), ``GET /api/pairs/{id}`` (one of their pairs, the
replies in their shown order; the committee's votes and the original label only once
they have judged it), ``POST /api/votes`` (a judgement), ``GET /healthz`` and
``/static/*``.

Safety: every request but ``/healthz`` and the static files needs a reviewer's token
(the cookie, or ``Authorization: Bearer T`` for scripts); a reviewer reads and writes
only their own pairs and votes; a POST must be JSON, come from this origin (Origin or
Referer) and, with the cookie, carry the page's CSRF token (an HMAC of the session);
bodies are limited to `max_body` bytes; the page is rendered with autoescaping and
the script writes every text with ``textContent``; a Content-Security-Policy allows
only this origin's script and style.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from preflab.audit.noise_sources import SOURCES
from preflab.data.verdicts import to_verdict
from preflab.review import store

PAGE_VERSION = "review-page/2"
COOKIE = "preflab_review"
SESSION_DAYS = 30.0
MAX_BODY = 64 * 1024
MAX_NOTE = 4000
HERE = Path(__file__).parent
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
                    "Cache-Control": "no-store"}
SOURCE_HELP = {
    "mis-label": "the label is simply wrong: the rejected reply is clearly better",
    "subjective": "it depends on taste, or the conversation lacks the context to decide",
    "different-criteria": "one reply wins on one criterion (e.g. helpful), the other on "
                          "another (e.g. harmless)",
    "different-thresholds": "both replies are acceptable; the label rests on where "
                            "'good enough' lies",
    "both-harmful": "both replies are harmful",
    "both-bad": "both replies are wrong, irrelevant or unhelpful",
}
CHOICE_TEXT = {"A": "A is better", "B": "B is better", "both-good": "both good",
               "both-bad": "both bad", "uncertain": "uncertain"}


class Refused(Exception):
    """A request the app refuses: an HTTP status and a message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _common_prefix(a: list[dict[str, str]], b: list[dict[str, str]]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def member_notes(voters: dict[str, dict[str, int]]) -> dict[str, str]:
    """Per member, how the committee counts it where that is not simply its own vote:
    merged with others into one voter, or turned round (it disagrees with the labels
    beyond chance)."""
    notes = {}
    for voter, members in voters.items():
        for m, orient in members.items():
            parts = []
            if len(members) > 1:
                others = ", ".join(o for o in members if o != m)
                parts.append(f"merged with {others} into voter {voter}")
            if orient < 0:
                parts.append("counted turned round")
            if parts:
                notes[m] = "; ".join(parts)
    return notes


def reveal(row: Any) -> dict[str, Any]:
    """What the committee and the data said about a pair, in the reviewer's A/B terms:
    ``prefer_A`` of ``voters`` (the voters that voted) is counted from ``voter_votes``,
    the votes the committee counts; ``member_votes`` are the members' own votes and
    ``member_notes`` say which are merged or counted turned round. A project made
    before voters were kept shows its members as the voters."""
    committee = json.loads(row["committee_json"])
    cr = row["shown_order"] == "CR"
    p = committee.get("p_chosen")
    combination = committee.get("combination") or ""
    side = lambda v: None if v is None else "A" if bool(v) == cr else "B"  # noqa: E731
    own = {m: side(v) for m, v in committee["member_votes"].items()}
    cast = committee.get("voter_votes")
    voter_votes = own if cast is None else {v: side(x) for v, x in cast.items()}
    layout = committee.get("voters") or {m: {m: 1} for m in own}
    return {
        "original_label": "A" if cr else "B",
        "committee": {
            "prefer_A": sum(s == "A" for s in voter_votes.values()),
            "voters": sum(s is not None for s in voter_votes.values()),
            "voter_votes": voter_votes,
            "p_A": None if p is None else round(p if cr else 1 - p, 3),
            "combination": combination,
            "weights_note": (
                f"P(A better) is the committee's combination"
                f"{f' ({combination})' if combination else ''} of the members' scores: "
                "members differ in weight and in how strongly they prefer a reply, so the "
                "vote count and this probability can disagree."),
            "member_votes": own, "member_notes": member_notes(layout),
            "bin": row["bin"], "source": row["source"], "signal": committee.get("signal", ""),
        },
    }


def pair_view(row: Any, mine: dict[str, Any] | None) -> dict[str, Any]:
    """One pair as its reviewer sees it: the shared conversation, each reply (with the
    turns of its own context that differ, if any) in the shown order, their own latest
    vote, and the reveal once they have voted."""
    pair = json.loads(row["pair_json"])
    chosen_ctx = pair["prompt"]
    rejected_ctx = pair["rejected_prompt"] or pair["prompt"]
    common = _common_prefix(chosen_ctx, rejected_ctx)
    sides = {"chosen": {"context": chosen_ctx[common:], "text": pair["chosen"]},
             "rejected": {"context": rejected_ctx[common:], "text": pair["rejected"]}}
    a, b = ("chosen", "rejected") if row["shown_order"] == "CR" else ("rejected", "chosen")
    view: dict[str, Any] = {
        "pair_id": row["pair_id"], "conversation": chosen_ctx[:common],
        "replies": {"A": sides[a], "B": sides[b]}, "mine": None, "reveal": None}
    if mine is not None:
        view["mine"] = {k: mine[k] for k in ("choice", "source_tag", "note", "created_at")}
        view["reveal"] = reveal(row)
        view["reveal"]["your_verdict"] = to_verdict(mine["choice"], row["shown_order"])
    return view


def _string(body: dict[str, Any], key: str, limit: int, default: str = "") -> str:
    value = body.get(key, default)
    if value is None:
        value = default
    if not isinstance(value, str):
        raise Refused(400, f"field '{key}' must be a string")
    if len(value) > limit:
        raise Refused(400, f"field '{key}' is longer than {limit} characters")
    return value


def parse_vote(body: dict[str, Any]) -> store.Vote:
    """A vote from a request body, checked field by field."""
    pair_id = _string(body, "pair_id", 64)
    if not pair_id:
        raise Refused(400, "field 'pair_id' is missing")
    choice = _string(body, "choice", 20)
    if choice not in store.CHOICES:
        raise Refused(400, f"field 'choice' must be one of {', '.join(store.CHOICES)}, got "
                           f"{choice!r}")
    source = _string(body, "source_tag", 40)
    if source and source not in SOURCES:
        raise Refused(400, f"field 'source_tag' must be empty or one of {', '.join(SOURCES)}, "
                           f"got {source!r}")
    submission = _string(body, "submission", 64) or str(uuid.uuid4())
    return store.Vote(pair_id, choice, source, _string(body, "note", MAX_NOTE),
                      _string(body, "page_version", 40, "api") or "api", submission)


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    """The JSON object body, refused (413) past `limit` bytes, declared or streamed."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise Refused(415, "send the body as application/json")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise Refused(413, f"the request body is over {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refused(413, f"the request body is over {limit} bytes")
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise Refused(400, f"the request body is not JSON: {e}") from None
    if not isinstance(body, dict):
        raise Refused(400, "the request body must be a JSON object")
    return body


class Project:
    """The project database as the app uses it: one connection per server thread."""

    def __init__(self, db: str | Path) -> None:
        self.db = Path(db)
        with store.opened(self.db) as con:
            store.check_project(con, self.db)
            store.upgrade(con)
            self.secret = bytes.fromhex(store.meta(con)["secret"])
        self._local = threading.local()

    def con(self) -> Any:
        con = getattr(self._local, "con", None)
        if con is None:
            con = self._local.con = store.connect(self.db)
        return con

    def csrf(self, token: str) -> str:
        """The session's CSRF token: an HMAC of its access token under the project secret."""
        return hmac.new(self.secret, store.token_hash(token).encode(), hashlib.sha256
                        ).hexdigest()


def _same_origin(request: Request) -> bool:
    """True when the Origin (or, without one, the Referer) is this server."""
    here = f"{request.url.scheme}://{request.headers.get('host', '')}"
    origin = request.headers.get("origin")
    if origin is not None:
        return origin == here
    referer = request.headers.get("referer")
    if referer is None:
        return True  # scripts and curl; the browser sends Origin on every POST
    parts = urlsplit(referer)
    return f"{parts.scheme}://{parts.netloc}" == here


def _confirmed_switch(request: Request) -> bool:
    """True for the "switch reviewer" link of this app's own notice: ``switch=1``, and
    not a navigation from another site (a browser says where it came from in
    Sec-Fetch-Site), so a link elsewhere cannot switch a signed-in browser unasked."""
    site = request.headers.get("sec-fetch-site")
    return request.query_params.get("switch") == "1" and site in (None, "same-origin")


def create_app(db: str | Path, secure_cookie: bool = False, max_body: int = MAX_BODY,
               session_days: float = SESSION_DAYS) -> Starlette:
    """The app over the project database `db`. `secure_cookie`: mark the login cookie
    Secure (behind HTTPS); `session_days`: how long the login cookie lasts (it survives
    a browser restart)."""
    if not session_days > 0:
        raise ValueError(f"--session-days must be above 0, got {session_days}")
    handlers = Handlers(Project(db), secure_cookie, max_body,
                        max_age=max(1, round(session_days * 86400)))
    routes = [
        Route("/", handlers.page, methods=["GET"]),
        Route("/healthz", handlers.health, methods=["GET"]),
        Route("/api/state", handlers.state, methods=["GET"]),
        Route("/api/pairs/{pair_id}", handlers.pair, methods=["GET"]),
        Route("/api/votes", handlers.vote, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
    app.state.project = handlers.project
    return app


def _json_reply(status: int, body: Any) -> Response:
    return JSONResponse(body, status, headers=SECURITY_HEADERS)


async def _http_error(request: Request, exc: Exception) -> Response:
    """404 and 405 from routing, as JSON."""
    assert isinstance(exc, HTTPException)
    return _json_reply(exc.status_code, {"error": str(exc.detail)})


async def _answer(work: Callable[[], Any]) -> Response:
    """`work`'s JSON on a server thread, or the error it refused with."""
    try:
        return _json_reply(200, await run_in_threadpool(work))
    except Refused as e:
        return _json_reply(e.status, {"error": e.message})


class Handlers:
    """The app's routes over one project: who is asking (:meth:`login`), the page, the
    reviewer's state and pairs, and their votes."""

    def __init__(self, project: Project, secure_cookie: bool, max_body: int,
                 max_age: int) -> None:
        self.project = project
        self.secure_cookie = secure_cookie
        self.max_body = max_body
        self.max_age = max_age  # seconds the login cookie lasts
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                                      autoescape=True, undefined=jinja2.StrictUndefined)

    def login(self, request: Request) -> tuple[str, str, bool]:
        """(reviewer, token, came as the cookie) or Refused(401)."""
        auth = request.headers.get("authorization", "")
        via_cookie = not auth.lower().startswith("bearer ")
        token = request.cookies.get(COOKIE, "") if via_cookie else auth[7:].strip()
        name = store.reviewer_for(self.project.con(), token)
        if name is None:
            raise Refused(401, "a valid reviewer token is needed: open the link you were "
                               "given (/?token=...)")
        return name, token, via_cookie

    async def page(self, request: Request) -> Response:
        token = request.query_params.get("token")
        if token is not None:
            return await self.open_link(request, token)
        try:
            name, token, _ = await run_in_threadpool(self.login, request)
        except Refused as e:
            return _page_error(self.env, e.status, "Open the link with your token to review.")
        await run_in_threadpool(store.mark_seen, self.project.con(), name)
        html = self.env.get_template("page.html").render(
            reviewer=name, csrf=self.project.csrf(token), page_version=PAGE_VERSION,
            choices=CHOICE_TEXT, sources=SOURCE_HELP)
        return HTMLResponse(html, headers=SECURITY_HEADERS)

    async def open_link(self, request: Request, token: str) -> Response:
        """A reviewer's link (/?token=...): set the login cookie and go to the page, after
        asking first when the browser is logged in as another reviewer."""
        con = self.project.con()
        other = await run_in_threadpool(store.reviewer_for, con, token)
        if other is None:
            return _page_error(self.env, 401, "This link's token is not valid for this "
                                              "project.")
        current = await run_in_threadpool(store.reviewer_for, con,
                                          request.cookies.get(COOKIE, ""))
        if current not in (None, other) and not _confirmed_switch(request):
            html = self.env.get_template("switch.html").render(current=current, other=other,
                                                               token=token)
            return HTMLResponse(html, headers=SECURITY_HEADERS)
        reply = RedirectResponse("/", 303, headers=SECURITY_HEADERS)
        reply.set_cookie(COOKIE, token, max_age=self.max_age, httponly=True, samesite="lax",
                         secure=self.secure_cookie, path="/")
        return reply

    async def state(self, request: Request) -> Response:
        def work() -> dict[str, Any]:
            name, _, _ = self.login(request)
            con = self.project.con()
            return {"reviewer": name, "queue": store.queue(con, name),
                    "progress": store.progress(con, name), "page_version": PAGE_VERSION}
        return await _answer(work)

    async def pair(self, request: Request) -> Response:
        def work() -> dict[str, Any]:
            name, _, _ = self.login(request)
            con = self.project.con()
            pair_id = request.path_params["pair_id"]
            row = store.assignment(con, name, pair_id)
            if row is None:
                raise Refused(404, f"pair {pair_id} is not one of yours")
            return pair_view(row, store.latest_vote(con, name, pair_id))
        return await _answer(work)

    async def vote(self, request: Request) -> Response:
        try:
            name, v = await self.checked_vote(request)
        except Refused as e:
            return _json_reply(e.status, {"error": e.message})
        try:
            status, body = await run_in_threadpool(self.record, name, v)
        except Refused as e:
            return _json_reply(e.status, {"error": e.message})
        return _json_reply(status, body)

    async def checked_vote(self, request: Request) -> tuple[str, store.Vote]:
        """(reviewer, vote) of a POST from this origin, with the page's CSRF token when
        it came with the cookie, its body checked; else Refused."""
        if not _same_origin(request):
            raise Refused(403, "cross-site request refused")
        name, token, via_cookie = await run_in_threadpool(self.login, request)
        if via_cookie and not hmac.compare_digest(
                request.headers.get("x-csrf-token", ""), self.project.csrf(token)):
            raise Refused(403, "missing or wrong CSRF token: reload the page")
        return name, parse_vote(await read_json(request, self.max_body))

    def record(self, name: str, v: store.Vote) -> tuple[int, dict[str, Any]]:
        """Store `name`'s vote: 201 when new, 200 when a resubmission; its reveal."""
        con = self.project.con()
        try:
            vote_id, created = store.record_vote(con, name, v)
        except KeyError:
            raise Refused(404, f"pair {v.pair_id} is not one of yours") from None
        except PermissionError as e:
            raise Refused(409, str(e)) from None
        row = store.assignment(con, name, v.pair_id)
        view = pair_view(row, store.latest_vote(con, name, v.pair_id))
        return (201 if created else 200), {
            "vote_id": vote_id, "created": created, "submission": v.submission,
            "reveal": view["reveal"], "mine": view["mine"],
            "progress": store.progress(con, name)}

    async def health(self, request: Request) -> Response:
        return _json_reply(200, {"status": "ok"})


def _page_error(env: jinja2.Environment, status: int, message: str) -> Response:
    html = env.get_template("error.html").render(status=status, message=message)
    return HTMLResponse(html, status, headers=SECURITY_HEADERS)
