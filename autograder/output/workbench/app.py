"""The review workbench as a local web app (Starlette, served by uvicorn).

Pages: ``/`` the queue (filters: kind, question, state; counts and progress), ``/item/<id>`` one item
with its evidence and the decision form (POST to the same address), ``/name`` (POST) who is deciding,
``/static/workbench.js|css``.

Safety (notebook text is hostile, the server may be shared on a network):

* a random token (``secrets.token_urlsafe``) is printed with the URL, as Jupyter does; the first request
  presents it as ``?token=``, is compared in constant time and gets a session cookie (HttpOnly,
  SameSite=Strict); every other request without that session is refused (403);
* every change is a POST carrying the session's CSRF token, compared in constant time;
* pages are Jinja2 with autoescape; student text passes ``plain_text`` (capped); a
  Content-Security-Policy allows only the app's own script and style files and ``data:`` images, so a
  ``<script>`` or ``onerror`` in a report is inert text; ``X-Content-Type-Options: nosniff``;
* nothing is served from disk but the two static files, by fixed name: evidence is read by the app
  from the result's own folder (confusion matrix, executed notebook's markdown), never a path a
  request names.
"""
from __future__ import annotations

import hmac
import secrets
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlencode

import numpy as np
import uvicorn
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from autograder.assignment import Assignment
from autograder.output.intake_record import read_decisions
from autograder.output.plots import confusion_plot
from autograder.output.store import Store
from autograder.output.workbench.decisions import Decision, DecisionConflict, DecisionError, DecisionStore
from autograder.output.workbench.evidence import claims_beside, item_evidence, model_row, report_cells
from autograder.output.workbench.queue import (KINDS, Item, build_queue, evidence_hash, find_check, find_item,
                                               load_pairs, report_checks, rubric_item)
from autograder.results import read_result
from autograder.run.inside import contract
from autograder.student_text import plain_text

HERE = Path(__file__).parent
STATIC = {"workbench.js": "text/javascript; charset=utf-8", "workbench.css": "text/css; charset=utf-8"}
COOKIE = "autograder_review"
MAX_FORM_BYTES = 64 * 1024
STATES = ("open", "decided", "second_look")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")

_env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True, undefined=StrictUndefined,
                   trim_blocks=True, lstrip_blocks=True)


@dataclass
class Session:
    csrf: str
    name: str


class ResultsCache:
    """The results of a RESULTS folder, each file read again only when it changed (a regrade, a grade
    run finishing), so a page does not parse 300 JSON files."""

    def __init__(self, store: Store):
        self.store = store
        self._seen: dict[str, tuple[tuple[int, int], dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def load(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            fresh = {}
            for key in self.store.keys():
                path = self.store.result(key)
                try:
                    stat = path.stat()
                except FileNotFoundError:
                    continue
                stamp = (stat.st_mtime_ns, stat.st_size)
                seen = self._seen.get(key)
                fresh[key] = seen if seen and seen[0] == stamp else (stamp, read_result(path))
            self._seen = fresh
            return {key: value[1] for key, value in fresh.items()}


@dataclass
class Workbench:
    store: Store
    assignment: Assignment
    token: str
    default_name: str
    sessions: dict[str, Session] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.cache = ResultsCache(self.store)
        self.decisions = DecisionStore(self.store.root)

    # --- the queue -----------------------------------------------------------------------------------

    def snapshot(self) -> tuple[dict[str, dict[str, Any]], list[dict[str, str]], list[Item], dict[str, Decision]]:
        results = self.cache.load()
        pairs = load_pairs(self.store.root)
        return results, pairs, build_queue(results, pairs, read_decisions(self.store.root)), self.decisions.all()

    @staticmethod
    def state(item: Item, decision: Decision | None, results: Mapping[str, Any], pairs: list[dict[str, str]]) -> str:
        if decision is None:
            return "open"
        return "decided" if evidence_hash(item, results, pairs, decision.check) == decision.evidence else "second_look"

    def queue_rows(self, filters: Mapping[str, str], snapshot: tuple | None = None) -> dict[str, Any]:
        results, pairs, items, decisions = snapshot or self.snapshot()
        rows = []
        for item in items:
            decision = decisions.get(item.id)
            rows.append({"item": item, "decision": decision, "state": self.state(item, decision, results, pairs)})
        counts = {kind: sum(r["item"].kind == kind for r in rows) for kind in KINDS}
        states = {state: sum(r["state"] == state for r in rows) for state in STATES}
        shown = [r for r in rows if all(not filters.get(name) or value == filters[name] for name, value in
                                        (("kind", r["item"].kind), ("question", r["item"].question or ""),
                                         ("state", r["state"])))]
        listed = {item.id for item in items}
        outside = []  # rubric decisions, and decisions whose item a regrade removed: not applied while stale
        for item_id, decision in sorted(decisions.items()):
            if item_id in listed or decision.action == "override":
                continue
            item = find_item(item_id, {}, results)
            if item is None or self.state(item, decision, results, pairs) == "second_look":
                outside.append({"decision": decision, "rubric": item.key if item else None})
        return {"rows": shown, "total": len(rows), "counts": counts, "states": states, "outside": outside,
                "stale": len(self.store.staleness(results, self.assignment)),
                "done": states["decided"], "kinds": KINDS,
                "questions": [q.id for q in self.assignment.questions], "filters": dict(filters),
                "filter_query": urlencode({k: v for k, v in filters.items() if v})}

    # --- one item ------------------------------------------------------------------------------------

    def item_page(self, item_id: str, filters: Mapping[str, str], session: Session,
                  error: str | None = None) -> dict[str, Any] | None:
        snapshot = self.snapshot()
        results, pairs, items, decisions = snapshot
        queue = self.queue_rows(filters, snapshot)
        by_id = {item.id: item for item in items}
        item = by_id.get(item_id)
        if item is None:
            return None
        ids = [row["item"].id for row in queue["rows"]] or [item.id]
        at = ids.index(item.id) if item.id in ids else -1
        decision = decisions.get(item.id)
        sides = item.pair or ((item.key,) if item.key in results else ())
        checks = [] if item.pair or item.intake is not None else [
            {"name": c.get("name"), "question": q.get("id"), "score": float(c.get("score") or 0.0),
             "max_score": float(c.get("max_score") or 0.0), "selected": c.get("name") == item.check}
            for q in results[item.key].get("questions") or [] for c in q.get("checks") or []]
        return {
            "item": item, "kind_title": KINDS[item.kind], "decision": decision,
            "state": self.state(item, decision, results, pairs),
            "history": self.decisions.history(item.id),
            "sides": [{"key": key, "evidence": item_evidence(replace(item, key=key), results[key], self.store),
                       "student": plain_text((results[key].get("submission") or {}).get("student_id"), 100),
                       "name": plain_text((results[key].get("submission") or {}).get("student_name"), 200)}
                      for key in sides],
            "checks": checks, "bank": self.decisions.bank(), "error": error, "session": session,
            "previous": ids[at - 1] if at > 0 else None,
            "next": ids[at + 1] if 0 <= at < len(ids) - 1 else None,
            "position": at + 1, "count": len(ids), "filter_query": queue["filter_query"],
        }

    def decide(self, item_id: str, form: Mapping[str, str], session: Session) -> Decision:
        results, pairs, items, _ = self.snapshot()
        item = next((i for i in items if i.id == item_id), None)
        if item is None:
            raise DecisionError(f"{item_id}: no such item (the results changed?)")
        action = form.get("action", "")
        scores = not item.pair and item.intake is None  # a pair or an intake decision changes no score
        allowed = ("accept", "score", "comment") if scores else ("clear", "refer") if item.pair else ("accept", "refer")
        if action not in allowed:
            raise DecisionError(f"this item takes {' / '.join(allowed)}, not {action!r}")
        check_name = (form.get("check") or item.check) if scores else None
        question, check = find_check(results[item.key], check_name) if scores else (None, None)
        score = None
        if action == "score":
            if check is None:
                raise DecisionError("choose the check whose score you set")
            try:
                score = float(form.get("score", ""))
            except ValueError:
                raise DecisionError(f"score {form.get('score')!r} is not a number") from None
            if not 0 <= score <= float(check.get("max_score") or 0.0):
                raise DecisionError(f"score {score:g} outside 0..{float(check.get('max_score') or 0):g} "
                                    f"for {check_name}")
        comment = form.get("comment", "") if scores else ""
        if action == "comment" and not comment.strip():
            raise DecisionError("write the comment first")
        base = version(form.get("base_version"))
        decision = self.decisions.decide(
            item.id, result_key=item.key, student_id=student_of(results, item), action=action, who=session.name,
            evidence=evidence_hash(item, results, pairs, check_name), base_version=base,
            question=(question or {}).get("id") if question else item.question, check=check_name, score=score,
            reason=form.get("reason", ""), comment=comment)
        if form.get("save_comment") and comment.strip():
            self.decisions.add_to_bank(comment, session.name)
        return decision

    # --- report rubric mode ---------------------------------------------------------------------------

    def rubric_page(self, key: str, session: Session, error: str | None = None) -> dict[str, Any] | None:
        """The report scored section by section: each report check from its automatic score, the report
        beside the measured accuracies its claims state."""
        results, pairs, _, decisions = self.snapshot()
        result = results.get(key)
        if result is None or not report_checks(result):
            return None
        rows = []
        for question, check in report_checks(result):
            item = rubric_item(key, result, check["name"])
            decision = decisions.get(item.id)
            automatic = float(check.get("score") or 0.0)
            rows.append({"name": check["name"], "question": question.get("id"), "automatic": automatic,
                         "max_score": float(check.get("max_score") or 0.0),
                         "message": plain_text(check.get("message")), "detail": plain_text(check.get("detail")),
                         "decision": decision, "state": self.state(item, decision, results, pairs),
                         "value": decision.score if decision and decision.score is not None else automatic})
        models = result.get("models") or {}
        submission = result.get("submission") or {}
        return {"key": key, "rows": rows, "session": session, "error": error,
                "student": plain_text(submission.get("student_id"), 100),
                "name": plain_text(submission.get("student_name"), 200),
                "models": [model_row(arch, m) for arch, m in models.items() if isinstance(m, Mapping)],
                "report": claims_beside(report_cells(self.store.artifacts(key)), models)}

    def rubric_decide(self, key: str, form: Mapping[str, str], session: Session) -> int:
        """One score decision per section whose score moved from the automatic one (or from the standing
        decision); every section is checked before any is stored, and a section another TA decided
        since the page was loaded refuses the whole form."""
        results, pairs, _, decisions = self.snapshot()
        result = results.get(key)
        if result is None:
            raise DecisionError(f"{key}: no such result")
        planned = []
        for _, check in report_checks(result):
            name = check["name"]
            item = rubric_item(key, result, name)
            current = decisions.get(item.id)
            if version(form.get(f"base.{name}")) != (current.version if current else 0):
                raise DecisionConflict(current) if current else DecisionError(f"{name}: reload the page")
            try:
                score = float(form.get(f"score.{name}", ""))
            except ValueError:
                raise DecisionError(f"{name}: score {form.get(f'score.{name}')!r} is not a number") from None
            if not 0 <= score <= float(check.get("max_score") or 0.0):
                raise DecisionError(f"{name}: score {score:g} outside 0..{float(check.get('max_score') or 0):g}")
            standing = current.score if current and current.score is not None else float(check.get("score") or 0.0)
            if score == standing:
                continue
            reason = form.get(f"reason.{name}", "")
            if not reason.strip():
                raise DecisionError(f"{name}: say why the score moves from {standing:g} to {score:g}")
            planned.append((item, current, score, reason))
        for item, current, score, reason in planned:
            self.decisions.decide(item.id, result_key=key, student_id=student_of(results, item), action="score",
                                  who=session.name, evidence=evidence_hash(item, results, pairs),
                                  base_version=current.version if current else 0, question=item.question,
                                  check=item.check, score=score, reason=reason)
        return len(planned)


def student_of(results: Mapping[str, Mapping[str, Any]], item: Item) -> str:
    """The student id as the result records it (the item's is cleaned for display); a pair: both; an intake
    decision without a result yet: the decision's."""
    if item.key not in results:
        return item.student_id
    return " / ".join(str((results[key].get("submission") or {}).get("student_id") or key)
                      for key in (item.pair or (item.key,)))


def version(text: str | None) -> int:
    """The decision version a form was made from (0: no decision yet)."""
    if not (text or "0").isdigit():
        raise DecisionError(f"bad form: version {text!r}")
    return int(text or 0)


# --- HTTP ---------------------------------------------------------------------------------------------

class Guard(BaseHTTPMiddleware):
    """Token before anything, a session after it, security headers on every answer."""

    def __init__(self, app: Any, workbench: Workbench):
        super().__init__(app)
        self.workbench = workbench

    async def dispatch(self, request: Request, call_next: Any) -> Response:
        workbench = self.workbench
        token = request.query_params.get("token")
        session = workbench.sessions.get(request.cookies.get(COOKIE, ""))
        if token is not None and hmac.compare_digest(token.encode(), workbench.token.encode()):
            session_id = secrets.token_urlsafe(32)
            workbench.sessions[session_id] = Session(csrf=secrets.token_urlsafe(32), name=workbench.default_name)
            rest = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
            response: Response = RedirectResponse(request.url.path + (f"?{rest}" if rest else ""), status_code=303)
            response.set_cookie(COOKIE, session_id, httponly=True, samesite="strict", path="/")
        elif session is None:
            response = PlainTextResponse("Open the address `autograder review` printed, with its token.", 403)
        else:
            request.state.session = session
            response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        return response


async def read_form(request: Request) -> dict[str, str]:
    """A url-encoded form of bounded size, its CSRF token checked against the session's."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise DecisionError("form too large")
    form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True).items()}
    given = form.get("csrf", "")
    if not hmac.compare_digest(given.encode(), request.state.session.csrf.encode()):
        raise PermissionError("missing or wrong CSRF token")
    return form


def filters_of(request: Request) -> dict[str, str]:
    return {name: request.query_params.get(name, "") for name in ("kind", "question", "state")}


def build_app(store: Store, assignment: Assignment, token: str, default_name: str) -> Starlette:
    workbench = Workbench(store, assignment, token, default_name)

    def render(template: str, status: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(_env.get_template(template).render(**context), status_code=status)

    def queue(request: Request) -> Response:
        return render("queue.html.j2", page=workbench.queue_rows(filters_of(request)), session=request.state.session,
                      title=assignment.title or assignment.name)

    def show_item(request: Request, error: str | None = None, status: int = 200) -> Response:
        view = workbench.item_page(request.path_params["item_id"], filters_of(request), request.state.session, error)
        if view is None:
            return PlainTextResponse("No such review item.", 404)
        return render("item.html.j2", status, page=view, session=request.state.session,
                      title=assignment.title or assignment.name)

    async def refused(request: Request, decide: Callable[[Any], None],
                      show: Callable[..., Response]) -> Response | None:
        """Read the form and decide; a bad form is 403/400, a refused decision the page again saying why
        (409 for another TA's decision since). None: saved."""
        try:
            form = await read_form(request)
        except PermissionError as exc:
            return PlainTextResponse(str(exc), 403)
        except DecisionError as exc:
            return PlainTextResponse(str(exc), 400)
        try:
            decide(form)
        except DecisionConflict as exc:
            return show(request, f"Not saved: {exc}", 409)
        except DecisionError as exc:
            return show(request, f"Not saved: {exc}", 400)
        return None

    async def item(request: Request) -> Response:
        if request.method == "GET":
            return show_item(request)
        item_id, session = request.path_params["item_id"], request.state.session
        if answer := await refused(request, lambda form: workbench.decide(item_id, form, session), show_item):
            return answer
        view = workbench.item_page(item_id, filters_of(request), session)
        following = view["next"] if view else None
        query = f"?{view['filter_query']}" if view and view["filter_query"] else ""
        target = f"/item/{following}{query}" if following else f"/{query}"
        return RedirectResponse(target, status_code=303)

    def show_rubric(request: Request, error: str | None = None, status: int = 200) -> Response:
        view = workbench.rubric_page(request.path_params["key"], request.state.session, error)
        if view is None:
            return PlainTextResponse("No such result, or it has no report checks.", 404)
        return render("rubric.html.j2", status, page=view, session=request.state.session,
                      title=assignment.title or assignment.name)

    async def rubric(request: Request) -> Response:
        if request.method == "GET":
            return show_rubric(request)
        key, session = request.path_params["key"], request.state.session
        if answer := await refused(request, lambda form: workbench.rubric_decide(key, form, session), show_rubric):
            return answer
        return RedirectResponse(f"/rubric/{key}", status_code=303)

    async def name(request: Request) -> Response:
        try:
            form = await read_form(request)
        except PermissionError as exc:
            return PlainTextResponse(str(exc), 403)
        chosen = plain_text(form.get("name", ""), 80, one_line=True)
        if chosen:
            request.state.session.name = chosen
        return RedirectResponse("/", status_code=303)

    def static(request: Request) -> Response:
        file = request.path_params["file"]
        if file not in STATIC:
            return PlainTextResponse("Not found.", 404)
        return Response((HERE / "static" / file).read_bytes(), media_type=STATIC[file])

    app = Starlette(routes=[Route("/", queue), Route("/item/{item_id:path}", item, methods=["GET", "POST"]),
                            Route("/rubric/{key}", rubric, methods=["GET", "POST"]),
                            Route("/name", name, methods=["POST"]), Route("/static/{file}", static)],
                    middleware=[Middleware(Guard, workbench=workbench)])
    app.state.workbench = workbench
    return app


def open_socket(host: str, port: int) -> socket.socket:
    """A listening socket, so port 0 can be a free port the printed address already names."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise DecisionError(f"cannot serve on {host}:{port} ({exc.strerror}); choose another --port") from None
    sock.listen(64)
    return sock


def server(store: Store, assignment: Assignment, sock: socket.socket, default_name: str,
           token: str | None = None) -> tuple[uvicorn.Server, str]:
    """A uvicorn server for the workbench on ``sock``, and the address (with its token) to open."""
    token = token or secrets.token_urlsafe(32)
    app = build_app(store, assignment, token, default_name)
    confusion_plot(np.eye(contract.CLASSES, dtype=np.int64))  # matplotlib's start-up (about a second) before the first page
    host, port = sock.getsockname()[:2]
    shown = socket.gethostname() if host in ("0.0.0.0", "::") else host
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    return uvicorn.Server(config), f"http://{shown}:{port}/?token={token}"


def serve(store: Store, assignment: Assignment, host: str, port: int, default_name: str) -> None:
    sock = open_socket(host, port)
    web, url = server(store, assignment, sock, default_name)
    print(f"Review workbench for {store.root} (Ctrl-C stops it). Open:\n    {url}", flush=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print("It is reachable from other machines: share the address only with your TA team.", flush=True)
    web.run(sockets=[sock])
