"""What the agreements let a partner system receive (the feed API and alerts).

A partner system is not a person, so the user-level policy decision point does not
apply; these are its partner-level counterparts, on the same control-plane records:

* a partner may pull the nominal ids of its **own** records of a dataset while the
  agreement its feed contract names is live and the dataset is not suspended;
* a partner may be told about **another** partner's dataset (an alert that a new
  agency is involved, a new incident) only if a live tier-2 agreement shares that
  dataset with it as a recipient (or it provides the dataset itself).

Deny by default: no agreement recorded means no.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session


def own_dataset_allowed(session: Session, agreement_ref: str, dataset_code: str) -> str | None:
    """None if the partner may pull ids for its own dataset, else the reason it may not.

    The nominal ids come from linking with other partners' data, so pulling them is
    sharing: the tier-2 agreement must be live and in date, must share the dataset, the
    partner's onboarding for it must be complete, and the dataset must not be suspended.
    """
    from nominal.govern.models import Agreement, AgreementDataset, Dataset
    from nominal.govern.policy import _incomplete_onboarding, active_suspension

    now = datetime.now(UTC)
    agreement = session.scalar(sa.select(Agreement).where(Agreement.reference == agreement_ref))
    if agreement is None:
        return f"agreement {agreement_ref} is not recorded in the hub"
    state = agreement.state(now.date())
    if state != "live":
        return f"agreement {agreement_ref} is {state}"
    dataset = session.scalar(sa.select(Dataset).where(Dataset.code == dataset_code))
    if dataset is None:
        return f"dataset {dataset_code} is not registered in the hub"
    shared = session.scalar(
        sa.select(AgreementDataset.id).where(
            AgreementDataset.agreement_id == agreement.id,
            AgreementDataset.dataset_id == dataset.id,
        )
    )
    if agreement.tier != 2 or shared is None:
        return f"agreement {agreement_ref} does not share {dataset_code}"
    incomplete = _incomplete_onboarding(session, agreement, {dataset.partner_id})
    if incomplete:
        return f"onboarding under {agreement_ref} is not complete for {', '.join(incomplete)}"
    if active_suspension(session, dataset.id, now) is not None:
        return f"sharing of {dataset_code} is suspended by its data owner"
    return None


def receivable_datasets(session: Session, partner_code: str) -> set[str]:
    """Datasets a partner may be told about: its own, and those live agreements share with it."""
    from nominal.govern.models import (
        Agreement,
        AgreementDataset,
        AgreementRecipient,
        Dataset,
        Partner,
    )

    today = datetime.now(UTC).date()
    partner = session.scalar(sa.select(Partner).where(Partner.code == partner_code))
    if partner is None:
        return set()
    own = set(session.scalars(sa.select(Dataset.code).where(Dataset.partner_id == partner.id)))
    shared: set[str] = set()
    rows = session.execute(
        sa.select(Agreement, Dataset.code)
        .join(AgreementRecipient, AgreementRecipient.agreement_id == Agreement.id)
        .join(AgreementDataset, AgreementDataset.agreement_id == Agreement.id)
        .join(Dataset, Dataset.id == AgreementDataset.dataset_id)
        .where(AgreementRecipient.partner_id == partner.id, Agreement.tier == 2)
    ).all()
    for agreement, code in rows:
        if agreement.state(today) == "live":
            shared.add(code)
    return own | shared
