"""``nominal search``: the practitioner's search for analysts and scripts.

nominal search --given-name Jon --family-name Smtih --dob 1987 --postcode "NX1 2" \\
    --purpose safeguarding --as pc.jones [--limit 10] [--json]

The same policy decision point and audit log as the web app: the search states a
purpose, results are filtered by the agreements covering the user, and one audit
entry is written whether the search is allowed or refused.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from nominal.console import Output


def register(app: typer.Typer) -> None:
    @app.command("search")
    def search_command(
        purpose: Annotated[
            str, typer.Option("--purpose", help="Why you are searching (a purpose code).")
        ],
        as_user: Annotated[str, typer.Option("--as", help="The user searching (username).")],
        given_name: Annotated[str | None, typer.Option("--given-name")] = None,
        family_name: Annotated[str | None, typer.Option("--family-name")] = None,
        name: Annotated[
            str | None, typer.Option("--name", help='Free text, e.g. "Jon Smith".')
        ] = None,
        dob: Annotated[
            str | None, typer.Option("--dob", help="YYYY-MM-DD, DD/MM/YYYY, YYYY-MM or YYYY.")
        ] = None,
        age: Annotated[
            str | None, typer.Option("--age", help="An age (34) or range (30-40).")
        ] = None,
        sex: Annotated[str | None, typer.Option("--sex", help="M, F or X.")] = None,
        postcode: Annotated[
            str | None, typer.Option("--postcode", help="Full, sector (AB1 2) or district (AB1).")
        ] = None,
        address: Annotated[str | None, typer.Option("--address", help="Address words.")] = None,
        nhs_number: Annotated[str | None, typer.Option("--nhs-number")] = None,
        ni_number: Annotated[str | None, typer.Option("--ni-number")] = None,
        police_id: Annotated[str | None, typer.Option("--police-id")] = None,
        pupil_number: Annotated[str | None, typer.Option("--pupil-number")] = None,
        limit: Annotated[int, typer.Option("--limit", min=1, max=200)] = 10,
        json_mode: Annotated[
            bool, typer.Option("--json", help="Print the results as JSON.")
        ] = False,
    ) -> None:
        """Search golden nominals by what you know; ranked with match scores and reasons."""
        out = Output(json_mode)
        from nominal.config import home
        from nominal.db import ControlPlane
        from nominal.govern.admin import GovernError, get_user
        from nominal.govern.audit import audit_log
        from nominal.search.access import SearchDenied, decide_search, governed_search
        from nominal.search.query import QueryError, parse_query
        from nominal.search.service import IndexHolder, SearchUnavailable

        try:
            query = parse_query(
                given_name=given_name, family_name=family_name, name=name, dob=dob, age=age,
                sex=sex, postcode=postcode, address=address, nhs_number=nhs_number,
                ni_number=ni_number, police_id=police_id, pupil_number=pupil_number,
            )  # fmt: skip
        except QueryError as exc:
            out.fail(str(exc))
        if query.is_empty():
            out.fail("give something to search for: a name, date of birth, postcode or id")
        h = home().ensure()
        control = ControlPlane(h.database_url)
        try:
            with control.session() as session:
                try:
                    user = get_user(session, as_user)
                except GovernError as exc:
                    out.fail(str(exc))
                access = decide_search(session, user, purpose)
            try:
                index = IndexHolder(h).get()
            except SearchUnavailable as exc:
                out.fail(str(exc))
            try:
                with control.session() as session:
                    user = get_user(session, as_user)
                    result = governed_search(
                        index, query, access, audit_log(control, h), user, limit=limit,
                        client="cli",
                    )  # fmt: skip
            except SearchDenied as exc:
                out.fail(f"search refused: {exc}", code=3)
        finally:
            control.dispose()
        rows: list[dict[str, Any]] = [
            {"nominal_id": hit.nominal_id, "score": round(hit.score, 4), "reasons": hit.reasons}
            for hit in result.hits
        ]
        if json_mode:
            out.result(rows)
            return
        from rich.table import Table

        table = Table(title=f"{len(rows)} result(s) for {purpose} (audit #{result.audit_seq})")
        for column in ("#", "nominal", "score", "name", "born", "postcode", "reasons"):
            table.add_column(column)
        for i, hit in enumerate(result.hits, 1):
            r = hit.record
            table.add_row(
                str(i), hit.nominal_id, f"{hit.score:.3f}",
                f"{r.get('given_name') or ''} {r.get('family_name') or ''}".strip(),
                str(r.get("date_of_birth") or ""), str(r.get("postcode") or ""),
                "; ".join(hit.reasons[:4]),
            )  # fmt: skip
        out.print(table)
