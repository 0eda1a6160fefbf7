"""The dashboard's HTML pages under ``/ui``: sweeps, runs, studies, login."""

from __future__ import annotations

import hmac
import math
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from tunepilot._yaml import load_yaml
from tunepilot.exceptions import ConflictError, NotFoundError, SearchSpaceError, SpecError
from tunepilot.server._analysis import flatten
from tunepilot.server._lockout import Lockout
from tunepilot.server._sweeps import SweepService
from tunepilot.server.api.deps import ContextDep
from tunepilot.server.api.schemas import SweepCreate
from tunepilot.server.db import hash_token, repository, token_digests
from tunepilot.server.web import _sweeps as sweeps
from tunepilot.server.web._forms import FormDep, safe_next
from tunepilot.server.web._render import render
from tunepilot.server.web._session import COOKIE, CSP_WEBGL, DashboardGate, session_cookie
from tunepilot.server.web._studies import StudyView, list_studies

router = APIRouter(include_in_schema=False)

PageNo = Annotated[int, Query(ge=1, le=10**6)]
Sort = Annotated[str, Query(max_length=16, pattern=r"^[a-z]*$")]
Order = Annotated[str, Query(pattern=r"^(asc|desc)$")]
Tab = Annotated[str, Query(max_length=16, pattern=r"^[a-z]*$")]

SWEEP_TABS = [("overview", "Overview"), ("runs", "Runs"), ("best", "Best parameters"),
              ("importance", "Parameter importance"), ("parallel", "Parallel coordinates"),
              ("history", "Optimization history")]
LLM_TAB = ("llm", "LLM")
EXAMPLE_CONFIG = """\
method: bayes
metric:
  name: loss
  goal: minimize
parameters:
  lr:
    min: 0.0001
    max: 0.1
    distribution: log_uniform_values
  batch_size:
    values: [16, 32, 64]
run_cap: 50
"""


def _auth_on(request: Request) -> bool:
    return bool(_digests(request))


def _digests(request: Request) -> frozenset[str]:
    ctx = request.app.state.tunepilot
    configured = ctx.settings.auth_token
    found = set(token_digests(ctx.reading().db))
    if configured:
        found.add(hash_token(configured))
    return frozenset(found)


def _problems(exc: ValidationError) -> str:
    """Each problem of ``exc`` as ``where: what``, where as the form's fields name it."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]).removeprefix("config.")
        parts.append(f"{where}: {str(error['msg']).removeprefix('Value error, ')}")
    return "; ".join(parts)


def _missing(request: Request, exc: NotFoundError) -> Response:
    return render("error.html", 404, auth=_auth_on(request), title="Not found", message=str(exc))


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/ui/sweeps", status_code=303)


@router.get("/ui")
def ui_root() -> RedirectResponse:
    return RedirectResponse("/ui/sweeps", status_code=303)


@router.get("/ui/login")
def login_form(request: Request, next: str | None = None) -> Response:
    if not _auth_on(request):
        return RedirectResponse(safe_next(next), status_code=303)
    return render("login.html", auth=False, next=safe_next(next), error=None)


@router.post("/ui/login")
def login(request: Request, form: FormDep) -> Response:
    target = safe_next(form.get("next"))
    digests = _digests(request)
    if not digests:
        return RedirectResponse(target, status_code=303)
    lockout: Lockout = request.app.state.lockout
    address = request.client.host if request.client else "unknown"
    wait = lockout.retry_after(address)
    if wait > 0:
        refused = render("login.html", 429, auth=False, next=target, error=lockout.message(wait))
        refused.headers["retry-after"] = str(math.ceil(wait))
        return refused
    token = form.get("token", "").strip()
    digest = hash_token(token) if token else ""
    if not token or not any(hmac.compare_digest(digest, d) for d in digests):
        lockout.fail(address)
        return render("login.html", 401, auth=False, next=target,
                      error="That token is not valid. Use TUNEPILOT_TOKEN or a token from "
                            "'tunepilot token create'.")
    gate: DashboardGate = request.app.state.dashboard_gate
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, gate.issue(digest), max_age=gate.max_age, path="/",
                        httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return response


@router.post("/ui/logout")
def logout(request: Request, form: FormDep) -> Response:
    gate: DashboardGate = request.app.state.dashboard_gate
    gate.revoke(session_cookie(request.scope))
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/ui/sweeps")
def sweeps_page(
    request: Request, ctx: ContextDep, page: PageNo = 1,
    q: Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00]*$")] = None,
    project: Annotated[str | None, Query(max_length=128, pattern=r"^[^\x00]*$")] = None,
    state: Annotated[str | None, Query(max_length=16)] = None,
    notice: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    state = state if state in sweeps.SWEEP_STATES else None
    with ctx.db.session() as session:
        items, at = sweeps.list_sweeps(session, query=q, project=project, state=state, page=page)
        projects = sweeps.project_names(session)
    filters = {"q": q, "project": project, "state": state}
    return render("sweeps.html", auth=_auth_on(request), items=items, page=at,
                  projects=projects, states=sweeps.SWEEP_STATES, filters=filters,
                  notice=notice, destructive=sweeps.DESTRUCTIVE, here=_here(request))


@router.get("/ui/sweeps/new")
def new_sweep_form(request: Request) -> Response:
    return render("sweep_new.html", auth=_auth_on(request), error=None,
                  form={"config": EXAMPLE_CONFIG, "project": "", "name": "", "description": "",
                        "start": "on"})


@router.post("/ui/sweeps/new")
def create_sweep(request: Request, form: FormDep, ctx: ContextDep) -> Response:
    text = form.get("config", "")
    error: str | None = None
    config: Any = None
    settings = ctx.settings
    try:
        config = load_yaml(text, source="The config", max_nodes=settings.max_yaml_nodes,
                           max_depth=settings.max_yaml_depth) if text.strip() else None
    except SpecError as exc:
        error = str(exc)
    if error is None and not isinstance(config, dict):
        error = ("The config must be a YAML mapping with at least 'method' and 'parameters' "
                 "(a W&B sweep config).")
    body: SweepCreate | None = None
    if error is None:
        assert isinstance(config, dict)
        try:
            # The API's own model: what the API refuses (values JSON cannot carry back,
            # NUL, lone surrogates, 64-bit overflows), the form refuses too.
            body = SweepCreate.model_validate({
                "config": config,
                "project": (form.get("project") or "").strip() or config.get("project")
                or "uncategorized",
                "name": (form.get("name") or "").strip() or None,
                "description": (form.get("description") or "").strip() or None,
                "start": form.get("start") == "on",
            })
        except ValidationError as exc:
            error = f"The sweep config is invalid: {_problems(exc)}"
    if body is not None:
        try:
            sweep = SweepService(ctx).create(
                body.config, project=body.project, name=body.name,
                description=body.description, start=body.start,
            )
        except (SearchSpaceError, SpecError) as exc:
            error = f"The sweep config is invalid: {exc}"
        else:
            return RedirectResponse(f"/ui/sweeps/{sweep.id}", status_code=303)
    shown = {key: form.get(key, "") for key in ("config", "project", "name", "description",
                                               "start")}
    return render("sweep_new.html", 422, auth=_auth_on(request), error=error, form=shown)


@router.post("/ui/sweeps/{sweep_id}/{action}")
def sweep_action(sweep_id: str, action: str, form: FormDep, ctx: ContextDep,
                 request: Request) -> Response:
    target = safe_next(form.get("next"), f"/ui/sweeps/{quote(sweep_id)}")
    if action not in ("start", "pause", "resume", "finish", "cancel"):
        return render("error.html", 404, auth=_auth_on(request), title="Not found",
                      message=f"no sweep action {action!r}")
    try:
        SweepService(ctx).transition(sweep_id, action)
    except NotFoundError as exc:
        return _missing(request, exc)
    except ConflictError as exc:
        joiner = "&" if "?" in target else "?"
        return RedirectResponse(f"{target}{joiner}notice={quote(str(exc))}", status_code=303)
    return RedirectResponse(target, status_code=303)


def _policy(tab: str, response: Response) -> Response:
    """The parallel-coordinates tab allows eval for Plotly's WebGL; every other page does not."""
    if tab == "parallel":
        response.headers["content-security-policy"] = CSP_WEBGL
    return response


def _here(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


@router.get("/ui/sweeps/{sweep_id}")
def sweep_page(
    sweep_id: str, request: Request, ctx: ContextDep, tab: Tab = "overview",
    sort: Sort = "trial", order: Order = "asc", page: PageNo = 1,
    notice: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    try:
        with ctx.db.session() as session:
            sweep, project = sweeps.get_sweep(session, sweep_id)
            rows, at = ([], None) if tab != "runs" else sweeps.run_page(
                session, sweep_id, sort=sort, descending=order == "desc", page=page)
        stats = sweeps.stats(ctx, sweep_id)
    except NotFoundError as exc:
        return _missing(request, exc)
    is_llm = sweep.method in ("llm", "blend")
    tabs = SWEEP_TABS + ([LLM_TAB] if is_llm else [])
    if tab not in {key for key, _ in tabs}:
        tab = "overview"
    llm = sweeps.llm_trials(ctx, sweep, page=page) if tab == "llm" else None
    return _policy(tab, render(
        "detail.html", auth=_auth_on(request), kind="sweep", title=sweep.name or sweep.id,
        ident=sweep.id, project=project, method=sweep.method, state=sweep.state,
        state_reason=sweep.state_reason, description=sweep.description,
        config=sweep.config, attrs=None, run_cap=sweep.run_cap, stats=stats, tabs=tabs, tab=tab,
        base=f"/ui/sweeps/{sweep.id}", api=f"/ui/api/sweeps/{sweep.id}", rows=rows, page=at,
        sort=sort, order=order, llm=llm, actions=sweeps.ACTIONS.get(sweep.state, ()),
        destructive=sweeps.DESTRUCTIVE, notice=notice, here=_here(request),
        sorts=list(sweeps.RUN_SORTS),
    ))


@router.get("/ui/runs/{run_id}")
def run_page(run_id: str, request: Request, ctx: ContextDep) -> Response:
    try:
        with ctx.db.session() as session:
            run = repository.get_run(session, run_id)
            sweep, _ = sweeps.get_sweep(session, run.sweep_id)
            row = sweeps.run_row(run)
            context: dict[str, Any] = {
                "params": flatten(run.config), "summary": run.summary or {},
                "reason": run.fail_reason or run.stop_reason, "n_rows": run.n_rows,
            }
            sweep_title, sweep_id = sweep.name or sweep.id, sweep.id
    except NotFoundError as exc:
        return _missing(request, exc)
    return render("run.html", auth=_auth_on(request), row=row, parent_title=sweep_title,
                  parent_href=f"/ui/sweeps/{sweep_id}", metrics_src=f"/ui/api/runs/{run_id}/metrics",
                  attrs=None, **context)


@router.get("/ui/studies")
def studies_page(request: Request, ctx: ContextDep) -> Response:
    return render("studies.html", auth=_auth_on(request), studies=list_studies(ctx))


@router.get("/ui/studies/{study_id}")
def study_page(
    study_id: int, request: Request, ctx: ContextDep, tab: Tab = "overview",
    sort: Sort = "trial", order: Order = "asc", page: PageNo = 1,
) -> Response:
    try:
        view = StudyView(ctx, study_id)
    except NotFoundError as exc:
        return _missing(request, exc)
    tabs = [(k, "Trials" if k == "runs" else v) for k, v in SWEEP_TABS]
    if view.has_llm():
        tabs.append(LLM_TAB)
    if tab not in {key for key, _ in tabs}:
        tab = "overview"
    rows, at = view.trial_page(sort=sort, descending=order == "desc", page=page) \
        if tab == "runs" else ([], None)
    stats = view.stats()
    return _policy(tab, render(
        "detail.html", auth=_auth_on(request), kind="study", title=view.name, ident=view.id,
        project=None, method=None, state=stats["state"], state_reason=None,
        description=view.user_attrs.get("description") if isinstance(
            view.user_attrs.get("description"), str) else None,
        config=None, attrs=view.user_attrs, run_cap=None, stats=stats, tabs=tabs, tab=tab,
        base=f"/ui/studies/{view.id}", api=f"/ui/api/studies/{view.id}", rows=rows, page=at,
        sort=sort, order=order, llm=view.llm(page=page) if tab == "llm" else None, actions=(),
        destructive=sweeps.DESTRUCTIVE, notice=None, here=_here(request),
        sorts=["trial", "state", "value", "started", "finished"],
    ))


@router.get("/ui/studies/{study_id}/trials/{number}")
def trial_page(study_id: int, number: int, request: Request, ctx: ContextDep) -> Response:
    try:
        view = StudyView(ctx, study_id)
        trial = view.trial(number)
    except NotFoundError as exc:
        return _missing(request, exc)
    return render(
        "run.html", auth=_auth_on(request), row=view.row(trial), parent_title=view.name,
        parent_href=f"/ui/studies/{view.id}", params=dict(trial.params),
        summary={"values": trial.values} if trial.values else {},
        reason=trial.user_attrs.get("fail_reason"), n_rows=len(trial.intermediate_values),
        metrics_src=f"/ui/api/studies/{view.id}/trials/{number}/metrics",
        attrs=trial.user_attrs,
    )

