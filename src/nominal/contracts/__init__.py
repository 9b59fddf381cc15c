"""Feed contracts: one YAML file declares a partner feed; a new feed is a new contract."""

from nominal.contracts.model import (
    CANONICAL_CONTENT_FIELDS,
    CANONICAL_IDENTITY_FIELDS,
    Contract,
    ContractError,
    FieldSpec,
    load_contract,
    load_contracts,
)

__all__ = [
    "CANONICAL_CONTENT_FIELDS",
    "CANONICAL_IDENTITY_FIELDS",
    "Contract",
    "ContractError",
    "FieldSpec",
    "load_contract",
    "load_contracts",
]
