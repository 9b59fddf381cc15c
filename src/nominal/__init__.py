"""nominal: a multi-agency integrated analytics hub.

Partner feeds are ingested into a Parquet lake, linked into one golden nominal per
person and household, scored for risk and served to practitioners and analysts
behind information-sharing agreements.
"""

__version__ = "0.1.0"
