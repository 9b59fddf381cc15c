"""``generate``: the whole synthetic town, its partner feeds, contracts, documents and truth."""

from __future__ import annotations

import json
import shutil
import time
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from rich.progress import Progress, TaskID

from nominal.synth import population as popmod
from nominal.synth.agencies import all_events
from nominal.synth.documents import DOCUMENT_CONTRACT, write_documents
from nominal.synth.events import World, blank_as_null, null_unless
from nominal.synth.feeds import FEEDS, FEEDS_BY_DATASET, FeedSpec
from nominal.synth.names import ETHNIC_GROUPS, build_pools
from nominal.synth.outcomes import draw_outcomes, enrol_programme, outcome_columns
from nominal.synth.params import SynthParams
from nominal.synth.population import COMMUNAL, HOUSEHOLD_TYPES, OPEN, ROLES
from nominal.synth.render import (
    ERROR_NAMES,
    Rendered,
    Renderer,
    delivery_name,
    for_delivery,
    plan_deliveries,
    write_delivery,
)
from nominal.synth.town import build_town, write_geography

GENERATOR_VERSION = 1
SUBFOLDERS = ("feeds", "contracts", "documents", "truth", "geography")


@dataclass
class SynthSummary:
    """What one run wrote: the town's size, records per dataset, files and time taken."""

    people: int
    households: int
    addresses: int
    output_areas: int
    wards: int
    records: dict[str, int]
    files: int
    documents: int
    seconds: float
    out: str
    seed: int
    as_of: str
    years: int
    total_records: int = 0
    outcomes: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Callback = Callable[[str, int, int], None]


class _Steps:
    """Reports progress to a Rich Progress, a callback(step, done, total), or nothing."""

    def __init__(self, progress: Progress | Callback | None):
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}
        self.totals: dict[str, int] = {}
        self.done: dict[str, int] = {}

    def start(self, step: str, total: int) -> None:
        self.totals[step] = total
        self.done[step] = 0
        if isinstance(self.progress, Progress):
            self.tasks[step] = self.progress.add_task(step, total=total)
        elif self.progress is not None:
            self.progress(step, 0, total)

    def advance(self, step: str, by: int = 1) -> None:
        self.done[step] += by
        if isinstance(self.progress, Progress):
            self.progress.advance(self.tasks[step], by)
        elif self.progress is not None:
            self.progress(step, self.done[step], self.totals[step])


def _truth_rows(spec: FeedSpec, part: Rendered, delivery: str, version: np.ndarray) -> pa.Table:
    """Rows of truth/records.parquet for one delivery: who each row really is."""
    t = part.truth
    n = len(version)
    return pa.table(
        {
            "feed": pa.array(np.full(n, spec.feed, dtype=object), pa.string()),
            "dataset": pa.array(np.full(n, spec.dataset, dtype=object), pa.string()),
            "delivery_file": pa.array(np.full(n, delivery, dtype=object), pa.string()),
            "source_record_id": pa.array(t["source_record_id"], pa.string()),
            "version": pa.array(version, pa.int8()),
            "person_id": pa.array(t["person_id"], pa.int64()),
            "household_id": pa.array(t["household_id"], pa.int64()),
            "address_id": pa.array(t["address_id"], pa.int64()),
            "recorded_address_id": pa.array(t["recorded_address_id"], pa.int64()),
            "event_no": pa.array(t["event_no"], pa.int64()),
            "event_date": _iso(t["event_date"]),
            "errors": pa.array(t["errors"], pa.int64()),
            "invalid_reason": pa.array(blank_as_null(t["invalid_reason"]), pa.string()),
        }
    )


def _iso(days: np.ndarray) -> pa.Array:
    null = (days == OPEN) | (days < -80_000)
    return pa.array(np.where(null, 0, days).astype(np.int32), mask=null).cast(pa.date32())


def generate(
    out: Path,
    people: int,
    seed: int = 42,
    as_of: date = date(2026, 10, 31),
    years: int = 6,
    progress: Progress | Callback | None = None,
    params: SynthParams | None = None,
) -> SynthSummary:
    """Write the synthetic town for ``people`` people into ``out`` (deterministic by seed)."""
    if people < 50:
        raise ValueError("--people must be at least 50")
    if not 2 <= years <= 20:
        raise ValueError("--years must be between 2 and 20")
    params = params or SynthParams()
    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for sub in SUBFOLDERS:
        if (out / sub).exists():
            shutil.rmtree(out / sub)
        (out / sub).mkdir()
    steps = _Steps(progress)

    def rng_for(name: str) -> np.random.Generator:
        # one stream per component, so changing one part leaves the others as they were
        return np.random.default_rng([seed, zlib.crc32(name.encode())])

    start_d = popmod.to_days(popmod.years_before(as_of, years))
    as_of_d = popmod.to_days(as_of)

    steps.start("Town and people", 4)
    pools = build_pools()
    pop = popmod.build_people(rng_for("people"), people, as_of, years, pools, params)
    steps.advance("Town and people")
    communal = np.isin(pop.hh_type, COMMUNAL)
    n_regular = int((~communal).sum())
    n_oa = max(4, int(np.ceil(pop.n / params.persons_per_output_area)))
    town = build_town(
        rng_for("town"), int(n_regular * (1 + params.vacancy_rate)), int(communal.sum()), n_oa
    )
    steps.advance("Town and people")
    vacant = popmod.place(pop, rng_for("place"), town.address_kind)
    popmod.set_latent(pop, rng_for("latent"), town.deprivation[town.address_oa[pop.hh_address0]])
    popmod.evolve(pop, rng_for("evolve"), vacant, start_d, as_of_d, params)
    steps.advance("Town and people")
    write_geography(town, out / "geography")
    steps.advance("Town and people")

    steps.start("Life events and outcomes", 3)
    world = World(pop, town, as_of, years, params)
    early = enrol_programme(world, rng_for("programme"))
    steps.advance("Life events and outcomes")
    outcomes = draw_outcomes(world, rng_for("outcomes"))
    steps.advance("Life events and outcomes")
    events = all_events(world, rng_for, outcomes, early)
    steps.advance("Life events and outcomes")

    steps.start("Partner feeds", len(FEEDS))
    renderer = Renderer(world)
    records: dict[str, int] = {}
    truth_writer: pq.ParquetWriter | None = None
    plans = events["cin_cp_plans"]  # the case notes are written about these families
    for spec in FEEDS:
        table = events.pop(spec.dataset)  # each dataset's events are freed once written
        rendered = renderer.render(spec, table, rng_for(f"render:{spec.dataset}"))
        parts: list[pa.Table] = []
        for plan in plan_deliveries(spec, rendered, table.end_day):
            name = delivery_name(spec, plan.year)
            part = for_delivery(spec, rendered, plan)
            write_delivery(spec, part, np.arange(len(plan.rows)), out / "feeds" / name)
            parts.append(_truth_rows(spec, part, name, plan.version))
        (out / "contracts" / f"{spec.feed}.yaml").write_text(
            yaml.safe_dump(spec.contract(), sort_keys=False, allow_unicode=True)
        )
        batch = pa.concat_tables(parts)
        if truth_writer is None:
            truth_writer = pq.ParquetWriter(out / "truth" / "records.parquet", batch.schema)
        truth_writer.write_table(batch)
        records[spec.dataset] = batch.num_rows
        steps.advance("Partner feeds")
    if truth_writer is not None:
        truth_writer.close()

    steps.start("Documents and truth", 2)
    n_docs = int(np.clip(people // 2000, 4, 30))
    doc_paths, mentions = write_documents(
        world, plans, out / "documents", n_docs, rng_for("documents")
    )
    (out / "contracts" / f"{DOCUMENT_CONTRACT['feed']}.yaml").write_text(
        yaml.safe_dump(DOCUMENT_CONTRACT, sort_keys=False, allow_unicode=True)
    )
    pq.write_table(
        pa.table(
            {
                "document": [m.document for m in mentions],
                "person_id": pa.array([m.person_id for m in mentions], pa.int64()),
                "mention_text": [m.text for m in mentions],
                "mention_kind": [m.kind for m in mentions],
            }
        ),
        out / "truth" / "document_mentions.parquet",
    )
    steps.advance("Documents and truth")
    oc = _write_truth(out / "truth", world, outcomes, params, seed, as_of, years)
    steps.advance("Documents and truth")

    summary = SynthSummary(
        people=pop.n,
        households=len(pop.hh_type),
        addresses=town.n_addresses,
        output_areas=len(town.oa_code),
        wards=len(town.ward_code),
        records=records,
        files=sum(1 for sub in SUBFOLDERS for p in (out / sub).rglob("*") if p.is_file()),
        documents=len(doc_paths),
        seconds=round(time.perf_counter() - t0, 2),
        out=str(out),
        seed=seed,
        as_of=as_of.isoformat(),
        years=years,
        total_records=int(sum(records.values())),
        outcomes=oc,
    )
    return summary


def _write_truth(
    folder: Path,
    world: World,
    outcomes: Any,
    params: SynthParams,
    seed: int,
    as_of: date,
    years: int,
) -> dict[str, dict[str, float]]:
    pop, town = world.pop, world.town
    pools = pop.pools
    assert pools is not None
    names = pools.names
    n = pop.n
    fam1 = null_unless(pop.family1 >= 0, names[np.maximum(pop.family1, 0)])
    pq.write_table(
        pa.table(
            {
                "person_id": np.arange(n),
                "given_name": names[pop.given],
                "middle_names": null_unless(pop.middle >= 0, names[np.maximum(pop.middle, 0)]),
                "family_name": names[np.where(pop.family1 >= 0, pop.family1, pop.family0)],
                "family_name_at_start": names[pop.family0],
                "birth_family_name": names[pop.birth_family],
                "family_name_after_change": fam1,
                "name_change_date": _iso(pop.name_change),
                "date_of_birth": _iso(pop.dob),
                "sex": pop.sex,
                "ethnicity_code": pop.ethnicity,
                "ethnicity": _labels(pop.ethnicity),
                "household_id_at_start": pop.household0,
                "role_at_start": np.array(ROLES, dtype=object)[pop.role],
                "twin_of": null_unless(pop.twin_of >= 0, pop.twin_of),
                "named_after_father": pop.named_after_father,
                "nhs_number": pop.nhs_number,
                "ni_number": blank_as_null(pop.ni_number),
                "police_id": pop.police_id,
                "pupil_number": blank_as_null(pop.pupil_number),
                "phone": blank_as_null(pop.phone),
                "email": blank_as_null(pop.email),
                "adversity": pop.adversity,
                "da_propensity": pop.da_propensity,
                "substance": pop.substance,
                "mental_health": pop.mental_health,
                "offending": pop.offending,
                "vulnerability": pop.vulnerability,
            }
        ),
        folder / "people.parquet",
    )
    prevented = np.zeros(len(pop.hh_type), dtype=np.int64)
    for counts in world.prevented.values():
        prevented[: len(counts)] += counts
    pq.write_table(
        pa.table(
            {
                "household_id": np.arange(len(pop.hh_type)),
                "household_type": np.array([t for t, _ in HOUSEHOLD_TYPES], dtype=object)[
                    pop.hh_type
                ],
                "first_address_id": pop.hh_address0,
                "adversity": pop.hh_adversity,
                "da_propensity": pop.hh_da,
                "programme_start": _iso(world.enrol_day),
                "events_prevented_by_programme": prevented,
            }
        ),
        folder / "households.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "address_id": np.arange(town.n_addresses),
                "address_line_1": town.address_line_1,
                "address_line_2": blank_as_null(town.address_line_2),
                "postcode": town.postcode[town.address_postcode],
                "uprn": blank_as_null(town.address_uprn),
                "address_kind": town.address_kind,
                "oa_code": town.oa_code[town.address_oa],
                "ward_code": town.ward_code[town.oa_ward[town.address_oa]],
                "imd_decile": town.imd_decile[town.address_oa],
            }
        ),
        folder / "addresses.parquet",
    )
    r = pop.residence
    pq.write_table(
        pa.table(
            {
                "person_id": r["person"],
                "address_id": r["address"],
                "household_id": r["household"],
                "from_date": _iso(r["from"]),
                "to_date": _iso(r["to"]),
            }
        ),
        folder / "residence.parquet",
    )
    rel = pop.relationships
    pq.write_table(
        pa.table(
            {
                "person_id_a": rel["person_a"],
                "person_id_b": rel["person_b"],
                "relationship": rel["relationship"],
                "from_date": _iso(np.where(rel["from"] < -80_000, OPEN, rel["from"])),
            }
        ),
        folder / "relationships.parquet",
    )
    oc = outcome_columns(outcomes)
    pq.write_table(
        pa.table(
            {
                "outcome": oc["outcome"],
                "unit_type": oc["unit_type"],
                "unit_id": oc["unit_id"],
                "window_start": _iso(oc["window_start"]),
                "window_end": _iso(oc["window_end"]),
                "probability": oc["probability"],
                "realised": oc["realised"],
            }
        ),
        folder / "outcomes.parquet",
    )
    parameters = {
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "as_of": as_of.isoformat(),
        "years": years,
        "people": n,
        "error_bits": {name: 1 << i for i, name in enumerate(ERROR_NAMES)},
        "feeds": {
            f.dataset: {"feed": f.feed, "error_scale": f.error_scale, "format": f.fmt}
            for f in FEEDS_BY_DATASET.values()
        },
        **params.to_dict(),
    }
    (folder / "parameters.json").write_text(json.dumps(parameters, indent=2, sort_keys=True))
    summary: dict[str, dict[str, float]] = {}
    for name in np.unique(oc["outcome"]):
        sel = oc["outcome"] == name
        summary[str(name)] = {
            "units": int(sel.sum()),
            "prevalence": round(float(oc["realised"][sel].mean()), 4),
            "mean_probability": round(float(oc["probability"][sel].mean()), 4),
        }
    return summary


def _labels(codes: np.ndarray) -> np.ndarray:
    lookup = {c: label for c, label, _, _ in ETHNIC_GROUPS}
    uniq, inv = np.unique(codes.astype(str), return_inverse=True)
    return np.array([lookup[u] for u in uniq], dtype=object)[inv]
