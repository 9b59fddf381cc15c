"""``nominal features``, ``nominal risk`` and ``nominal cohorts``."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from nominal.config import home
from nominal.console import Output

JsonOpt = Annotated[bool, typer.Option("--json", help="Print a JSON summary.")]


def _date(out: Output, value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        out.fail(f"{option}: {value!r} is not a date in the form YYYY-MM-DD")


def _models(out: Output, names: list[str] | None) -> list[str] | None:
    from nominal.insight.specs import SPECS

    for name in names or []:
        if name not in SPECS:
            out.fail(f"--model: unknown model {name!r}; models: {', '.join(SPECS)}")
    return names or None


def register(app: typer.Typer) -> None:
    features_app = typer.Typer(
        help="Point-in-time features of people, households and areas.", no_args_is_help=True
    )
    risk_app = typer.Typer(help="Risk models: train, score, model cards.", no_args_is_help=True)
    cohorts_app = typer.Typer(help="Risk cohorts partnerships act on.", no_args_is_help=True)
    app.add_typer(features_app, name="features")
    app.add_typer(risk_app, name="risk")
    app.add_typer(cohorts_app, name="cohorts")

    @features_app.command("build")
    def features_build(
        as_of: Annotated[
            list[str], typer.Option("--as-of", help="Date (YYYY-MM-DD); repeat for several.")
        ],
        json_mode: JsonOpt = False,
    ) -> None:
        """Build gold.features_person/household/area as of the given dates."""
        from nominal.engines.lake import Lake, LakeError
        from nominal.insight import features

        out = Output(json_mode)
        dates = [d for d in (_date(out, v, "--as-of") for v in as_of) if d is not None]
        lake = Lake(home().ensure().lake)
        try:
            snapshot = lake.require_current()
            missing = [t for t in ("gold.events", "gold.nominals") if not snapshot.has(t)]
            if missing:
                out.fail(f"the lake has no {', '.join(missing)}: link the records first")
            built = []
            with out.progress() as progress:
                task = progress.add_task("Features", total=len(dates))
                for d in dates:
                    built.append(features.build(snapshot, d))
                    progress.advance(task)
            rows = features.write(lake, built)
        except LakeError as exc:
            out.fail(str(exc))
        for table, n in rows.items():
            out.print(f"  {table:<26} {n:>10,} rows")
        out.result({"ok": True, "as_of": dates, "rows": rows})

    @risk_app.command("train")
    def risk_train(
        model: Annotated[
            list[str] | None, typer.Option("--model", help="Model to train (repeat); default all.")
        ] = None,
        end: Annotated[
            str | None,
            typer.Option(
                "--end",
                help="End of the data (YYYY-MM-DD); default the day after the latest event.",
            ),
        ] = None,
        truth: Annotated[
            Path | None,
            typer.Option("--truth", help="A synthetic town's truth/ folder, for oracle metrics."),
        ] = None,
        capacity: Annotated[
            int | None, typer.Option("--capacity", help="Team capacity k (default per model).")
        ] = None,
        json_mode: JsonOpt = False,
    ) -> None:
        """Train, evaluate and save the risk models, and write their model cards."""
        from nominal.engines.lake import LakeError
        from nominal.insight import risk, training

        out = Output(json_mode)
        names = _models(out, model)
        end_date = _date(out, end, "--end")
        if truth is not None and not (truth / "outcomes.parquet").exists():
            out.fail(f"--truth: {truth} has no outcomes.parquet")
        n_models = len(names or []) or 4
        try:
            with out.progress() as progress:
                task = progress.add_task("Training", total=n_models + 1)

                def step(message: str) -> None:
                    progress.update(task, description=message)
                    if not message.startswith("features"):
                        progress.advance(task)

                results = risk.train_all(
                    home().ensure(), names, end=end_date, truth=truth, capacity=capacity, step=step
                )
                progress.update(task, completed=n_models + 1, description="Trained")
        except (LakeError, training.TrainingError) as exc:
            out.fail(str(exc))
        summaries = [r.summary() for r in results]
        for s in summaries:
            if s["trained"]:
                oracle = f", oracle {s['oracle_roc_auc']:.3f}" if s.get("oracle_roc_auc") else ""
                out.print(
                    f"{s['model']:<20} ROC AUC {s['roc_auc']:.3f} (logistic "
                    f"{s['logistic_roc_auc']:.3f}, count rule {s['count_rule_roc_auc']:.3f}{oracle}), "
                    f"Brier {s['brier']:.4f}, precision@{s['k']} {s['precision_at_k']:.3f}"
                )
            else:
                out.print(f"{s['model']:<20} not trained: {s['error']}")
        out.result({"ok": any(s["trained"] for s in summaries), "models": summaries})

    @risk_app.command("score")
    def risk_score(
        as_of: Annotated[
            str | None,
            typer.Option("--as-of", help="Score as of (default: after the latest event)."),
        ] = None,
        model: Annotated[list[str] | None, typer.Option("--model", help="Model (repeat).")] = None,
        engine: Annotated[
            str, typer.Option("--engine", help="duckdb (default) or spark (pyspark).")
        ] = "duckdb",
        json_mode: JsonOpt = False,
    ) -> None:
        """Score the trained models into gold.scores and build gold.cohorts."""
        from nominal.engines.lake import LakeError
        from nominal.insight import scoring, training

        out = Output(json_mode)
        names = _models(out, model)
        when = _date(out, as_of, "--as-of")
        if engine not in ("duckdb", "spark"):
            out.fail(f"unknown engine {engine!r}: use duckdb or spark")
        try:
            with out.progress() as progress:
                task = progress.add_task("Scoring", total=1)
                if engine == "spark":
                    from nominal.insight import spark

                    result = spark.score_all(home().ensure(), when, names)
                else:
                    result = scoring.score_all(home().ensure(), when, names)
                progress.advance(task)
        except (LakeError, training.TrainingError) as exc:
            out.fail(str(exc))
        out.print(f"Scored {result['scores']:,} units as of {result['as_of']}.")
        for name, info in result["models"].items():
            d = info["drift"]
            out.print(
                f"  {name:<20} {info['units']:>7,} units, drift PSI {d['psi']:.3f} ({d['status']}), "
                f"mean score {d['current_mean']:.4f} (validation {d['validation_mean']:.4f})"
            )
        for name, size in result["cohorts"].items():
            out.print(f"  cohort {name:<28} {size:>6,}")
        out.result({"ok": True, **result})

    @risk_app.command("card")
    def risk_card(model: str, json_mode: JsonOpt = False) -> None:
        """Show where a model's card is, with its headline metrics."""
        from nominal.insight import cards

        out = Output(json_mode)
        h = home().ensure()
        try:
            card = cards.read_card(h.reports, model)
        except FileNotFoundError as exc:
            out.fail(str(exc))
        json_path, html_path = cards.card_paths(h.reports, card["model"], card["version"])
        lg = card["metrics"]["lightgbm"]
        out.print(f"{card['title']} ({card['version']})")
        out.print(f"  HTML {html_path}\n  JSON {json_path}")
        out.print(
            f"  ROC AUC {lg['roc_auc']:.3f}, PR AUC {lg['pr_auc']:.3f}, Brier {lg['brier']:.4f}, "
            f"ECE {lg['ece']:.4f}, precision@{card['k']} {lg['precision_at_k']:.3f}"
        )
        out.print(f"  {card['verdict']}")
        out.result(
            {
                "model": card["model"],
                "version": card["version"],
                "html": html_path,
                "json": json_path,
                "metrics": card["metrics"],
                "largest_recall_gap": card["fairness"]["largest_recall_gap"],
            }
        )

    @risk_app.command("models")
    def risk_models(json_mode: JsonOpt = False) -> None:
        """List every trained model version with its metrics."""
        from nominal.insight import training

        out = Output(json_mode)
        rows = training.versions(home().ensure().models)
        for r in rows:
            mark = "*" if r["latest"] else " "
            out.print(
                f"{mark} {r['model']:<20} {r['version']}  ROC AUC {r['roc_auc']:.3f}  "
                f"Brier {r['brier']:.4f}"
            )
        out.result({"models": rows})

    # the short forms the rest of the hub uses: `nominal models`, `nominal score`
    app.command("models", help="List every trained risk model version with its metrics.")(
        risk_models
    )
    app.command("score", help="Score the trained risk models and build the cohorts.")(risk_score)

    @risk_app.command("oracle")
    def risk_oracle(synth_dir: Path, json_mode: JsonOpt = False) -> None:
        """Write gold tables from a synthetic town's truth (perfect linkage), for comparison."""
        from nominal.insight.oracle import gold_from_truth

        out = Output(json_mode)
        if not (synth_dir / "truth" / "records.parquet").exists():
            out.fail(f"{synth_dir} is not a folder written by `nominal synth` (no truth/)")
        with out.progress() as progress:
            task = progress.add_task("Oracle gold", total=1)
            rows = gold_from_truth(synth_dir, home().ensure())
            progress.advance(task)
        for table, n in rows.items():
            out.print(f"  {table:<26} {n:>10,} rows")
        out.result({"ok": True, "rows": rows})

    def _cohorts(out: Output) -> Any:
        from nominal.engines.duck import connect
        from nominal.engines.lake import Lake

        snapshot = Lake(home().ensure().lake).current()
        if snapshot is None or not snapshot.has("gold.cohorts"):
            out.fail("no cohorts yet: run `nominal risk score`")
        return connect(snapshot, tables=["gold.cohorts"])

    @cohorts_app.command("list")
    def cohorts_list(json_mode: JsonOpt = False) -> None:
        """Each cohort with its size, capacity and rule."""
        out = Output(json_mode)
        con = _cohorts(out)
        rows = con.sql(
            "SELECT cohort, any_value(title) AS title, any_value(model) AS model, "
            "any_value(as_of) AS as_of, count(*) AS size, any_value(capacity) AS capacity, "
            "any_value(rule) AS rule FROM gold.cohorts GROUP BY cohort ORDER BY cohort"
        ).df()
        items = json.loads(rows.to_json(orient="records", date_format="iso"))
        for r in items:
            out.print(
                f"{r['cohort']:<28} {r['size']:>6} of capacity {r['capacity']:<5} {r['title']}"
            )
        out.result({"cohorts": items})

    @cohorts_app.command("show")
    def cohorts_show(
        cohort: str,
        purpose: Annotated[
            str, typer.Option("--purpose", help="Why you need the list (a purpose code).")
        ],
        as_user: Annotated[str, typer.Option("--as", help="The user reading it (username).")],
        limit: Annotated[int, typer.Option("--limit", min=1, help="Rows to show.")] = 20,
        json_mode: JsonOpt = False,
    ) -> None:
        """The members of a cohort (pseudonyms only), with their reasons.

        Like the web cohort view: the read states a purpose, passes the policy decision
        point for the model's outcome dataset and is audited (allowed or denied) with the
        units it showed.
        """
        from nominal.db import ControlPlane
        from nominal.govern.admin import GovernError, get_purpose, get_user
        from nominal.govern.audit import audit_log
        from nominal.govern.policy import decide
        from nominal.insight.specs import SPECS

        out = Output(json_mode)
        con = _cohorts(out)
        frame = con.execute(
            "SELECT rank, unit_type, unit_id, unit_pseudo, oa_code, score, reasons, title, rule, "
            "size, capacity, model FROM gold.cohorts WHERE cohort = ? ORDER BY rank",
            [cohort],
        ).df()
        if frame.empty:
            known = [
                r[0] for r in con.execute("SELECT DISTINCT cohort FROM gold.cohorts").fetchall()
            ]
            out.fail(f"no cohort {cohort!r}; cohorts: {', '.join(sorted(known)) or 'none'}")
        spec = SPECS.get(str(frame["model"][0]))
        if spec is None:
            out.fail(f"cohort {cohort!r} has no known model")
        shown = frame.head(limit)
        h = home().ensure()
        control = ControlPlane(h.database_url)
        log = audit_log(control, h)
        asked = f"nominal cohorts show {cohort} --purpose {purpose} --limit {limit}"
        try:
            with control.session() as session:
                try:
                    user = get_user(session, as_user)
                    get_purpose(session, purpose)
                except GovernError as exc:
                    out.fail(str(exc))
                decision = decide(session, user, purpose, spec.dataset)
            info: dict[str, Any] = {
                "cohort": cohort,
                "asked": asked,
                "withheld": list(decision.withheld_fields),
                "agreements": list(decision.agreement_refs),
                "reasons": list(decision.reasons),
            }
            # the audit log writes in its own transaction, after the decision's session
            with control.session() as session:
                user = get_user(session, as_user)
                if not decision.allowed:
                    log.record(
                        "read", "denied", user=user, purpose=purpose, dataset=spec.dataset,
                        client="cli", detail=info,
                    )  # fmt: skip
                else:
                    entry = log.record(
                        "read", "allowed", user=user, purpose=purpose, dataset=spec.dataset,
                        client="cli",
                        nominal_ids=[
                            str(u) for u in shown.loc[shown.unit_type == "person", "unit_id"]
                        ],
                        detail={
                            **info,
                            "members": len(shown),
                            "cohort_size": len(frame),
                            "households": [
                                str(u)
                                for u in shown.loc[shown.unit_type == "household", "unit_pseudo"]
                            ],
                        },
                    )  # fmt: skip
        finally:
            control.dispose()
        if not decision.allowed:
            out.fail(f"access denied: {'; '.join(decision.reasons) or 'no agreement'}", code=3)
        audit_seq = entry.seq
        out.print(f"{frame['title'][0]}: {len(frame)} (capacity {frame['capacity'][0]})")
        out.print(f"Rule: {frame['rule'][0]}")
        out.print(f"Read for {purpose} by {as_user} (audit #{audit_seq})")
        members = []
        for r in shown.itertuples():
            reasons = json.loads(r.reasons) if r.reasons else []
            words = (
                "; ".join(x["text"] for x in reasons)
                if isinstance(reasons, list)
                else ", ".join(f"{k} {v}" for k, v in reasons.items())
            )
            out.print(f"  {r.rank:>4}  {r.unit_pseudo}  {r.score:.3f}  {words}")
            members.append(
                {"rank": int(r.rank), "unit_type": r.unit_type, "unit_pseudo": r.unit_pseudo,
                 "oa_code": r.oa_code, "score": float(r.score), "reasons": reasons}
            )  # fmt: skip
        out.result(
            {
                "cohort": cohort,
                "title": frame["title"][0],
                "rule": frame["rule"][0],
                "size": len(frame),
                "capacity": int(frame["capacity"][0]),
                "purpose": purpose,
                "audit_seq": audit_seq,
                "members": members,
            }
        )
