"""The UN M49 hierarchy: country -> sub-region -> region, read from data/m49.csv."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DATA_DIR = Path(__file__).parent / "data"
M49_FILE = DATA_DIR / "m49.csv"


@dataclass(frozen=True, slots=True)
class Country:
    iso2: str
    name: str
    m49: str
    subregion_code: str
    subregion: str
    intermediate_region_code: str
    intermediate_region: str
    region_code: str
    region: str


@lru_cache(maxsize=1)
def countries() -> dict[str, Country]:
    """Every country and territory of the M49 table, by ISO 3166-1 alpha-2 code."""
    with M49_FILE.open(encoding="utf-8", newline="") as handle:
        return {
            row["iso2"]: Country(
                iso2=row["iso2"],
                name=row["name"],
                m49=row["m49"],
                subregion_code=row["subregion_code"],
                subregion=row["subregion"],
                intermediate_region_code=row["intermediate_region_code"],
                intermediate_region=row["intermediate_region"],
                region_code=row["region_code"],
                region=row["region"],
            )
            for row in csv.DictReader(handle)
        }
