"""The pipeline's stages: what each reads and writes, and the call that runs it.

Each stage is one area's public entry point (ingest, link, insight), wrapped so the
orchestrator can record what it read and wrote. Stages are listed in dependency
order; another area adds its own with :func:`register_stage` (document mentions run
after link, say) rather than by editing the orchestrator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nominal.config import Home

SILVER_TABLES = (
    "silver.identity",
    "silver.events",
    "silver.quarantine",
    "silver.deliveries",
    "silver.documents",
)
LINK_OUTPUTS = (
    "gold.nominal_records",
    "gold.nominals",
    "gold.nominal_lineage",
    "gold.households",
    "gold.household_members",
    "gold.relationships",
    "gold.events",
)
FEATURE_TABLES = ("gold.features_person", "gold.features_household", "gold.features_area")


class StageError(RuntimeError):
    """A stage could not complete; the message says what to fix."""


@dataclass
class StageContext:
    """What a stage is given: the home, the engine and a way to report progress."""

    home: Home
    engine: str
    run_id: str
    progress: Callable[[str], None] = lambda _message: None
    rich_progress: Any = None  # a Rich Progress for stages that draw their own bars


StageFn = Callable[[StageContext], dict[str, Any]]


@dataclass(frozen=True)
class Stage:
    """One step of the pipeline.

    ``requires`` are lake tables that must exist before the stage starts (checked
    first, so a missing upstream stage is reported clearly); ``inputs`` and
    ``outputs`` are recorded with their row counts in the run's history.
    """

    name: str
    description: str
    run: StageFn
    depends_on: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


def _ingest(ctx: StageContext) -> dict[str, Any]:
    """Take in what waits in the inbox; a delivery that fails fails the stage.

    The good deliveries of the same batch are committed (one snapshot) and moved to
    ``inbox/processed``; the failed ones stay in the inbox, so resuming the run after
    the partner re-sends (or someone removes the bad file) picks up only what is left.
    """
    import nominal.feeds  # noqa: F401  (registers the built-in FHIR format)
    from nominal.ingest.api import ingest_paths

    summary = ingest_paths(ctx.home, None, ctx.rich_progress)
    figures = summary.to_dict()
    # Ingest runs on the driver whatever the engine: each delivery is parsed, checked
    # against its contract and written with DuckDB (see docs/deploying-spark.md).
    figures["engine"] = "duckdb"
    failed = [d for d in summary.deliveries if d.status not in ("ingested", "duplicate")]
    figures["deliveries"] = [
        {k: d[k] for k in ("file", "feed", "status", "rows_in", "message")}
        for d in figures["deliveries"]
    ]
    if failed:
        first = failed[0]
        raise StageError(
            f"{len(failed)} deliveries failed; first: {first.file}: {first.status}: {first.message}"
        )
    return figures


def _link(ctx: StageContext) -> dict[str, Any]:
    try:
        from nominal.link.pipeline import link_lake
    except ImportError as exc:  # the link area is not installed in this build
        raise StageError(f"the link stage is not available: {exc}") from None
    return dict(link_lake(ctx.home, engine=ctx.engine, mode="incremental", progress=ctx.progress))


def _features(ctx: StageContext) -> dict[str, Any]:
    from nominal.engines.lake import Lake
    from nominal.insight import features, scoring

    if ctx.engine == "spark":
        from nominal.insight import spark

        ctx.progress("features on Spark")
        return spark.build_and_write(ctx.home)
    lake = Lake(ctx.home.lake)
    snapshot = lake.require_current()
    as_of = scoring.default_as_of(snapshot)
    ctx.progress(f"features as of {as_of}")
    rows = features.write(lake, [features.build(snapshot, as_of)])
    return {"as_of": as_of.isoformat(), "rows": rows}


def _score(ctx: StageContext) -> dict[str, Any]:
    """Score with the trained risk models, training them first if there are none.

    Training runs on the driver (DuckDB and LightGBM) whatever the engine: it reads a
    sample of as-of dates, and the fitted model is then applied on Spark's executors.
    """
    from nominal.insight import risk, scoring, training

    trained = []
    if not training.versions(ctx.home.models):
        ctx.progress("training the risk models (none trained yet)")
        results = risk.train_all(ctx.home, step=ctx.progress)
        trained = [r.name for r in results if r.model is not None]
    ctx.progress("scoring")
    try:
        if ctx.engine == "spark":
            from nominal.insight import spark

            summary = spark.score_all(ctx.home)
        else:
            summary = scoring.score_all(ctx.home)
    except training.TrainingError as exc:
        raise StageError(str(exc)) from None
    return {**summary, "trained": trained}


def _alerts(ctx: StageContext) -> dict[str, Any]:
    """Detect alerts on what this run changed; the webhook outbox is sent by the scheduler."""
    from nominal.db import ControlPlane
    from nominal.feeds.alerts import detect_alerts

    control = ControlPlane(ctx.home.database_url)
    try:
        return {"alerts": detect_alerts(ctx.home, control)}
    finally:
        control.dispose()


def _mentions(ctx: StageContext) -> dict[str, Any]:
    """Match document mentions; a hub that takes in no documents has nothing to do."""
    from nominal.engines.lake import Lake
    from nominal.mentions import find_mentions

    if not Lake(ctx.home.lake).require_current().has("silver.documents"):
        return {"documents": 0, "note": "no documents have been ingested"}
    return find_mentions(ctx.home)


def _products(ctx: StageContext) -> dict[str, Any]:
    """Pre-aggregate the demand dashboard's figures for the snapshot the run produced."""
    from nominal.products.aggregates import build

    ctx.progress("aggregating demand for the dashboard and the map")
    return build(ctx.home)


_STAGES: dict[str, Stage] = {}


def register_stage(stage: Stage) -> None:
    """Add (or replace) a stage; its dependencies must already be registered."""
    for dep in stage.depends_on:
        if dep not in _STAGES and dep != stage.name:
            raise ValueError(f"stage {stage.name!r} depends on unknown stage {dep!r}")
    _STAGES[stage.name] = stage


def stages() -> dict[str, Stage]:
    """Every registered stage, in registration (dependency) order."""
    return dict(_STAGES)


def plan(names: list[str] | None) -> list[Stage]:
    """The chosen stages (default: all) in dependency order; unknown names are an error."""
    known = stages()
    chosen = names or list(known)
    unknown = [n for n in chosen if n not in known]
    if unknown:
        raise StageError(f"unknown stage {unknown[0]!r}; stages: {', '.join(known)}")
    ordered: list[str] = []

    def visit(name: str, trail: tuple[str, ...]) -> None:
        if name in ordered or name not in chosen:
            return
        if name in trail:
            raise StageError(f"stages depend on each other in a cycle: {' -> '.join(trail)}")
        for dep in known[name].depends_on:
            visit(dep, (*trail, name))
        ordered.append(name)

    for name in known:  # registration order breaks ties
        visit(name, ())
    return [known[n] for n in ordered]


register_stage(
    Stage(
        "ingest",
        "Ingest the deliveries waiting in the inbox",
        _ingest,
        outputs=SILVER_TABLES,
    )
)
register_stage(
    Stage(
        "link",
        "Link records into golden nominals and households",
        _link,
        depends_on=("ingest",),
        requires=("silver.identity",),
        inputs=("silver.identity", "silver.events"),
        outputs=LINK_OUTPUTS,
    )
)
register_stage(
    Stage(
        "features",
        "Build point-in-time features",
        _features,
        depends_on=("link",),
        requires=("gold.events", "gold.nominals"),
        inputs=("gold.events", "gold.nominals", "gold.households", "gold.household_members"),
        outputs=FEATURE_TABLES,
    )
)
register_stage(
    Stage(
        "score",
        "Score the risk models and build cohorts",
        _score,
        depends_on=("features",),
        requires=("gold.events", "gold.nominals"),
        inputs=FEATURE_TABLES,
        outputs=("gold.scores", "gold.cohorts"),
    )
)
register_stage(
    Stage(
        "mentions",
        "Match people mentioned in documents to nominals",
        _mentions,
        depends_on=("link",),
        requires=("gold.nominals",),
        inputs=("silver.documents", "gold.nominals"),
        outputs=("gold.document_mentions",),
    )
)
register_stage(
    Stage(
        "alerts",
        "Detect alerts for partners' subscriptions",
        _alerts,
        depends_on=("link",),
        requires=("gold.events", "gold.nominal_records"),
        inputs=("gold.events", "gold.nominal_records", "gold.scores"),
    )
)
register_stage(
    Stage(
        "products",
        "Pre-aggregate demand for the dashboard and the map",
        _products,
        depends_on=("link",),
        requires=("gold.events", "gold.nominals"),
        inputs=("gold.events", "gold.nominals", "reference.output_areas"),
        outputs=(
            "gold.demand_by_month",
            "gold.demand_by_area_month",
            "gold.demand_by_area",
            "gold.demand_nominals",
            "gold.demand_households",
            "gold.demand_open",
            "gold.demand_bits",
            "gold.demand_meta",
        ),
    )
)
