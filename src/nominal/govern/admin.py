"""Administration of the control plane: partners, datasets, purposes, agreements, users.

The CLI, the information governance pages and the demo all go through these functions,
so a rule (a role must be known, a tier-2 agreement must rest on a tier-1 one, a
suspension needs a reason) is enforced in one place.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from nominal.contracts.model import Contract
from nominal.govern.auth import hash_password, new_totp_secret
from nominal.govern.models import (
    AGREEMENT_STATUSES,
    ALL_FIELDS,
    ROLES,
    Agreement,
    AgreementDataset,
    AgreementRecipient,
    Dataset,
    DatasetSuspension,
    OnboardingChecklist,
    Partner,
    Purpose,
    User,
)


class GovernError(ValueError):
    """An administrative request breaks a rule; the message says which."""


def get_partner(session: Session, code: str) -> Partner:
    partner = session.scalar(sa.select(Partner).where(Partner.code == code))
    if partner is None:
        raise GovernError(f"unknown partner {code!r}")
    return partner


def get_purpose(session: Session, code: str) -> Purpose:
    purpose = session.scalar(sa.select(Purpose).where(Purpose.code == code))
    if purpose is None:
        raise GovernError(f"unknown purpose {code!r}")
    return purpose


def get_dataset(session: Session, code: str) -> Dataset:
    dataset = session.scalar(sa.select(Dataset).where(Dataset.code == code))
    if dataset is None:
        raise GovernError(f"unknown dataset {code!r}")
    return dataset


def get_agreement(session: Session, reference: str) -> Agreement:
    agreement = session.scalar(sa.select(Agreement).where(Agreement.reference == reference))
    if agreement is None:
        raise GovernError(f"unknown agreement {reference!r}")
    return agreement


def get_user(session: Session, username: str) -> User:
    user = session.scalar(sa.select(User).where(User.username == username))
    if user is None:
        raise GovernError(f"unknown user {username!r}")
    return user


def add_partner(session: Session, code: str, name: str, agency: str | None = None) -> Partner:
    existing = session.scalar(sa.select(Partner).where(Partner.code == code))
    if existing is not None:
        existing.name = name
        existing.agency = agency or existing.agency
        return existing
    partner = Partner(code=code, name=name, agency=agency)
    session.add(partner)
    session.flush()
    return partner


def add_purpose(
    session: Session,
    code: str,
    name: str,
    description: str | None = None,
    pseudonymised_only: bool = False,
) -> Purpose:
    purpose = session.scalar(sa.select(Purpose).where(Purpose.code == code))
    if purpose is None:
        purpose = Purpose(code=code, name=name)
        session.add(purpose)
    purpose.name = name
    purpose.description = description
    purpose.pseudonymised_only = pseudonymised_only
    session.flush()
    return purpose


def register_contract(session: Session, contract: Contract) -> Dataset:
    """Create or update the partner and dataset a feed contract describes."""
    partner = add_partner(session, contract.partner.code, contract.partner.name, contract.agency)
    dataset = session.scalar(sa.select(Dataset).where(Dataset.code == contract.dataset))
    if dataset is None:
        dataset = Dataset(code=contract.dataset, title=contract.title, partner_id=partner.id)
        session.add(dataset)
    elif dataset.partner_id != partner.id:
        raise GovernError(
            f"{contract.path}: dataset {contract.dataset!r} belongs to another partner"
        )
    names = set(dataset.fields) | set(contract.fields)
    personal = set(dataset.personal_fields) | {
        n for n in contract.fields if contract.is_personal(n)
    }
    dataset.fields = sorted(names)
    dataset.personal_fields = sorted(personal)
    dataset.feed = contract.feed
    dataset.contract_path = str(contract.path) if contract.path else None
    dataset.agreement_ref = contract.agreement
    dataset.retention_years = contract.retention.years
    dataset.retention_basis = contract.retention.basis
    session.flush()
    return dataset


def add_agreement(
    session: Session,
    reference: str,
    tier: int,
    title: str,
    *,
    parent: str | None = None,
    legal_gateway: str | None = None,
    purposes: Iterable[str] = (),
    parties: Iterable[str] = (),
    start: date | None = None,
    end: date | None = None,
    status: str = "draft",
    dpia_reference: str | None = None,
    dpia_document: str | None = None,
) -> Agreement:
    if tier not in (1, 2):
        raise GovernError("an agreement is tier 1 or tier 2")
    if status not in AGREEMENT_STATUSES:
        raise GovernError(f"status must be one of {', '.join(AGREEMENT_STATUSES)}")
    if start and end and end < start:
        raise GovernError("the end date is before the start date")
    if session.scalar(sa.select(Agreement.id).where(Agreement.reference == reference)):
        raise GovernError(f"agreement {reference!r} already exists")
    parent_obj = get_agreement(session, parent) if parent else None
    if tier == 2 and parent_obj is not None and parent_obj.tier != 1:
        raise GovernError("a tier-2 agreement rests on a tier-1 agreement")
    agreement = Agreement(
        reference=reference,
        tier=tier,
        title=title,
        parent=parent_obj,
        legal_gateway=legal_gateway,
        start_date=start,
        end_date=end,
        status=status,
        dpia_reference=dpia_reference,
        dpia_document=dpia_document,
    )
    agreement.purposes = [get_purpose(session, p) for p in purposes]
    agreement.parties = [get_partner(session, p) for p in parties]
    session.add(agreement)
    session.flush()
    return agreement


def share_dataset(
    session: Session, agreement: Agreement, dataset_code: str, fields: Iterable[str] = (ALL_FIELDS,)
) -> AgreementDataset:
    """Share ``fields`` of a dataset under a tier-2 agreement (replacing any earlier list)."""
    if agreement.tier != 2:
        raise GovernError("datasets are shared under tier-2 agreements")
    dataset = get_dataset(session, dataset_code)
    names = list(fields)
    unknown = [n for n in names if n != ALL_FIELDS and n not in dataset.fields]
    if unknown:
        raise GovernError(f"dataset {dataset.code} has no field(s) {', '.join(unknown)}")
    for shared in agreement.datasets:
        if shared.dataset_id == dataset.id:
            shared.fields = names
            session.flush()
            return shared
    shared = AgreementDataset(dataset=dataset, fields_json="[]")
    shared.fields = names
    agreement.datasets.append(shared)
    session.flush()
    return shared


def add_recipient(
    session: Session, agreement: Agreement, partner_code: str, role: str
) -> AgreementRecipient:
    if role not in ROLES:
        raise GovernError(f"role must be one of {', '.join(ROLES)}")
    partner = get_partner(session, partner_code)
    for existing in agreement.recipients:
        if existing.partner_id == partner.id and existing.role == role:
            return existing
    recipient = AgreementRecipient(partner=partner, role=role)
    agreement.recipients.append(recipient)
    return recipient


def checklist(session: Session, agreement: Agreement, partner: Partner) -> OnboardingChecklist:
    """The onboarding checklist of ``partner`` for ``agreement`` (created on first use)."""
    found = session.scalar(
        sa.select(OnboardingChecklist).where(
            OnboardingChecklist.agreement_id == agreement.id,
            OnboardingChecklist.partner_id == partner.id,
        )
    )
    if found is None:
        found = OnboardingChecklist(
            agreement_id=agreement.id,
            partner_id=partner.id,
            tier1_signed=False,
            tier2_signed=False,
            dpia_recorded=False,
            feed_validated=False,
            users_trained=False,
        )
        session.add(found)
    found.provides_data = any(s.dataset.partner_id == partner.id for s in agreement.datasets)
    found.receives_data = any(r.partner_id == partner.id for r in agreement.recipients)
    session.flush()
    return found


def set_checklist(
    session: Session, agreement: Agreement, partner_code: str, **items: bool
) -> OnboardingChecklist:
    found = checklist(session, agreement, get_partner(session, partner_code))
    known = {name for name, _label in OnboardingChecklist.ITEMS}
    for name, value in items.items():
        if name not in known:
            raise GovernError(f"unknown checklist item {name!r}")
        setattr(found, name, bool(value))
    session.flush()
    return found


def set_agreement_status(session: Session, agreement: Agreement, status: str) -> Agreement:
    if status not in AGREEMENT_STATUSES:
        raise GovernError(f"status must be one of {', '.join(AGREEMENT_STATUSES)}")
    incomplete = not agreement.datasets or not agreement.recipients or not agreement.purposes
    if status == "live" and agreement.tier == 2 and incomplete:
        raise GovernError(
            f"{agreement.reference} needs purposes, datasets and recipients before it goes live"
        )
    agreement.status = status
    if status == "live" and agreement.signed_at is None:
        agreement.signed_at = datetime.now(UTC)
    session.flush()
    return agreement


def add_user(
    session: Session,
    username: str,
    full_name: str,
    partner_code: str,
    role: str,
    *,
    password: str | None = None,
    email: str | None = None,
    totp_secret: str | None = None,
) -> User:
    if role not in ROLES:
        raise GovernError(f"role must be one of {', '.join(ROLES)}")
    if session.scalar(sa.select(User.id).where(User.username == username)):
        raise GovernError(f"user {username!r} already exists")
    user = User(
        username=username,
        full_name=full_name,
        email=email,
        partner=get_partner(session, partner_code),
        role=role,
        nominated=False,
        active=True,
        failed_attempts=0,
        password_hash=hash_password(password) if password else None,
        totp_secret=totp_secret or new_totp_secret(),
    )
    session.add(user)
    session.flush()
    return user


def nominate(session: Session, user: User, by: str, nominated: bool = True) -> User:
    user.nominated = nominated
    user.nominated_by = by if nominated else None
    session.flush()
    return user


def record_training(
    session: Session, user: User, completed: date, expires: date | None = None
) -> User:
    expires = expires or date(completed.year + 1, completed.month, min(completed.day, 28))
    if expires < completed:
        raise GovernError("training cannot expire before it was completed")
    user.training_completed_on = completed
    user.training_expires_on = expires
    session.flush()
    return user


def suspend_dataset(
    session: Session, dataset_code: str, by: User | str, reason: str
) -> DatasetSuspension:
    """Suspend sharing of a dataset; a data owner may suspend only their own partner's."""
    dataset = get_dataset(session, dataset_code)
    if isinstance(by, User):
        if by.role == "data_owner" and by.partner_id != dataset.partner_id:
            raise GovernError(f"{by.username} is not a data owner of {dataset.code}")
        if by.role not in ("data_owner", "ig_lead", "admin"):
            raise GovernError(f"{by.username} may not suspend datasets")
    if not reason.strip():
        raise GovernError("give a reason for the suspension")
    suspension = DatasetSuspension(
        dataset_id=dataset.id,
        suspended_by=by.username if isinstance(by, User) else by,
        reason=reason.strip(),
        suspended_at=datetime.now(UTC),
    )
    session.add(suspension)
    session.flush()
    return suspension


def lift_suspension(session: Session, dataset_code: str, by: User | str) -> int:
    dataset = get_dataset(session, dataset_code)
    if isinstance(by, User) and by.role == "data_owner" and by.partner_id != dataset.partner_id:
        raise GovernError(f"{by.username} is not a data owner of {dataset.code}")
    lifted = 0
    for suspension in session.scalars(
        sa.select(DatasetSuspension).where(
            DatasetSuspension.dataset_id == dataset.id, DatasetSuspension.lifted_at.is_(None)
        )
    ):
        suspension.lifted_at = datetime.now(UTC)
        suspension.lifted_by = by.username if isinstance(by, User) else by
        lifted += 1
    session.flush()
    return lifted


def load_contract_folder(session: Session, folder: Path) -> list[Dataset]:
    from nominal.contracts.model import load_contracts

    return [register_contract(session, c) for c in load_contracts(folder)]
