"""`/api/v1/...`: every analysis as JSON, the same documents as the CLI's `--json`.

Authentication: `Authorization: Bearer <read key>`. A missing or unknown key gets 401, a write key 403;
a request only ever sees the rows of its key's project (the query's project is the key's, always).
Parameters mirror the CLI options: `from`, `to` (days), `tz`, `unit`, `breakdown`, and per analysis
`by`, `goal`, `steps`, `window`, `mode`, `macro`, `from_goal`, `to_goal`.
"""


from collections.abc import Callable
from dataclasses import replace
from datetime import date
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException
from fastapi import Query as Param
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from keystep.analysis.conversions import run_conversions
from keystep.analysis.experiments import run_experiment
from keystep.analysis.funnels import run_funnel
from keystep.analysis.micro_macro import run_micro_macro
from keystep.analysis.suggest import compute_suggestions
from keystep.analysis.time_to_convert import run_time_to_convert
from keystep.backends.base import Backend
from keystep.collector import keys
from keystep.conversions.definitions import (
    Definitions,
    DefinitionsError,
    FunnelMode,
    Unit,
    adhoc_funnel,
    parse_duration,
)
from keystep.conversions.editing import add_entry
from keystep.experiments.definitions import Method, experiment_spec
from keystep.query import Granularity, Query
from keystep.serialize import to_data

Reader = Callable[[], Backend]


class NewExperiment(BaseModel):
    """An experiment to add to the definitions file (the same fields as `keystep experiment create`)."""

    key: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
    variants: list[str] = Field(min_length=2)
    primary: str
    secondary: list[str] = Field(default_factory=list)
    guardrails: list[str] = Field(default_factory=list)
    weights: list[float] = Field(default_factory=list)
    window: str | None = None
    method: Method = Method.SEQUENTIAL
    label: str | None = None


Editor = Callable[[Callable[[Any], None]], Definitions]


def add_query_routes(app: FastAPI, backend: Reader, definitions: Callable[[], Definitions],
                     edit: Editor | None = None) -> None:
    def project(authorization: Annotated[str | None, Header()] = None) -> str:
        secret = authorization[7:].strip() if authorization and authorization.lower().startswith("bearer ") else None
        if not secret:
            raise HTTPException(401, "send a read key: Authorization: Bearer ks_r_...")
        if keys.key_kind(secret) is keys.KeyKind.WRITE:
            raise HTTPException(403, "a write key can only send events; use a read key")
        found = keys.find_project(backend(), secret, keys.KeyKind.READ)
        if found is None:
            raise HTTPException(401, "unknown or revoked read key")
        return found

    Project = Annotated[str, Depends(project)]

    def query(
        project: Project,
        start: Annotated[date | None, Param(alias="from")] = None,
        end: Annotated[date | None, Param(alias="to")] = None,
        tz: str | None = None,
        unit: Unit | None = None,
        breakdown: str | None = None,
    ) -> Query:
        defs = definitions()
        try:
            return Query(project=project, start=start, end=end, timezone=tz or defs.timezone,
                         unit=unit or Unit.SESSION, breakdown=breakdown, session_timeout=defs.session_timeout)
        except (ValueError, KeyError) as exc:
            raise HTTPException(422, str(exc)) from None

    Q = Annotated[Query, Depends(query)]

    async def answer(run: Callable[[], Any]) -> Any:
        try:
            return to_data(await run_in_threadpool(run))
        except KeyError as exc:
            raise HTTPException(404, str(exc.args[0]) if exc.args else str(exc)) from None
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None

    @app.get("/api/v1/experiments/{key}", tags=["query"])
    async def experiment(q: Q, key: str, method: Method | None = None) -> Any:
        """An experiment's analysis: SRM check, per metric and variant the effect (`keystep experiment analyze`)."""
        defs = definitions()
        return await answer(lambda: run_experiment(backend(), defs, key, q.with_(unit=defs.experiment(key).unit),
                                                   method=method))

    @app.get("/api/v1/experiments", tags=["query"])
    async def experiments(project: Project) -> Any:
        """The experiments of the definitions file."""
        return to_data([{"experiment": e.key, "label": e.title, "variants": e.variants, "weights": e.weights,
                         "unit": e.unit, "method": e.method,
                         "metrics": [{"metric": m.name, "role": m.role} for m in e.metrics]}
                        for e in definitions().experiments])

    @app.post("/api/v1/experiments", tags=["query"], status_code=201)
    async def create_experiment(project: Project, body: NewExperiment) -> Any:
        """Add an experiment to the definitions file; it is checked with the same errors as the file itself
        (422, naming the line and field) and nothing is written unless it passes."""
        if edit is None:
            raise HTTPException(409, "the server runs without a definitions file (start it with --config)")
        spec = experiment_spec(body.variants, body.primary, secondary=body.secondary, guardrails=body.guardrails,
                               weights=[str(w) for w in body.weights], window=body.window, method=body.method,
                               label=body.label)
        try:
            await run_in_threadpool(edit, add_entry("experiments", body.key, spec))
        except (DefinitionsError, ValueError) as exc:
            raise HTTPException(422, str(exc)) from None
        return {"experiment": body.key, "definition": spec}

    @app.get("/api/v1/conversions", tags=["query"])
    async def conversions(q: Q, by: Granularity | None = None, goal: Annotated[list[str] | None, Param()] = None
                          ) -> Any:
        """Every goal's rate with its Wilson interval, by macro type and micro category (`keystep conversions`)."""
        return await answer(lambda: run_conversions(backend(), definitions(), q.with_(granularity=by), goals=goal))

    @app.get("/api/v1/segments", tags=["query"])
    async def segments(q: Q, goal: Annotated[list[str] | None, Param()] = None) -> Any:
        """Conversions per segment of `breakdown` (required), with the segments that differ flagged."""
        if q.breakdown is None:
            raise HTTPException(422, "give a breakdown, e.g. ?breakdown=device_type")
        return await answer(lambda: run_conversions(backend(), definitions(), q, goals=goal))

    @app.get("/api/v1/funnels/{name}", tags=["query"])
    async def funnel(q: Q, name: str, window: str | None = None, mode: FunnelMode | None = None) -> Any:
        """A funnel of the definitions file (`keystep funnel NAME`)."""
        def run() -> Any:
            chosen = definitions().funnel(name)
            chosen = replace(chosen, window=parse_duration(window) if window else chosen.window,
                             mode=mode or chosen.mode, unit=q.unit if q.unit is not Unit.SESSION else chosen.unit)
            return run_funnel(backend(), chosen, q)
        return await answer(run)

    @app.get("/api/v1/funnel", tags=["query"])
    async def adhoc(q: Q, steps: str, window: str = "1d", mode: FunnelMode = FunnelMode.ORDERED) -> Any:
        """A funnel from `steps=a,b,c` (goal or event names), `window` and `mode`."""
        names = [s.strip() for s in steps.split(",") if s.strip()]
        return await answer(lambda: run_funnel(
            backend(), adhoc_funnel(definitions(), names, parse_duration(window), mode, q.unit), q))

    @app.get("/api/v1/time-to-convert", tags=["query"])
    async def time_to_convert(q: Q, from_goal: str | None = None, to_goal: str | None = None) -> Any:
        """First micro to first macro conversion, Kaplan–Meier (`keystep time-to-convert`)."""
        return await answer(lambda: run_time_to_convert(backend(), definitions(), q, from_goal=from_goal,
                                                        to_goal=to_goal))

    @app.get("/api/v1/micro-macro", tags=["query"])
    async def micro_macro(q: Q, macro: str | None = None) -> Any:
        """Each micro goal against a macro goal (`keystep micro-macro`)."""
        return await answer(lambda: run_micro_macro(backend(), definitions(), q, macro=macro))

    @app.get("/api/v1/suggest", tags=["query"])
    async def suggest(q: Q, macro: str | None = None) -> Any:
        """The micro goals most worth tracking (`keystep suggest`)."""
        return await answer(lambda: compute_suggestions(run_micro_macro(backend(), definitions(), q, macro=macro)))
