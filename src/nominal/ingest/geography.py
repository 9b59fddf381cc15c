"""Reference geography from ONS-format files: postcodes, output areas, wards.

* ONS Postcode Directory CSV: ``pcds`` (or ``pcd``), ``oa21cd`` (or ``oa11cd``), the
  ward column (``osward`` or ``wd24cd``/``wdNNcd``), ``lat``, ``long``.
* Output Area boundaries GeoJSON: features with an ``OA21CD`` (or ``OA11CD``) property.
* Wards GeoJSON (optional): ``WDNNCD`` / ``WDNNNM`` properties.
* Deprivation CSV (optional): ``imd_score`` and ``imd_decile`` by ``oa21cd`` (or by
  ``lsoa21cd``, the level the English Indices of Deprivation are published at).

Each import replaces the three ``reference.*`` tables in one lake transaction.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from nominal.config import Home
from nominal.engines.duck import sql_literal
from nominal.engines.lake import Lake


class GeographyError(ValueError):
    """A reference file is missing a column or is not in the expected format."""


@dataclass
class GeographySummary:
    postcodes: int
    output_areas: int
    wards: int
    snapshot: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            "postcodes": self.postcodes,
            "output_areas": self.output_areas,
            "wards": self.wards,
            "snapshot": self.snapshot,
        }


def _pick(columns: list[str], *patterns: str, file: Path, what: str) -> str:
    lower = {c.lower(): c for c in columns}
    for pattern in patterns:
        for low, col in lower.items():
            if re.fullmatch(pattern, low):
                return col
    raise GeographyError(f"{file.name}: row 1 (header): no {what} column ({', '.join(patterns)})")


def _features(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GeographyError(f"{path.name}: not a GeoJSON file ({exc})") from None
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise GeographyError(f"{path.name}: not a GeoJSON FeatureCollection")
    feats = data.get("features") or []
    return [f for f in feats if isinstance(f, dict)]


def _prop(props: dict[str, Any], pattern: str) -> Any:
    for key, value in props.items():
        if re.fullmatch(pattern, key, flags=re.IGNORECASE):
            return value
    return None


def import_geography(
    home: Home,
    postcodes: Path,
    output_areas: Path,
    wards: Path | None = None,
    deprivation: Path | None = None,
) -> GeographySummary:
    """Load the reference tables from ONS-format files (one lake transaction)."""
    for p in (postcodes, output_areas, wards, deprivation):
        if p is not None and not p.is_file():
            raise GeographyError(f"{p}: file not found")
    home.ensure()
    con = duckdb.connect()
    src = f"read_csv({sql_literal(str(postcodes))}, all_varchar = true, header = true)"
    try:
        cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()]
    except duckdb.Error as exc:
        raise GeographyError(f"{postcodes.name}: {str(exc).splitlines()[0]}") from None
    pc = _pick(cols, "pcds", "pcd", "postcode", file=postcodes, what="postcode")
    oa = _pick(cols, r"oa\d\dcd", "oa_code", file=postcodes, what="output area")
    wd = _pick(cols, "osward", r"wd\d\dcd", "ward_code", file=postcodes, what="ward")
    lat = _pick(cols, "lat", "latitude", file=postcodes, what="latitude")
    lon = _pick(cols, "long", "lon", "longitude", file=postcodes, what="longitude")
    norm = f"upper(regexp_replace(\"{pc}\", '\\s', '', 'g'))"
    con.execute(
        f"""CREATE TABLE postcodes AS SELECT DISTINCT ON (postcode)
              left({norm}, length({norm}) - 3) || ' ' || right({norm}, 3) AS postcode,
              nullif(trim("{oa}"), '') AS oa_code, nullif(trim("{wd}"), '') AS ward_code,
              try_cast("{lat}" AS DOUBLE) AS lat, try_cast("{lon}" AS DOUBLE) AS lon
            FROM {src} WHERE length({norm}) >= 5 ORDER BY postcode"""
    )

    imd: dict[str, tuple[float | None, int | None]] = {}
    imd_by_lsoa: dict[str, tuple[float | None, int | None]] = {}
    if deprivation is not None:
        dsrc = f"read_csv({sql_literal(str(deprivation))}, all_varchar = true, header = true)"
        dcols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {dsrc}").fetchall()]
        key = _pick(dcols, r"oa\d\dcd", r"lsoa\d\dcd", file=deprivation, what="area code")
        score = _pick(dcols, "imd_score", r".*score.*", file=deprivation, what="IMD score")
        decile = _pick(dcols, "imd_decile", r".*decile.*", file=deprivation, what="IMD decile")
        target = imd_by_lsoa if key.lower().startswith("lsoa") else imd
        for code, s, d in con.execute(
            f'SELECT "{key}", try_cast("{score}" AS DOUBLE), try_cast("{decile}" AS INTEGER) FROM {dsrc}'
        ).fetchall():
            target[code] = (s, d)

    oa_rows = []
    for feat in _features(output_areas):
        props = feat.get("properties") or {}
        code = _prop(props, r"oa\d\dcd")
        if not code:
            raise GeographyError(f"{output_areas.name}: a feature has no OA21CD property")
        lsoa = _prop(props, r"lsoa\d\dcd")
        s, d = imd.get(code) or imd_by_lsoa.get(lsoa or "") or (None, None)
        oa_rows.append(
            {
                "oa_code": code,
                "ward_code": _prop(props, r"wd\d\dcd"),
                "name": _prop(props, r"oa\d\dnm") or _prop(props, r"lsoa\d\dnm") or code,
                "imd_score": s,
                "imd_decile": d,
                "geometry": json.dumps(feat.get("geometry"), separators=(",", ":")),
            }
        )
    oa_table = pa.Table.from_pylist(
        oa_rows,
        pa.schema(
            [
                ("oa_code", pa.string()),
                ("ward_code", pa.string()),
                ("name", pa.string()),
                ("imd_score", pa.float64()),
                ("imd_decile", pa.int64()),
                ("geometry", pa.string()),
            ]
        ),
    )
    con.register("oa_in", oa_table)
    # Ward of an output area: from its own properties, else from its postcodes.
    con.execute(
        """CREATE TABLE output_areas AS SELECT o.oa_code,
             coalesce(o.ward_code, (SELECT mode(ward_code) FROM postcodes p
                                    WHERE p.oa_code = o.oa_code)) AS ward_code,
             o.name, o.imd_score, o.imd_decile, o.geometry FROM oa_in o ORDER BY oa_code"""
    )
    ward_rows = []
    if wards is not None:
        for feat in _features(wards):
            props = feat.get("properties") or {}
            code = _prop(props, r"wd\d\dcd")
            if not code:
                raise GeographyError(f"{wards.name}: a feature has no WDnnCD property")
            ward_rows.append(
                {
                    "ward_code": code,
                    "name": _prop(props, r"wd\d\dnm") or code,
                    "geometry": json.dumps(feat.get("geometry"), separators=(",", ":")),
                }
            )
    else:
        names = {}
        for feat in _features(output_areas):
            props = feat.get("properties") or {}
            code = _prop(props, r"wd\d\dcd")
            if code:
                names[code] = _prop(props, r"wd\d\dnm") or code
        ward_rows = [
            {"ward_code": c, "name": n, "geometry": None} for c, n in sorted(names.items())
        ]
    ward_table = pa.Table.from_pylist(
        ward_rows,
        pa.schema([("ward_code", pa.string()), ("name", pa.string()), ("geometry", pa.string())]),
    )
    lake = Lake(home.lake)
    with lake.transaction("geography import") as tx:
        written = {}
        for table, rel in (
            ("reference.postcodes", "postcodes"),
            ("reference.output_areas", "output_areas"),
        ):
            path = tx.new_file(table)
            con.execute(
                f"COPY {rel} TO {sql_literal(str(path))} (FORMAT parquet, COMPRESSION zstd)"
            )
            tx.replace(table, [path])
            written[table] = tx.rows(table)
        tx.replace("reference.wards", [tx.write_arrow("reference.wards", ward_table)])
        snap = tx.commit({"reference": "geography", **{k: v for k, v in written.items()}})
    con.close()
    return GeographySummary(
        postcodes=snap.rows("reference.postcodes"),
        output_areas=snap.rows("reference.output_areas"),
        wards=snap.rows("reference.wards"),
        snapshot=snap.id,
    )
