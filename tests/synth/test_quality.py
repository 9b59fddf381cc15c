"""Recording-error rates, deliberately invalid values, outcomes, documents and geography."""

from __future__ import annotations

import json
import math
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
from synth_reading import read_delivery

from nominal.contracts import load_contracts
from nominal.synth import SynthSummary
from nominal.synth.params import RecordingErrors
from nominal.synth.population import nhs_check_digit
from nominal.synth.render import BIT


def _within(observed: int, n: int, p: float) -> bool:
    """Binomial count within 5 standard deviations (plus one) of its expectation."""
    return abs(observed - n * p) <= 5 * math.sqrt(n * p * (1 - p)) + 1


def test_unconditional_error_rates_match_the_configured_rates(
    town: tuple[Path, SynthSummary],
) -> None:
    out, _ = town
    params = json.loads((out / "truth" / "parameters.json").read_text())
    records = pq.read_table(out / "truth" / "records.parquet").to_pandas()
    records = records[records.version == 1]  # re-sent rows repeat the first version's errors
    rates = RecordingErrors()
    # errors drawn on every row (the others are conditional on something to get wrong)
    for name in ("typo", "name_order_swapped", "dob_missing", "sex_missing",
                 "postcode_missing", "required_missing"):  # fmt: skip
        expected_total = 0.0
        observed = 0
        n_total = 0
        for dataset, rows in records.groupby("dataset"):
            scale = params["feeds"][dataset]["error_scale"]
            p = getattr(rates, name) * scale
            flagged = int(((rows["errors"] & BIT[name]) > 0).sum())
            if name in ("sex_missing",):
                continue  # only feeds with a sex column record it
            assert _within(flagged, len(rows), p), (name, dataset, flagged, len(rows), p)
            expected_total += p * len(rows)
            observed += flagged
            n_total += len(rows)
        assert observed > 0 or expected_total < 1, name


def test_invalid_values_are_really_invalid(town: tuple[Path, SynthSummary]) -> None:
    out, _ = town
    contracts = {c.feed: c for c in load_contracts(out / "contracts")}
    records = pq.read_table(out / "truth" / "records.parquet").to_pandas()
    invalid = records[records.invalid_reason.notna()]
    assert set(invalid.invalid_reason) >= {"nhs_number_invalid", "postcode_invalid",
                                           "required_missing", "date_invalid"}  # fmt: skip
    checked = 0
    for feed in ("kht-ae", "kcc-csc-referrals", "npol-incidents"):
        c = contracts[feed]
        rows = {}
        for path in sorted((out / "feeds").iterdir()):
            if c.matches(path.name):
                for r in read_delivery(path, c):
                    rows[str(r[c.fields["record_id"].source])] = r
        for rec in records[records.feed == feed].itertuples():
            row = rows[rec.source_record_id]
            nhs = row.get(c.fields["nhs_number"].source) if "nhs_number" in c.fields else None
            if nhs:
                digits = np.array([int(nhs[:9])])
                ok = int(nhs_check_digit(digits)[0]) == int(nhs[9])
                assert ok != (rec.errors & BIT["nhs_number_invalid"] > 0)
            if rec.invalid_reason == "required_missing":
                assert not row[c.fields["event_date"].source]
                checked += 1
            if rec.invalid_reason == "postcode_invalid":
                assert " " not in row[c.fields["postcode"].source]
                checked += 1
    assert checked > 0


def test_outcome_prevalence_agrees_with_true_probabilities(
    town: tuple[Path, SynthSummary],
) -> None:
    out, _ = town
    oc = pq.read_table(out / "truth" / "outcomes.parquet").to_pandas()
    assert set(oc.outcome) == {"da_high_risk", "child_exploitation", "not_school_ready",
                               "cin_cp_escalation"}  # fmt: skip
    for name, g in oc.groupby("outcome"):
        p = g.probability.to_numpy()
        assert ((p > 0) & (p < 1)).all()
        mean, sd = p.sum(), math.sqrt((p * (1 - p)).sum())
        assert abs(g.realised.sum() - mean) <= 6 * sd + 1, name
        # the probabilities are informative: realised units had higher probabilities
        assert g.probability[g.realised == 1].mean() > g.probability[g.realised == 0].mean()


def test_realised_outcomes_appear_in_the_feeds(town: tuple[Path, SynthSummary]) -> None:
    out, _ = town
    con = duckdb.connect()
    t = f"'{out}/truth"
    realised = dict(con.execute(
        f"SELECT outcome, sum(realised)::INT FROM read_parquet({t}/outcomes.parquet') GROUP BY 1"
    ).fetchall())  # fmt: skip
    contracts = {c.dataset: c for c in load_contracts(out / "contracts")}

    def rows(dataset: str) -> list[dict[str, object]]:
        c = contracts[dataset]
        got = []
        for path in sorted((out / "feeds").iterdir()):
            if c.matches(path.name):
                got += read_delivery(path, c)
        return got

    c = contracts["domestic_abuse"]
    high_victims = [r for r in rows("domestic_abuse")
                    if r[c.fields["dash_risk"].source] == "high"
                    and r[c.fields["role"].source] == "victim"]  # fmt: skip
    assert len(high_victims) == realised["da_high_risk"]
    c = contracts["early_years"]
    not_ready = [
        r for r in rows("early_years") if r[c.fields["good_level_of_development"].source] == "N"
    ]
    assert len(not_ready) == realised["not_school_ready"]
    c = contracts["csc_referrals"]
    exploitation = [r for r in rows("csc_referrals")
                    if "exploitation" in str(r[c.fields["referral_reason"].source])
                    and r[c.fields["relationship"].source] == "child"]  # fmt: skip
    assert len(exploitation) == realised["child_exploitation"]
    c = contracts["cin_cp_plans"]
    plans = {r[c.fields["event_id"].source] for r in rows("cin_cp_plans")}
    assert len(plans) == realised["cin_cp_escalation"]


def test_involvement_periods_overlap_across_agencies(town: tuple[Path, SynthSummary]) -> None:
    """Case-type feeds carry open/closed periods, and some households are open to two
    agencies at once (the duplicate interventions a hub should show)."""
    from datetime import date, datetime

    out, _ = town
    periods: list[tuple[str, str, date, date | None]] = []
    for c in load_contracts(out / "contracts"):
        if not ("event_end_date" in c.fields and "event_status" in c.fields):
            continue
        f = c.fields
        for path in sorted((out / "feeds").iterdir()):
            if not c.matches(path.name):
                continue
            for row in read_delivery(path, c):
                start, end = row[f["event_date"].source], row[f["event_end_date"].source]
                status = row[f["event_status"].source]
                if isinstance(start, str):
                    try:
                        start = datetime.strptime(start, c.format.date_format).date()
                    except ValueError:
                        continue  # deliberately invalid rows (blank or impossible dates)
                    end = datetime.strptime(end, c.format.date_format).date() if end else None
                if start is None:
                    continue
                assert (end is None) == (status == "open")
                # a later delivery's version of the same record replaces an earlier one
                periods.append((c.dataset, str(row[f["record_id"].source]), start, end))
    assert len({p[0] for p in periods}) >= 6
    con = duckdb.connect()
    con.execute("CREATE TABLE p (dataset VARCHAR, rid VARCHAR, s DATE, e DATE)")
    con.executemany("INSERT INTO p VALUES (?, ?, ?, ?)", periods)
    con.execute(
        f"""CREATE TABLE latest AS
            SELECT dataset, rid, arg_min(s, e IS NULL) s, min(e) e FROM p GROUP BY ALL;
            CREATE TABLE hh AS SELECT l.*, r.household_id
            FROM latest l JOIN read_parquet('{out}/truth/records.parquet') r
              ON r.dataset = l.dataset AND r.source_record_id = l.rid AND r.version = 1"""
    )
    concurrent = con.execute(
        """SELECT count(*) FROM hh a JOIN hh b
             ON a.household_id = b.household_id AND a.dataset < b.dataset
            AND a.s < coalesce(b.e, DATE '9999-12-31') AND b.s < coalesce(a.e, DATE '9999-12-31')"""
    ).fetchone()
    assert concurrent is not None and concurrent[0] > 0


def test_documents_are_readable_and_mentions_are_in_them(town: tuple[Path, SynthSummary]) -> None:
    from docx import Document
    from pypdf import PdfReader

    out, summary = town
    mentions = pq.read_table(out / "truth" / "document_mentions.parquet").to_pandas()
    docs = sorted((out / "documents").iterdir())
    assert len(docs) == summary.documents >= 4
    assert {p.suffix for p in docs} == {".pdf", ".docx"}
    for path in docs:
        if path.suffix == ".pdf":
            text = "\n".join(page.extract_text() for page in PdfReader(path).pages)
        else:
            text = "\n".join(p.text for p in Document(str(path)).paragraphs)
        flat = " ".join(text.split())
        mine = mentions[mentions.document == path.name]
        assert len(mine) >= 3
        for m in mine.itertuples():
            if m.mention_kind == "nhs_number":
                assert (
                    " ".join([m.mention_text[:3], m.mention_text[3:6], m.mention_text[6:]]) in flat
                )
            else:
                assert " ".join(m.mention_text.split()) in flat, (path.name, m.mention_text)


def test_geography_files(town: tuple[Path, SynthSummary]) -> None:
    import csv

    out, summary = town
    geo = out / "geography"
    oas = json.loads((geo / "output_areas.geojson").read_text())
    assert oas["type"] == "FeatureCollection"
    assert len(oas["features"]) == summary.output_areas
    for f in oas["features"]:
        ring = f["geometry"]["coordinates"][0]
        assert f["geometry"]["type"] == "Polygon" and ring[0] == ring[-1] and len(ring) == 5
        assert f["properties"]["OA21CD"].startswith("E00")
        lon, lat = ring[0]
        assert 49 < lat < 61 and -8 < lon < 2
    wards = json.loads((geo / "wards.geojson").read_text())
    assert len(wards["features"]) == summary.wards >= 2
    with open(geo / "postcodes.csv", newline="") as handle:
        postcodes = list(csv.DictReader(handle))
    assert {"pcds", "oa21cd", "osward", "lat", "long"} <= set(postcodes[0])
    known = {p["pcds"] for p in postcodes}
    addresses = pq.read_table(out / "truth" / "addresses.parquet").to_pandas()
    assert set(addresses.postcode) <= known
    assert all(p.startswith("NX") for p in known)
    with open(geo / "deprivation.csv", newline="") as handle:
        dep = list(csv.DictReader(handle))
    assert len(dep) == summary.output_areas
    assert {int(d["imd_decile"]) for d in dep} == set(range(1, 11)) or summary.output_areas < 10


def test_deprivation_drives_risk(town: tuple[Path, SynthSummary]) -> None:
    """Households in the most deprived areas carry more latent adversity and more events."""
    out, _ = town
    con = duckdb.connect()
    t = f"{out}/truth"
    rows = con.execute(
        f"""SELECT a.imd_decile <= 3 AS deprived, avg(h.adversity)
            FROM read_parquet('{t}/households.parquet') h
            JOIN read_parquet('{t}/addresses.parquet') a ON a.address_id = h.first_address_id
            GROUP BY 1"""
    ).fetchall()
    by = dict(rows)
    assert by[True] > by[False] + 0.2


def test_ethnicity_is_coded_in_each_agencys_scheme(town: tuple[Path, SynthSummary]) -> None:
    from nominal.synth.names import NHS_ETHNIC_CATEGORY

    out, _ = town
    contract = next(c for c in load_contracts(out / "contracts") if c.feed == "kht-ae")
    assert contract.is_personal("ethnicity")
    source = contract.fields["ethnicity"].source
    people = pq.read_table(out / "truth" / "people.parquet").to_pandas().set_index("person_id")
    records = pq.read_table(out / "truth" / "records.parquet").to_pandas()
    truth = records[records.feed == "kht-ae"].set_index("source_record_id").person_id
    agree = stated = 0
    for path in sorted((out / "feeds").glob("kht_ae_attendances_*.csv")):
        for row in read_delivery(path, contract):
            code = row[source]
            assert code in contract.fields["ethnicity"].values
            if code != "Z":
                stated += 1
                person = truth[row[contract.fields["record_id"].source]]
                agree += NHS_ETHNIC_CATEGORY[people.ethnicity_code[person]] == code
    assert stated > 0 and agree == stated


def test_conditional_error_rates(town: tuple[Path, SynthSummary]) -> None:
    """Errors that need something to get wrong, measured among the rows that have it."""
    from nominal.synth.names import NICKNAMES, has_diacritics

    out, _ = town
    params = json.loads((out / "truth" / "parameters.json").read_text())
    rates = RecordingErrors()
    records = pq.read_table(out / "truth" / "records.parquet").to_pandas()
    records = records[records.version == 1]
    people = pq.read_table(out / "truth" / "people.parquet").to_pandas().set_index("person_id")
    given = people.given_name.reindex(records.person_id).to_numpy()
    family = people.family_name.reindex(records.person_id).to_numpy()
    scale = records.dataset.map(lambda d: params["feeds"][d]["error_scale"]).to_numpy()
    has_nick = np.isin(given, list(NICKNAMES))
    nick = (records.errors.to_numpy() & BIT["nickname"]) > 0
    expected = (rates.nickname * scale[has_nick]).sum()
    sd = math.sqrt(expected)
    assert not nick[~has_nick].any()
    assert abs(nick[has_nick].sum() - expected) <= 5 * sd + 1
    before = people.family_name_at_start.reindex(records.person_id).to_numpy()
    accents = np.array(
        [any(has_diacritics(x) for x in names) for names in zip(given, family, before)]
    )
    dropped = (records.errors.to_numpy() & BIT["diacritics_dropped"]) > 0
    assert not dropped[~accents].any()
    # the family name may differ from today's after a change, so allow a little slack
    assert _within(int(dropped[accents].sum()), int(accents.sum()), rates.diacritics_dropped) or (
        abs(dropped[accents].mean() - rates.diacritics_dropped) < 0.1
    )
