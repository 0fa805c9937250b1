"""Generate a scenario document for a fleet of any size (pure, seeded, reproducible).

Data centres cluster in 中卫 (the national computing hub's cluster) with some in 银川; plants
are placed where Ningxia's industries are (carbide and ferroalloys in 石嘴山, coal chemicals in
宁东, aluminium in 吴忠/青铜峡, clinker in 固原 …). Every enterprise gets a valid USCC for its
city. Plant levels rotate advanced → compliant → marginal → violating.
"""

from __future__ import annotations

import random
from typing import Any, Final

from simulators import uscc
from simulators.reference import COEFFICIENTS, INDUSTRY_OF, QUOTA_LEVELS, QUOTAS

PRODUCT_CITIES: Final[dict[str, tuple[str, ...]]] = {
    "calcium_carbide": ("石嘴山", "宁东", "中卫"),
    "methanol": ("宁东",),
    "coke": ("石嘴山", "宁东"),
    "ferrosilicon": ("石嘴山", "中卫"),
    "aluminium": ("吴忠", "宁东"),
    "cement_clinker": ("固原", "吴忠", "银川"),
}
#: Typical hourly output of one production line, t/h (simulation assumption).
OUTPUT_T_PER_H: Final[dict[str, float]] = {
    "calcium_carbide": 20.0, "methanol": 70.0, "coke": 110.0, "ferrosilicon": 8.0,
    "aluminium": 45.0, "cement_clinker": 200.0,
}
_CN: Final[dict[str, str]] = {
    "data_centre": "云计算", "calcium_carbide": "电石化工", "methanol": "煤化工", "coke": "焦化",
    "ferrosilicon": "硅铁冶炼", "aluminium": "铝业", "cement_clinker": "水泥",
}
_WORDS: Final = ("西部", "塞上", "黄河", "贺兰", "沙坡头", "六盘", "宁夏", "银河", "星海", "天元")
_CITY_SLUG: Final = {"银川": "yc", "石嘴山": "szs", "吴忠": "wz", "固原": "gy", "中卫": "zw", "宁东": "nd"}


def _meter(code: str, role: str, coefficient: str | None, kind: str = "register", multiplier: float = 1,
           product: str | None = None, unit: str | None = None, carrier: str | None = None,
           sim: dict[str, Any] | None = None) -> dict[str, Any]:
    unit = unit or (COEFFICIENTS[coefficient][0] if coefficient else "t")
    carrier = carrier or (coefficient.split("_")[0] if coefficient and coefficient.startswith("electricity")
                          else "natural_gas" if coefficient == "natural_gas_gasfield" else coefficient or "product")
    m: dict[str, Any] = {"code": code, "carrier": carrier, "unit": unit, "role": role, "kind": kind,
                         "multiplier": multiplier, "rollover": 1_000_000_000, "coefficient": coefficient,
                         "product": product}
    if sim:
        m["sim"] = sim
    return m


def _data_centre(rng: random.Random, i: int) -> dict[str, Any]:
    city = "中卫" if rng.random() < 0.7 else "银川"
    slug = f"{_CITY_SLUG[city]}-dc-{i:03d}"
    halls = rng.choice((0, 2, 4))
    it_meters = ([_meter("it-main", "it_load", "electricity_calorific")] if halls == 0 else
                 [_meter(f"it-hall-{h}", "it_load", "electricity_calorific", sim={"share": 1 / halls})
                  for h in range(1, halls + 1)])
    site = {
        "code": slug, "name": f"{rng.choice(_WORDS)}云基地{i}号数据中心", "kind": "data_centre",
        "new_build": rng.random() < 0.3, "pue_limit": rng.choice((1.2, 1.2, 1.25)), "pue_window_hours": 720,
        "energy_budget_tce": None, "products": [],
        "sim": {"it_capacity_mw": float(rng.choice((5, 10, 20, 40, 60))),
                "utilisation": round(rng.uniform(0.45, 0.75), 2), "daily_swing": round(rng.uniform(0.04, 0.12), 2),
                "growth_per_year": round(rng.uniform(0.0, 0.3), 2), "pue_min": round(rng.uniform(1.08, 1.18), 2),
                "pue_max": round(rng.uniform(1.28, 1.5), 2)},
        "gateways": [{"id": f"gw-{slug}-a", "meters": it_meters + [
            _meter("facility-main", "total_facility", "electricity_calorific", multiplier=10)]}],
    }
    return {"id": uscc.generate(rng, city), "name": f"{city}{rng.choice(_WORDS)}{_CN['data_centre']}有限公司",
            "city": city, "industry": "data_centre", "sites": [site]}


def _plant(rng: random.Random, i: int) -> dict[str, Any]:
    product = list(QUOTAS)[i % len(QUOTAS)]
    level = QUOTA_LEVELS[(i // len(QUOTAS) + i) % len(QUOTA_LEVELS)]
    city = rng.choice(PRODUCT_CITIES[product])
    slug = f"{_CITY_SLUG[city]}-{product.replace('_', '')[:6]}-{i:03d}"
    q = QUOTAS[product]
    meters = [_meter("output", "product_output", None, product=product, unit="t", carrier="product")]
    meters += [_meter(f"in-{coef.replace('_', '-')}", "consumed", coef, multiplier=100 if coef.startswith("elec") else 1)
               for coef, _ in q.carrier_shares]
    if q.export_kgce_per_t > 0:
        meters.append(_meter(f"out-{q.export_coefficient}", "exported", q.export_coefficient, kind="interval"))
    site = {
        "code": slug, "name": f"{rng.choice(_WORDS)}{q.name_cn}装置{i}", "kind": "plant",
        "new_build": rng.random() < 0.25, "pue_limit": None, "pue_window_hours": 720, "energy_budget_tce": None,
        "products": [{"product": product, "indicator": "kgce_per_t"}],
        "sim": {"product": product, "output_t_per_h": OUTPUT_T_PER_H[product] * round(rng.uniform(0.6, 1.4), 2),
                "level": level, "daily_swing": round(rng.uniform(0.0, 0.05), 2)},
        "gateways": [{"id": f"gw-{slug}-a", "meters": meters}],
    }
    return {"id": uscc.generate(rng, city), "name": f"{city}{rng.choice(_WORDS)}{_CN[product]}有限公司",
            "city": city, "industry": INDUSTRY_OF[product], "sites": [site]}


def fleet_document(data_centres: int, plants: int, seed: int = 0, duration: str = "7d",
                   interval: str = "15m") -> dict[str, Any]:
    """A scenario document: ``data_centres`` + ``plants`` enterprises with one site each."""
    rng = random.Random(seed)
    enterprises = [_data_centre(rng, i) for i in range(data_centres)] + [_plant(rng, i) for i in range(plants)]
    return {"name": f"fleet-{data_centres}dc-{plants}p-s{seed}",
            "simulation": {"duration": duration, "interval": interval, "mode": "backfill", "seed": seed},
            "enterprises": enterprises, "faults": []}
