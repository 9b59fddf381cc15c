"""The access-control matrix of the policy decision point, on SQLite and PostgreSQL.

Every combination of recipient partner × role × training state × purpose × dataset ×
agreement state × data-owner suspension is decided by ``policy.decide`` against a real
control plane, and compared with an expectation written here directly from the rules
of the information sharing agreement (never by calling ``decide``):

* allowed only for KCC practitioners, analysts and data owners (the recipients), who
  are nominated and in-date trained, for the two purposes the agreement lists, while
  the agreement (and its tier-1 parent) is live and in date, both partners' onboarding
  is complete, and the dataset is not suspended;
* crimes: only the listed fields are visible, the rest are withheld; incidents: all;
* analysts, and anyone working for research, never see identifying fields.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime

import pyarrow as pa
import sqlalchemy as sa

from nominal.db import ControlPlane
from nominal.govern import admin
from nominal.govern.models import Dataset, DatasetSuspension, User
from nominal.govern.policy import decide

AT = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

CRIMES_FIELDS = [
    "record_id",
    "given_name",
    "family_name",
    "date_of_birth",
    "event_date",
    "event_type",
    "offence",
    "dash_risk",
]
CRIMES_SHARED = {"record_id", "given_name", "family_name", "event_date", "event_type", "offence"}
INCIDENTS_FIELDS = ["record_id", "given_name", "postcode", "event_date", "event_type", "notes"]
IDENTIFYING = {
    "crimes": {"record_id", "given_name", "family_name", "date_of_birth"},
    # ``notes`` is marked personal in the incidents contract.
    "incidents": {"record_id", "given_name", "postcode", "notes"},
}
FIELDS = {"crimes": CRIMES_FIELDS, "incidents": INCIDENTS_FIELDS}

PARTNERS = ("KCC", "OTHER")
ROLES = ("practitioner", "analyst", "data_owner", "ig_lead", "admin")
TRAINING = ("ok", "expired", "not_nominated", "untrained")
PURPOSES = ("safeguarding", "research", "fire_prevention")
DATASETS = ("crimes", "incidents")
STATES = (
    "live",
    "expired",
    "not_started",
    "suspended",
    "draft",
    "ended",
    "tier1_ended",
    "onboarding_incomplete_recipient",
    "onboarding_incomplete_provider",
    "none",
)
SUSPENSION = (False, True)


def build(control: ControlPlane) -> None:
    with control.session() as s:
        for code in ("NPOL", "KCC", "OTHER"):
            admin.add_partner(s, code, code)
        admin.add_purpose(s, "safeguarding", "Safeguarding children")
        admin.add_purpose(s, "research", "Research", pseudonymised_only=True)
        admin.add_purpose(s, "fire_prevention", "Fire prevention")
        npol = admin.get_partner(s, "NPOL")
        crimes = Dataset(code="crimes", title="Crimes", partner_id=npol.id)
        crimes.fields = CRIMES_FIELDS
        crimes.personal_fields = ["record_id", "given_name", "family_name", "date_of_birth"]
        incidents = Dataset(code="incidents", title="Incidents", partner_id=npol.id)
        incidents.fields = INCIDENTS_FIELDS
        incidents.personal_fields = ["record_id", "given_name", "postcode", "notes"]
        s.add_all([crimes, incidents])
        s.flush()
        admin.add_agreement(s, "T1", 1, "Intent", parties=["NPOL", "KCC"], status="live")
        t2 = admin.add_agreement(
            s,
            "T2",
            2,
            "Safeguarding",
            parent="T1",
            purposes=["safeguarding", "research"],
            start=date(2025, 1, 1),
            end=date(2027, 12, 31),
        )
        admin.share_dataset(s, t2, "crimes", sorted(CRIMES_SHARED))
        admin.share_dataset(s, t2, "incidents", ["*"])
        for role in ("practitioner", "analyst", "data_owner"):
            admin.add_recipient(s, t2, "KCC", role)
        admin.set_agreement_status(s, t2, "live")
        for partner in PARTNERS:
            for role in ROLES:
                for training in TRAINING:
                    user = admin.add_user(s, f"{partner}-{role}-{training}", "U", partner, role)
                    if training != "not_nominated":
                        admin.nominate(s, user, by="ig")
                    if training in ("ok", "not_nominated"):
                        admin.record_training(s, user, date(2025, 1, 1), date(2027, 1, 1))
                    elif training == "expired":
                        admin.record_training(s, user, date(2024, 1, 1), date(2025, 1, 1))


def set_state(control: ControlPlane, state: str, suspended: bool) -> None:
    """Put the agreement and the crimes dataset into one state of the matrix."""
    with control.session() as s:
        t1 = admin.get_agreement(s, "T1")
        t2 = admin.get_agreement(s, "T2")
        t1.status, t2.status = "live", "live"
        t2.start_date, t2.end_date = date(2025, 1, 1), date(2027, 12, 31)
        t2.purposes = [admin.get_purpose(s, "safeguarding"), admin.get_purpose(s, "research")]
        everything = dict.fromkeys(("tier1_signed", "tier2_signed", "dpia_recorded"), True)
        admin.set_checklist(s, t2, "NPOL", feed_validated=True, **everything)
        admin.set_checklist(s, t2, "KCC", users_trained=True, **everything)
        if state == "expired":
            t2.end_date = date(2026, 1, 1)
        elif state == "not_started":
            t2.start_date = date(2026, 7, 1)
        elif state in ("suspended", "draft", "ended"):
            t2.status = state
        elif state == "tier1_ended":
            t1.status = "ended"
        elif state == "onboarding_incomplete_recipient":
            admin.set_checklist(s, t2, "KCC", users_trained=False)
        elif state == "onboarding_incomplete_provider":
            admin.set_checklist(s, t2, "NPOL", feed_validated=False)
        elif state == "none":
            t2.purposes = []
        s.execute(sa.delete(DatasetSuspension))
        if suspended:
            s.add(
                DatasetSuspension(
                    dataset_id=admin.get_dataset(s, "crimes").id,
                    suspended_by="npol-owner",
                    reason="data quality incident",
                    suspended_at=datetime(2026, 5, 1, tzinfo=UTC),
                )
            )


def expectation(
    partner: str,
    role: str,
    training: str,
    purpose: str,
    dataset: str,
    state: str,
    suspended: bool,
) -> tuple[bool, list[str]]:
    """(allowed, visible fields) from the rules in the module docstring."""
    allowed = (
        partner == "KCC"
        and role in ("practitioner", "analyst", "data_owner")
        and training == "ok"
        and purpose in ("safeguarding", "research")
        and state == "live"
        and not (suspended and dataset == "crimes")
    )
    if not allowed:
        return False, []
    shared = CRIMES_SHARED if dataset == "crimes" else set(INCIDENTS_FIELDS)
    pseudonymised = role == "analyst" or purpose == "research"
    visible = [
        f
        for f in FIELDS[dataset]
        if f in shared and not (pseudonymised and f in IDENTIFYING[dataset])
    ]
    return True, visible


def test_access_matrix(control: ControlPlane) -> None:
    build(control)
    cases = allowed_cases = 0
    mismatches: list[str] = []
    for state, suspended in itertools.product(STATES, SUSPENSION):
        set_state(control, state, suspended)
        with control.session() as s:
            users = {u.username: u for u in s.scalars(sa.select(User))}
            for partner, role, training, purpose, dataset in itertools.product(
                PARTNERS, ROLES, TRAINING, PURPOSES, DATASETS
            ):
                user = users[f"{partner}-{role}-{training}"]
                decision = decide(s, user, purpose, dataset, at=AT)
                want_allowed, want_visible = expectation(
                    partner, role, training, purpose, dataset, state, suspended
                )
                cases += 1
                allowed_cases += want_allowed
                case = f"{partner} {role} {training} {purpose} {dataset} {state} susp={suspended}"
                got_visible = sorted(decision.visible_fields)
                want_withheld = sorted(f for f in FIELDS[dataset] if f not in want_visible)
                if (decision.allowed, got_visible, sorted(decision.withheld_fields)) != (
                    want_allowed,
                    sorted(want_visible),
                    want_withheld,
                ):
                    mismatches.append(f"{case}: got {decision.to_json()}")
                    continue
                if not want_allowed:
                    assert decision.reasons, case  # a denial always says why
                    continue
                table = pa.table({"record_key": ["k1"], **{f: ["v"] for f in FIELDS[dataset]}})
                table = table.rename_columns(
                    ["source_record_id" if c == "record_id" else c for c in table.column_names]
                )
                shown = decision.apply(table).column_names
                expected_cols = {"record_key"} | {
                    "source_record_id" if f == "record_id" else f for f in want_visible
                }
                if set(shown) != expected_cols:
                    mismatches.append(f"{case}: apply() kept {shown}")
    dialect = control.engine.dialect.name
    print(f"\naccess matrix on {dialect}: {cases} cases ({allowed_cases} allowed)")
    assert not mismatches, "\n".join(mismatches[:20])
    assert cases == 2 * 5 * 4 * 3 * 2 * len(STATES) * 2
    assert 0 < allowed_cases < cases


def test_suspension_takes_effect_on_next_request_and_lifting_restores(
    control: ControlPlane,
) -> None:
    build(control)
    set_state(control, "live", False)
    with control.session() as s:
        user = admin.get_user(s, "KCC-practitioner-ok")
        assert decide(s, user, "safeguarding", "crimes", at=AT).allowed
    with control.session() as s:
        admin.suspend_dataset(s, "crimes", "npol-owner", "breach under investigation")
    with control.session() as s:
        user = admin.get_user(s, "KCC-practitioner-ok")
        denied = decide(s, user, "safeguarding", "crimes")
        assert not denied.allowed
        assert any("suspended" in r for r in denied.reasons)
        assert decide(s, user, "safeguarding", "incidents").allowed
    with control.session() as s:
        assert admin.lift_suspension(s, "crimes", "npol-owner") == 1
    with control.session() as s:
        user = admin.get_user(s, "KCC-practitioner-ok")
        assert decide(s, user, "safeguarding", "crimes").allowed == user.trained_on(
            datetime.now(UTC).date()
        )


def test_unknown_things_and_unlisted_fields(control: ControlPlane) -> None:
    build(control)
    set_state(control, "live", False)
    with control.session() as s:
        user = admin.get_user(s, "KCC-practitioner-ok")
        assert not decide(s, user, "nope", "crimes", at=AT).allowed
        assert not decide(s, user, "safeguarding", "nope", at=AT).allowed
        assert not decide(s, user, None, "crimes", at=AT).allowed
        d = decide(s, user, "safeguarding", "crimes", ["offence", "dash_risk", "shoe_size"], at=AT)
        assert d.allowed
        assert d.visible_fields == ("offence",)
        assert d.withheld_fields == ("dash_risk", "shoe_size")
        rows = d.apply([{"record_key": "k", "offence": "theft", "dash_risk": "high", "x": 1}])
        assert rows == [{"record_key": "k", "offence": "theft"}]
        # Re-identification lifts the analyst's pseudonymisation, never the research purpose's.
        analyst = admin.get_user(s, "KCC-analyst-ok")
        assert (
            "given_name"
            in decide(s, analyst, "safeguarding", "crimes", at=AT, reidentify=True).visible_fields
        )
        assert (
            "given_name"
            not in decide(s, analyst, "research", "crimes", at=AT, reidentify=True).visible_fields
        )
