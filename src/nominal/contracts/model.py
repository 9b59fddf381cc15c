"""The feed contract: what a partner sends, under which agreement, and what it means.

A contract is YAML, for example::

    contract_version: 1
    feed: npol-incidents
    title: Police incidents
    partner: {code: NPOL, name: Northshire Police}
    agency: police
    dataset: police_incidents
    agreement: ISA-T2-001
    deliveries: {pattern: "npol_incidents_*.csv"}
    format: {type: csv, encoding: utf-8, delimiter: ",", date_format: "%d/%m/%Y"}
    fields:
      record_id:     {source: IncidentPersonRef, required: true}
      given_name:    {source: Forename}
      family_name:   {source: Surname}
      date_of_birth: {source: DOB, type: date}
      event_date:    {source: IncidentDate, type: date, required: true}
      event_type:    {value: police_incident}
      dash_risk:     {source: DASHRisk, type: category, values: [standard, medium, high]}
    retention: {years: 7, from: event_date}

Keys of ``fields`` are canonical names. Identity fields (names, date of birth,
address, contact, identifiers) are personal data and go to the restricted identity
table; everything else is content and goes to the pseudonymised events table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from fnmatch import fnmatch
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

# Canonical person record (DESIGN.md). These are always personal data.
CANONICAL_IDENTITY_FIELDS: tuple[str, ...] = (
    "record_id",
    "given_name",
    "middle_names",
    "family_name",
    "other_names",
    "date_of_birth",
    "sex",
    "address_line_1",
    "address_line_2",
    "town",
    "postcode",
    "uprn",
    "phone",
    "email",
    "nhs_number",
    "ni_number",
    "police_id",
    "pupil_number",
    "household_ref",
    "relationship",
)

# The person columns of silver.identity, in its column order: every canonical identity
# field except the partner's record id (stored as ``source_record_id``).
IDENTITY_TABLE_FIELDS: tuple[str, ...] = tuple(
    f for f in CANONICAL_IDENTITY_FIELDS if f != "record_id"
)

# Content fields every events table has; anything else a contract maps becomes an
# attribute of the event (kept as typed JSON) under its canonical name.
CANONICAL_CONTENT_FIELDS: tuple[str, ...] = (
    "event_id",
    "event_type",
    "event_date",
    "event_end_date",
    "event_status",
    "oa_code",
)

FieldType = Literal["string", "integer", "number", "date", "datetime", "boolean", "category"]
FormatType = Literal["csv", "ndjson", "xlsx", "parquet", "fhir", "document"]

# The field types the ingest validators apply by canonical name, whatever the
# contract says the type is.
DEFAULT_TYPES: dict[str, FieldType] = {
    "date_of_birth": "date",
    "event_date": "date",
    "event_end_date": "date",
}

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class ContractError(ValueError):
    """A contract is invalid; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Partner(_Strict):
    code: str
    name: str

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        if not _CODE.match(value):
            raise ValueError("partner code must be letters, digits, '.', '_' or '-'")
        return value


class Deliveries(_Strict):
    pattern: str = Field(description="glob matched against a delivery's file name")


class FormatSpec(_Strict):
    type: FormatType
    encoding: str = "utf-8"
    delimiter: str = ","
    quote: str = '"'
    header: bool = True
    sheet: str | None = None
    date_format: str | None = Field(
        default=None, description="strftime format of dates, unless a field gives its own"
    )
    null_values: tuple[str, ...] = ("", "NULL", "null", "N/A", "n/a")

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, value: str) -> str:
        import codecs

        try:
            codecs.lookup(value)
        except LookupError as exc:
            raise ValueError(f"unknown encoding {value!r}") from exc
        return value


class FieldSpec(_Strict):
    source: str | None = Field(default=None, description="column (or JSON path) in the feed")
    value: str | int | float | bool | None = Field(
        default=None, description="a constant, for fields the feed does not carry"
    )
    type: FieldType = "string"
    format: str | None = Field(default=None, description="date format for this field")
    required: bool = False
    personal: bool | None = Field(
        default=None, description="personal data? defaults to True for identity fields"
    )
    values: tuple[str, ...] | None = Field(
        default=None, description="allowed values (case-insensitive) for category fields"
    )
    mapping: dict[str, str] | None = Field(
        default=None, description="source value -> canonical value, applied before checks"
    )
    description: str | None = None

    @model_validator(mode="after")
    def _source_or_value(self) -> FieldSpec:
        if (self.source is None) == (self.value is None):
            raise ValueError("give exactly one of 'source' (a column) or 'value' (a constant)")
        return self


class Retention(_Strict):
    years: float = Field(gt=0)
    basis: Literal["event_date", "received"] = Field(default="event_date", alias="from")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Contract(_Strict):
    contract_version: Literal[1] = 1
    feed: str
    title: str
    partner: Partner
    agency: str = Field(description="kind of agency: police, fire, health, education, ...")
    dataset: str
    agreement: str = Field(description="reference of the tier-2 agreement the feed is shared under")
    description: str | None = None
    reliability: float = Field(
        default=0.5, ge=0, le=1, description="source reliability used by survivorship rules"
    )
    deliveries: Deliveries
    format: FormatSpec
    fields: dict[str, FieldSpec] = Field(default_factory=dict)
    retention: Retention
    path: Path | None = Field(default=None, exclude=True, description="where it was loaded from")

    @field_validator("feed", "dataset")
    @classmethod
    def _names(cls, value: str) -> str:
        if not _CODE.match(value):
            raise ValueError("must be letters, digits, '.', '_' or '-'")
        return value

    @field_validator("fields")
    @classmethod
    def _fields(cls, value: dict[str, FieldSpec]) -> dict[str, FieldSpec]:
        for name in value:
            if not _NAME.match(name):
                raise ValueError(f"canonical field name {name!r} must be lower_snake_case")
        return value

    @model_validator(mode="after")
    def _needed_fields(self) -> Contract:
        # Documents (case notes, letters) are stored whole with their extracted text;
        # only tabular feeds have records, so only they must say which column is which.
        if self.format.type == "document":
            return self
        for needed in ("record_id", "event_date"):
            if needed not in self.fields:
                raise ValueError(f"the contract must map {needed!r}")
        return self

    # -- helpers used by ingest and governance --------------------------------------------
    def field_type(self, name: str) -> FieldType:
        spec = self.fields[name]
        if spec.type == "string" and name in DEFAULT_TYPES:
            return DEFAULT_TYPES[name]
        return spec.type

    def is_personal(self, name: str) -> bool:
        spec = self.fields[name]
        if spec.personal is not None:
            return spec.personal
        return name in CANONICAL_IDENTITY_FIELDS

    @property
    def identity_fields(self) -> list[str]:
        return [n for n in self.fields if n in CANONICAL_IDENTITY_FIELDS]

    @property
    def content_fields(self) -> list[str]:
        return [n for n in self.fields if n not in CANONICAL_IDENTITY_FIELDS]

    @property
    def attribute_fields(self) -> list[str]:
        """Content fields beyond the common event columns (kept as event attributes)."""
        return [
            n
            for n in self.fields
            if n not in CANONICAL_IDENTITY_FIELDS and n not in CANONICAL_CONTENT_FIELDS
        ]

    @property
    def source_columns(self) -> list[str]:
        return [s.source for s in self.fields.values() if s.source is not None]

    def matches(self, file_name: str) -> bool:
        return fnmatch(file_name, self.deliveries.pattern)


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        parts.append(f"field '{where}': {err['msg']}")
    return "; ".join(parts)


def parse_contract(data: Any, source: str = "<contract>") -> Contract:
    if not isinstance(data, dict):
        raise ContractError(f"{source}: a contract must be a YAML mapping")
    try:
        return Contract.model_validate(data)
    except ValidationError as exc:
        raise ContractError(f"{source}: invalid contract: {_describe(exc)}") from None


def load_contract(path: str | Path) -> Contract:
    """Load and validate one contract file; errors name the file and the field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ContractError(f"{path}: cannot read contract: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ContractError(f"{path}: not valid YAML: {exc}") from None
    contract = parse_contract(data, str(path))
    return contract.model_copy(update={"path": path})


def load_contracts(folder: str | Path) -> list[Contract]:
    """Load every ``*.yaml`` / ``*.yml`` contract in a folder; feeds must be unique."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ContractError(f"{folder}: contracts folder not found")
    contracts = [load_contract(p) for p in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])]
    seen: dict[str, Path | None] = {}
    for c in contracts:
        if c.feed in seen:
            raise ContractError(f"{c.path}: feed {c.feed!r} is also declared in {seen[c.feed]}")
        seen[c.feed] = c.path
    return contracts


def contract_for(file_name: str, contracts: Iterable[Contract]) -> Contract | None:
    """The contract whose delivery pattern matches ``file_name`` (first match wins)."""
    for c in contracts:
        if c.matches(file_name):
            return c
    return None
