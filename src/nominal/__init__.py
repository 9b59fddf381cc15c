"""nominal: a multi-agency integrated analytics hub.

Partner feeds are ingested into a Parquet lake, linked into one golden nominal per
person and household, scored for risk and served to practitioners and analysts
behind information-sharing agreements.
"""

__version__ = "0.1.0"


def connect(token: str | None = None, **kwargs: object) -> object:
    """A DuckDB connection restricted to the pseudonymised content your agreements allow
    (the analyst workbench from Python); see :func:`nominal.products.workbench.connect`."""
    from nominal.products.workbench import connect as _connect

    return _connect(token, **kwargs)  # type: ignore[arg-type]
