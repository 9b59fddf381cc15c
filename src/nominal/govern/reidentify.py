"""Re-identification: from a record's pseudonym back to who the person is.

Analysts work on pseudonymised data. Seeing the identity behind one pseudonym needs
a purpose the agreement covers and a written justification, goes through the same
policy decision point (with only the analyst's pseudonymisation lifted, never a
research purpose's), and is audited whether it is allowed or refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from nominal.govern.audit import AuditLog
from nominal.govern.models import Purpose, User
from nominal.govern.policy import Decision, decide, identity_fields
from nominal.govern.reads import LakeReader, identity_of

MIN_JUSTIFICATION = 20


class ReidentificationRefused(PermissionError):
    def __init__(self, message: str, reasons: list[str]) -> None:
        super().__init__(message)
        self.reasons = reasons


@dataclass(frozen=True)
class Reidentified:
    record_key: str
    dataset: str
    identity: dict[str, Any]
    decision: Decision


def reidentify(
    session: Session,
    user: User,
    purpose: Purpose,
    record_key: str,
    justification: str | None,
    reader: LakeReader,
    audit: AuditLog,
    client: str | None = None,
) -> Reidentified:
    """The visible identity fields of one record, or :class:`ReidentificationRefused`."""
    text = (justification or "").strip()

    def refuse(
        message: str, reasons: list[str], dataset: str | None = None
    ) -> ReidentificationRefused:
        audit.record(
            "reidentify",
            "denied",
            user=user,
            purpose=purpose.code,
            dataset=dataset,
            record_keys=[record_key],
            justification=text or None,
            client=client,
            detail={"reasons": reasons},
        )
        return ReidentificationRefused(message, reasons)

    if len(text) < MIN_JUSTIFICATION:
        raise refuse(
            "re-identification needs a written justification",
            [f"write why you need to know who this is (at least {MIN_JUSTIFICATION} characters)"],
        )
    row = identity_of(reader, record_key)
    if row is None:
        raise refuse("no such record", [f"no record has the pseudonym {record_key}"])
    dataset = str(row["dataset"])
    from nominal.govern.admin import get_dataset

    ds = get_dataset(session, dataset)
    fields = sorted(identity_fields(ds) & set(ds.fields))
    decision = decide(session, user, purpose, ds, fields, reidentify=True)
    if not decision.allowed:
        raise refuse("access denied", list(decision.reasons), dataset)
    identity = decision.apply(row)
    audit.record(
        "reidentify",
        "allowed",
        user=user,
        purpose=purpose.code,
        dataset=dataset,
        record_keys=[record_key],
        justification=text,
        client=client,
        detail={"fields": sorted(identity), "agreements": list(decision.agreement_refs)},
    )
    return Reidentified(record_key, dataset, identity, decision)
