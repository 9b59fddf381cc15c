"""Real ONS formats through ingest's geography importer, as the map reads them.

The files below are tiny but laid out exactly as published: the ONS Postcode
Directory CSV (2025 layout: ``pcd7, pcd8, pcds, dointr, doterm, ..., oa21cd, ..., lat, long``) and
Output Area / Ward boundary GeoJSON with ``OA21CD`` / ``WD24CD`` / ``WD24NM``
properties. (Codes are in the real format; coordinates are made up.)"""

from __future__ import annotations

import json
from pathlib import Path

from nominal.config import Home
from nominal.engines import duck
from nominal.engines.lake import Lake
from nominal.ingest.api import import_geography
from nominal.products import areas
from nominal.products.lakeview import Filters


def _square(x: float, y: float) -> dict[str, object]:
    return {
        "type": "Polygon",
        "coordinates": [[[x, y], [x + 0.01, y], [x + 0.01, y + 0.01], [x, y + 0.01], [x, y]]],
    }


def test_real_format_files_reach_the_map(hub_home: Home, tmp_path: Path) -> None:
    onspd = tmp_path / "ONSPD_FEB_2025_UK.csv"
    # The column layout of the ONSPD from its 2025 editions (``...cd`` code columns).
    onspd.write_text(
        "pcd7,pcd8,pcds,dointr,doterm,usrtypind,east1m,nrth1m,gridind,oa21cd,cty25cd,ced25cd,"
        "lad25cd,wd25cd,nhser24cd,ctry25cd,rgn25cd,pcon24cd,ttwa15cd,itl25cd,npark16cd,lsoa21cd,"
        "msoa21cd,wz11cd,sicbl24cd,bua24cd,ruc21ind,oac11ind,lat,long,pfa23cd,imd20ind\n"
        '"LS1 1AA","LS1  1AA","LS1 1AA","198001","","0","429945","433684","1","E00170001",'
        '"E99999999","E99999999","E08000035","E05011421","E40000012","E92000001","E12000003",'
        '"E14001067","E30000266","E06000000","E99999999","E01033010","E02002330","E33000000",'
        '"E38000225","E63000000","UN1","2B1",53.796,-1.548,"E23000010","2345"\n'
    )
    oa = tmp_path / "Output_Areas_2021_EW_BGC_V2.geojson"
    oa.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {
                            "FID": 1,
                            "OA21CD": "E00170001",
                            "LSOA21CD": "E01033010",
                            "LSOA21NM": "Leeds 111A",
                            "GlobalID": "x",
                        },
                        "geometry": _square(-1.55, 53.79),
                    },
                    {
                        "type": "Feature",
                        "properties": {
                            "FID": 2,
                            "OA21CD": "E00170002",
                            "LSOA21CD": "E01033010",
                            "LSOA21NM": "Leeds 111A",
                            "GlobalID": "y",
                        },
                        "geometry": _square(-1.54, 53.79),
                    },
                ],
            }
        )
    )
    wards = tmp_path / "Wards_May_2024_Boundaries_UK_BGC.geojson"
    wards.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {
                            "FID": 1,
                            "WD24CD": "E05011421",
                            "WD24NM": "Little London and Woodhouse",
                            "LAD24CD": "E08000035",
                        },
                        "geometry": _square(-1.56, 53.78),
                    },
                ],
            }
        )
    )
    summary = import_geography(hub_home, onspd, oa, wards)
    assert (summary.postcodes, summary.output_areas, summary.wards) == (1, 2, 1)
    con = duck.connect(Lake(hub_home.lake).require_current())
    oas, ward_fc = areas.geojson(con, {"E00170001": 5.0})
    assert {f["properties"]["oa_code"] for f in oas["features"]} == {"E00170001", "E00170002"}
    assert [f["properties"]["value"] for f in oas["features"]] == [5.0, 0.0]
    assert ward_fc["features"][0]["properties"]["name"] == "Little London and Woodhouse"
    table = areas.area_table(con, {"E00170001": 5.0})
    assert table[0]["oa_code"] == "E00170001"
    assert (
        areas.area_details(con, "E00170001", Filters())["ward_name"]
        == "Little London and Woodhouse"
    )
