"""The synthetic town: output areas, wards, postcodes, streets and addresses.

Output areas are quadrilaterals of a jittered grid (neighbours share corners, so they
tile the town with no gaps) cut to a round town around its centre; wards are groups of
neighbouring output areas around seed points. Codes use ONS formats in ranges no real
area uses (``E00900001``...), and postcodes use the area letters ``NX``, which is a valid
UK format but not a real postcode area.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

TOWN = "Kettleby"
COUNTY = "Northshire"
LAD_CODE = "E08900001"
LAD_NAME = "Kettleby"
POSTCODE_AREA = "NX"
CENTRE_LAT, CENTRE_LON = 54.38, -0.95  # open moorland: the town is fictional
OA_SIDE_KM = 0.22
UNIT_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"  # inward-code letters the Royal Mail uses
KM_PER_DEG_LAT = 111.2

_STREET_SUFFIXES = (
    "Road", "Street", "Lane", "Avenue", "Close", "Drive", "Way", "Crescent", "Grove",
    "Terrace", "Gardens", "Place", "Walk", "Rise", "View", "Mews", "Row", "Court",
)  # fmt: skip
_WARD_SUFFIXES = (
    "Park", "Green", "Hill", "Vale", "Bridge", "Moor", "Fields", "Common", "Heath",
    "Wood", "Side", "Cross", "Gate", "End", "Brook",
)  # fmt: skip


@dataclass
class Town:
    # output areas
    oa_code: np.ndarray  # str
    oa_lsoa: np.ndarray  # str
    oa_ward: np.ndarray  # int ward index
    oa_corners: np.ndarray  # (n_oa, 4, 2) lon, lat
    oa_lat: np.ndarray
    oa_lon: np.ndarray
    imd_score: np.ndarray
    imd_decile: np.ndarray
    deprivation: np.ndarray  # standardised score (mean 0, sd 1), higher = more deprived
    # wards
    ward_code: np.ndarray
    ward_name: np.ndarray
    ward_geometry: list[dict[str, Any]]
    # postcodes
    postcode: np.ndarray  # str, "NX12 3AB"
    postcode_oa: np.ndarray
    postcode_lat: np.ndarray
    postcode_lon: np.ndarray
    # addresses (dwellings and communal establishments)
    address_line_1: np.ndarray
    address_line_2: np.ndarray
    address_postcode: np.ndarray  # postcode index
    address_oa: np.ndarray
    address_uprn: np.ndarray  # str, "" when the address has none
    address_kind: np.ndarray  # str: house, flat, care_home, hostel

    @property
    def n_addresses(self) -> int:
        return len(self.address_line_1)


def _word_pool() -> list[str]:
    from faker.providers.person.en_GB import Provider as GB
    from faker.providers.person.en_IE import Provider as IE

    trees = [
        "Oak", "Ash", "Elm", "Beech", "Birch", "Willow", "Hazel", "Rowan", "Holly", "Alder",
        "Larch", "Cedar", "Maple", "Poplar", "Yew", "Hawthorn", "Chestnut", "Sycamore",
        "Lime", "Juniper", "Heather", "Bracken", "Clover", "Primrose", "Bluebell", "Lark",
        "Wren", "Heron", "Kestrel", "Swallow", "Mill", "Church", "Station", "Market",
        "Castle", "Abbey", "Quarry", "Forge", "Tannery", "Chapel", "School", "Bridge",
    ]  # fmt: skip
    # English surnames first; Irish ones only once a big town has used those up
    english = sorted(n for n in GB.last_names if n.isalpha() and len(n) <= 11)
    irish = sorted(set(IE.last_names) - set(english))
    return trees + english + [n for n in irish if n.isalpha() and len(n) <= 11]


def _ward_boundary(corner_ids: np.ndarray, vertices: np.ndarray) -> dict[str, Any]:
    """GeoJSON MultiPolygon of a group of grid cells: edges shared inside it cancel."""
    edges: dict[tuple[int, int], tuple[int, int]] = {}
    for cell in corner_ids:
        for k in range(4):
            a, b = int(cell[k]), int(cell[(k + 1) % 4])
            if (b, a) in edges:
                del edges[(b, a)]
            else:
                edges[(a, b)] = (a, b)
    nxt: dict[int, list[int]] = {}
    for a, b in edges:
        nxt.setdefault(a, []).append(b)
    rings: list[list[int]] = []
    while nxt:
        start = next(iter(nxt))
        ring = [start]
        cur = start
        while True:
            outs = nxt[cur]
            b = outs.pop()
            if not outs:
                del nxt[cur]
            if b == start:
                break
            ring.append(b)
            cur = b
        rings.append(ring)

    def area(r: list[int]) -> float:
        p = vertices[r]
        return 0.5 * float(np.sum(p[:, 0] * np.roll(p[:, 1], -1) - np.roll(p[:, 0], -1) * p[:, 1]))

    def inside(pt: np.ndarray, r: list[int]) -> bool:
        p = vertices[r]
        x, y = pt
        result = False
        for i in range(len(p)):
            x1, y1 = p[i]
            x2, y2 = p[(i + 1) % len(p)]
            if (y1 > y) != (y2 > y) and x < (x2 - x1) * (y - y1) / (y2 - y1) + x1:
                result = not result
        return result

    outers = [r for r in rings if area(r) > 0]
    holes = [r for r in rings if area(r) <= 0]
    polygons: list[list[list[list[float]]]] = []
    for outer in outers:
        coords = [_ring_coords(outer, vertices)]
        for hole in holes:
            if inside(vertices[hole[0]], outer):
                coords.append(_ring_coords(hole, vertices))
        polygons.append(coords)
    return {"type": "MultiPolygon", "coordinates": polygons}


def _ring_coords(ring: list[int], vertices: np.ndarray) -> list[list[float]]:
    pts = [[round(float(vertices[i, 0]), 6), round(float(vertices[i, 1]), 6)] for i in ring]
    return [*pts, pts[0]]


def build_town(rng: np.random.Generator, n_dwellings: int, n_communal: int, n_oa: int) -> Town:
    """Lay out a round town with ``n_oa`` output areas holding ``n_dwellings`` addresses."""
    side = math.ceil(math.sqrt(n_oa * 4 / math.pi)) + 2
    # jittered vertex grid: (side+1)^2 shared corners
    gx, gy = np.meshgrid(np.arange(side + 1, dtype=float), np.arange(side + 1, dtype=float))
    vx = gx + rng.uniform(-0.28, 0.28, gx.shape)
    vy = gy + rng.uniform(-0.28, 0.28, gy.shape)
    vx -= side / 2
    vy -= side / 2
    # the centre is denser: stretch the outskirts
    r = np.hypot(vx, vy)
    stretch = 1 + 0.5 * (r / (side / 2)) ** 1.5
    lon = CENTRE_LON + vx * stretch * OA_SIDE_KM / (KM_PER_DEG_LAT * math.cos(math.radians(54.4)))
    lat = CENTRE_LAT + vy * stretch * OA_SIDE_KM / KM_PER_DEG_LAT
    vertices = np.stack([lon.ravel(), lat.ravel()], axis=1)
    # cells: corner ids counter-clockwise (lon east, lat north)
    grid_i, grid_j = np.meshgrid(np.arange(side), np.arange(side))
    ci, cj = grid_i.ravel(), grid_j.ravel()
    w = side + 1
    corners: np.ndarray = np.stack(
        [cj * w + ci, cj * w + ci + 1, (cj + 1) * w + ci + 1, (cj + 1) * w + ci], axis=1
    )
    cx, cy = ci + 0.5 - side / 2, cj + 0.5 - side / 2
    dist = np.hypot(cx, cy) + rng.uniform(0, 0.8, cx.shape)  # ragged edge
    keep = np.sort(np.argsort(dist, kind="stable")[:n_oa])
    corners = corners[keep]
    cx, cy = cx[keep], cy[keep]
    oa_lon = vertices[corners, 0].mean(axis=1)
    oa_lat = vertices[corners, 1].mean(axis=1)

    # deprivation: an inner-city gradient plus a few deprived and affluent estates
    radius = side / 2
    field = 1.2 * np.exp(-((np.hypot(cx, cy) / (0.45 * radius)) ** 2))
    for _ in range(max(4, n_oa // 120)):
        ex, ey = rng.uniform(-radius, radius, 2)
        amp = rng.choice([-1.0, 1.0, 1.3]) * rng.uniform(0.6, 1.4)
        width = rng.uniform(0.06, 0.18) * radius + 1.5
        field += amp * np.exp(-((cx - ex) ** 2 + (cy - ey) ** 2) / (2 * width**2))
    field += rng.normal(0, 0.45, n_oa)
    deprivation = (field - field.mean()) / field.std()
    imd_score = np.round(np.clip(22 + 14 * deprivation, 0.8, 88), 2)
    order = np.argsort(-imd_score, kind="stable")
    rank = np.empty(n_oa, dtype=np.int64)
    rank[order] = np.arange(n_oa)
    imd_decile = 1 + (rank * 10) // n_oa  # 1 = most deprived tenth

    # wards: nearest of seed cells, about 30 output areas each (districts NX1..NX99)
    ward_size = max(30, math.ceil(n_oa / 190)) if n_oa >= 240 else max(4, n_oa // 8)
    n_wards = max(1, round(n_oa / ward_size))
    seeds = rng.choice(n_oa, n_wards, replace=False)
    for _ in range(6):  # a few Lloyd steps make compact wards
        d = (cx[:, None] - cx[seeds][None, :]) ** 2 + (cy[:, None] - cy[seeds][None, :]) ** 2
        ward = np.argmin(d, axis=1)
        mx = np.bincount(ward, cx, n_wards) / np.maximum(np.bincount(ward, None, n_wards), 1)
        my = np.bincount(ward, cy, n_wards) / np.maximum(np.bincount(ward, None, n_wards), 1)
        seeds = np.argmin((cx[:, None] - mx) ** 2 + (cy[:, None] - my) ** 2, axis=0)
    d = (cx[:, None] - cx[seeds][None, :]) ** 2 + (cy[:, None] - cy[seeds][None, :]) ** 2
    ward = np.argmin(d, axis=1)
    present = np.unique(ward)
    remap = np.full(n_wards, -1)
    remap[present] = np.arange(len(present))
    ward = remap[ward]
    n_wards = len(present)
    # number output areas ward by ward, as ONS codes run within areas
    oa_order = np.lexsort((cy, cx, ward))
    corners, cx, cy = corners[oa_order], cx[oa_order], cy[oa_order]
    oa_lon, oa_lat = oa_lon[oa_order], oa_lat[oa_order]
    deprivation, imd_score, imd_decile = (
        deprivation[oa_order],
        imd_score[oa_order],
        imd_decile[oa_order],
    )
    ward = ward[oa_order]
    oa_code = np.array([f"E00{900001 + i:06d}" for i in range(n_oa)], dtype=object)
    lsoa_idx = np.zeros(n_oa, dtype=np.int64)
    within = np.zeros(n_oa, dtype=np.int64)
    counter = 0
    for wi in range(n_wards):
        idx = np.flatnonzero(ward == wi)
        within[idx] = np.arange(len(idx))
        lsoa_idx[idx] = counter + np.arange(len(idx)) // 5
        counter = int(lsoa_idx[idx].max()) + 1
    oa_lsoa = np.array([f"E01{900001 + int(i):06d}" for i in lsoa_idx], dtype=object)
    words = _word_pool()
    ward_words = rng.choice(np.array(words[:400], dtype=object), n_wards, replace=False)
    ward_name = np.array(
        [f"{w} {_WARD_SUFFIXES[i % len(_WARD_SUFFIXES)]}" for i, w in enumerate(ward_words)],
        dtype=object,
    )
    ward_code = np.array([f"E05{900001 + i:06d}" for i in range(n_wards)], dtype=object)
    ward_geometry = [_ward_boundary(corners[ward == wi], vertices) for wi in range(n_wards)]

    # addresses: dwellings spread over output areas (denser where deprived: more flats)
    weight = np.exp(0.15 * deprivation) * rng.uniform(0.85, 1.15, n_oa)
    per_oa = rng.multinomial(n_dwellings, weight / weight.sum())
    address_oa = np.repeat(np.arange(n_oa), per_oa)
    # streets: about 40 dwellings each, unique names across the town
    n_streets_oa = np.maximum(1, np.round(per_oa / 40).astype(np.int64))
    n_streets = int(n_streets_oa.sum())
    roots = np.array(words, dtype=object)
    combos = len(roots) * len(_STREET_SUFFIXES)
    # roots come in order of preference, so draw from as few of them as the town needs
    usable = min(combos, max(2 * n_streets, 550 * len(_STREET_SUFFIXES)))
    pick = rng.choice(usable, n_streets, replace=False)
    street_name = np.array(
        [f"{roots[p // len(_STREET_SUFFIXES)]} {_STREET_SUFFIXES[p % len(_STREET_SUFFIXES)]}"
         for p in pick],
        dtype=object,
    )  # fmt: skip
    street_first = np.concatenate([[0], np.cumsum(n_streets_oa)[:-1]])
    address_street = street_first[address_oa] + (
        rng.integers(0, 1 << 30, n_dwellings) % n_streets_oa[address_oa]
    )
    order = np.argsort(address_street, kind="stable")
    address_oa, address_street = address_oa[order], address_street[order]
    # house numbers run along each street; some numbers are blocks of flats
    starts = np.flatnonzero(np.r_[True, address_street[1:] != address_street[:-1]])
    pos = np.arange(n_dwellings) - np.repeat(starts, np.diff(np.r_[starts, n_dwellings]))
    is_flat = rng.random(n_dwellings) < np.clip(0.12 + 0.1 * deprivation[address_oa], 0.02, 0.45)
    # flats come in blocks of 6 sharing a number
    block = pos // 6
    flat_no = pos % 6 + 1
    house_no = np.where(is_flat, 1 + 2 * block, 1 + pos)
    line1 = np.empty(n_dwellings, dtype=object)
    line2 = np.empty(n_dwellings, dtype=object)
    for i in range(n_dwellings):
        street = street_name[address_street[i]]
        if is_flat[i]:
            line1[i] = f"Flat {flat_no[i]}"
            line2[i] = f"{house_no[i]} {street}"
        else:
            line1[i] = f"{house_no[i]} {street}"
            line2[i] = ""
    kind = np.where(is_flat, "flat", "house").astype(object)

    # communal establishments: care homes and hostels, one address for many residents
    n_care = max(1, n_communal // 60)
    n_hostel = max(1, n_communal // 90)
    comm_oa = rng.choice(n_oa, n_care + n_hostel)
    comm_name = rng.choice(np.array(words[:200], dtype=object), n_care + n_hostel)
    comm_line1 = np.array(
        [f"{n} Care Home" if i < n_care else f"{n} House" for i, n in enumerate(comm_name)],
        dtype=object,
    )
    comm_line2 = np.array(
        [f"{2 * i + 2} {street_name[street_first[o]]}" for i, o in enumerate(comm_oa)],
        dtype=object,
    )
    comm_kind = np.array(["care_home"] * n_care + ["hostel"] * n_hostel, dtype=object)

    address_oa = np.concatenate([address_oa, comm_oa])
    line1 = np.concatenate([line1, comm_line1])
    line2 = np.concatenate([line2, comm_line2])
    kind = np.concatenate([kind, comm_kind])
    n_addr = len(line1)

    # postcodes: about 15 addresses each, within one output area
    pc_count = np.maximum(1, np.round(np.bincount(address_oa, minlength=n_oa) / 15)).astype(int)
    postcode_oa = np.repeat(np.arange(n_oa), pc_count)
    order = np.argsort(address_oa, kind="stable")
    address_postcode = np.empty(n_addr, dtype=np.int64)
    pc_first = np.concatenate([[0], np.cumsum(pc_count)[:-1]])
    oa_sorted = address_oa[order]
    oa_starts = np.searchsorted(oa_sorted, np.arange(n_oa))
    rank_in_oa = np.arange(n_addr) - oa_starts[oa_sorted]
    n_in_oa = np.bincount(address_oa, minlength=n_oa)
    # neighbouring addresses (in street order) share a postcode
    address_postcode[order] = pc_first[oa_sorted] + (
        rank_in_oa * pc_count[oa_sorted] // np.maximum(n_in_oa[oa_sorted], 1)
    )
    n_pc = len(postcode_oa)
    # districts: two wards each; sector and unit spread inside
    district = 1 + ward[postcode_oa] // max(1, math.ceil(n_wards / 99))
    pc_in_district = np.zeros(n_pc, dtype=np.int64)
    for dv in np.unique(district):
        idx = np.flatnonzero(district == dv)
        pc_in_district[idx] = rng.permutation(10 * 400)[: len(idx)]
    sector = pc_in_district // 400
    unit = pc_in_district % 400
    letters = UNIT_LETTERS
    postcode = np.array(
        [
            f"{POSTCODE_AREA}{d} {s}{letters[u // 20]}{letters[u % 20]}"
            for d, s, u in zip(district, sector, unit, strict=True)
        ],
        dtype=object,
    )
    # a postcode's point lies inside its output area
    t = rng.uniform(0.2, 0.8, (n_pc, 2))
    cc = corners[postcode_oa]
    p0, p1, p3 = vertices[cc[:, 0]], vertices[cc[:, 1]], vertices[cc[:, 3]]
    pt = p0 + (p1 - p0) * t[:, :1] + (p3 - p0) * t[:, 1:]
    uprn = np.where(
        rng.random(n_addr) < 0.88,
        np.array([f"9{100000000 + i * 7:011d}" for i in range(n_addr)], dtype=object),
        "",
    ).astype(object)
    return Town(
        oa_code=oa_code,
        oa_lsoa=oa_lsoa,
        oa_ward=ward,
        oa_corners=vertices[corners],
        oa_lat=oa_lat,
        oa_lon=oa_lon,
        imd_score=imd_score,
        imd_decile=imd_decile,
        deprivation=deprivation,
        ward_code=ward_code,
        ward_name=ward_name,
        ward_geometry=ward_geometry,
        postcode=postcode,
        postcode_oa=postcode_oa,
        postcode_lat=np.round(pt[:, 1], 6),
        postcode_lon=np.round(pt[:, 0], 6),
        address_line_1=line1,
        address_line_2=line2,
        address_postcode=address_postcode,
        address_oa=address_oa,
        address_uprn=uprn,
        address_kind=kind,
    )


def write_geography(town: Town, folder: Path) -> list[Path]:
    """ONS-format reference files: OA and ward boundaries, postcode directory, deprivation."""
    folder.mkdir(parents=True, exist_ok=True)
    features = []
    for i in range(len(town.oa_code)):
        ring = [[round(float(x), 6), round(float(y), 6)] for x, y in town.oa_corners[i]]
        ring.append(ring[0])
        w = int(town.oa_ward[i])
        features.append(
            {
                "type": "Feature",
                "properties": {
                    "OA21CD": town.oa_code[i],
                    "LSOA21CD": town.oa_lsoa[i],
                    "WD22CD": town.ward_code[w],
                    "WD22NM": town.ward_name[w],
                    "LAD22CD": LAD_CODE,
                    "LAD22NM": LAD_NAME,
                    "LAT": round(float(town.oa_lat[i]), 6),
                    "LONG": round(float(town.oa_lon[i]), 6),
                },
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            }
        )
    paths = []
    oa_path = folder / "output_areas.geojson"
    oa_path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    paths.append(oa_path)
    wards = [
        {
            "type": "Feature",
            "properties": {
                "WD22CD": town.ward_code[w],
                "WD22NM": town.ward_name[w],
                "LAD22CD": LAD_CODE,
                "LAD22NM": LAD_NAME,
            },
            "geometry": town.ward_geometry[w],
        }
        for w in range(len(town.ward_code))
    ]
    ward_path = folder / "wards.geojson"
    ward_path.write_text(json.dumps({"type": "FeatureCollection", "features": wards}))
    paths.append(ward_path)

    pcds = town.postcode
    oa = town.postcode_oa
    imd_rank = np.empty(len(town.oa_code), dtype=np.int64)
    imd_rank[np.argsort(-town.imd_score, kind="stable")] = np.arange(1, len(town.oa_code) + 1)
    postcodes = pa.table(
        {
            "pcd": [p.split(" ")[0].ljust(4) + p.split(" ")[1] for p in pcds],
            "pcd2": [p.split(" ")[0].ljust(4) + " " + p.split(" ")[1] for p in pcds],
            "pcds": pcds,
            "dointr": ["198001"] * len(pcds),
            "doterm": [""] * len(pcds),
            "oscty": ["E99999999"] * len(pcds),
            "oslaua": [LAD_CODE] * len(pcds),
            "osward": town.ward_code[town.oa_ward[oa]],
            "oa21cd": town.oa_code[oa],
            "lsoa21cd": town.oa_lsoa[oa],
            "lat": town.postcode_lat,
            "long": town.postcode_lon,
            "imd": imd_rank[oa],
        }
    )
    pc_path = folder / "postcodes.csv"
    pacsv.write_csv(postcodes, pc_path)
    paths.append(pc_path)
    dep = pa.table(
        {
            "oa21cd": town.oa_code,
            "lsoa21cd": town.oa_lsoa,
            "wd22cd": town.ward_code[town.oa_ward],
            "imd_score": town.imd_score,
            "imd_rank": imd_rank,
            "imd_decile": town.imd_decile,
        }
    )
    dep_path = folder / "deprivation.csv"
    pacsv.write_csv(dep, dep_path)
    paths.append(dep_path)
    return paths
