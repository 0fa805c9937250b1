"""What the portal shows that is more than one read: each product's unit consumption as the
quota rule computes it, the series behind an alert, and the region overview. Composed from the
read API (``storage.read``) and the rules' own domain code; no SQL here.

Unit-product consumption (``unit_product``) is the quota rule's own figure: the rules a site
gets from the registry (``alerts.rules.quota.site_quota_rules``: one per declared product and
indicator, with the standard's corrections and the allocation of the site's energy meters to
its products, ``analytics.quotas.allocate``), evaluated per local day by
``alerts.rules.quota.site_inputs`` over the day quantities of the read API. A product is charged only its own energy: its tagged
meters, its declared shares, or every energy meter at a one-product site; a site of two or
more products with an untagged energy meter is ambiguous and gets no figure, with the reason.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Final, Literal

import psycopg

from alerts.rules.annual import KEY_UNIT_TCE_PER_YEAR
from alerts.rules.annual import RULE as ANNUAL_RULE
from alerts.rules.quota import RULE as QUOTA_RULE
from alerts.rules.quota import QuotaRule, site_inputs, site_quota_rules
from analytics.coefficients import CALORIFIC_VALUE, ConversionError, ElectricityValue
from analytics.pue import grade as pue_grade
from analytics.quotas import Limits, at_precision, find, level_of, unit_consumption
from analytics.site_energy import MeterSpec, initial_state, seed_days, validate_spec
from portal.views import LOCAL
from storage.read import energy, registry
from storage.read.registry import meter_spec

#: Key energy-using unit (重点用能单位): annual comprehensive energy consumption ≥ 10 000 tce.
KEY_USER_TCE: Final = KEY_UNIT_TCE_PER_YEAR
_EPOCH: Final = date(1970, 1, 1)  # local day index 0 of analytics.site_energy


# ----------------------------------------------------------------- unit product

def _convertible(specs: dict[int, MeterSpec]) -> dict[int, MeterSpec]:
    """The specs the rules evaluate with (``alerts.engine`` leaves out what cannot convert)."""
    ok = {}
    for mid, s in specs.items():
        try:
            validate_spec(s)
        except ConversionError:
            continue
        ok[mid] = s
    return ok


def _indicator(rule: QuotaRule, reason: str | None, points: list[dict[str, Any]],
               meters: dict[str, float]) -> dict[str, Any]:
    q = rule.quota
    lim = rule.limits
    return {"product": q.product, "indicator": q.indicator, "indicator_cn": q.indicator_cn, "unit": q.unit,
            "numerator": q.numerator, "output_unit": q.output_unit, "standard": f"{q.standard} {q.table}",
            "quota_levels": {"level1": at_precision(lim.level1, q.decimals),
                             "level2": at_precision(lim.level2, q.decimals),
                             "level3": at_precision(lim.level3, q.decimals)},
            "threshold": rule.threshold, "corrections": list(lim.applied), "numerator_meters": meters,
            "not_judged": reason, "points": points}


def unit_product(conn: psycopg.Connection[Any], site_id: int, product: str, d0: date, d1: date, *,
                 electricity: ElectricityValue = CALORIFIC_VALUE, period: Literal["day", "year"] = "day",
                 ) -> list[dict[str, Any]]:
    """Per quota indicator the site declares for ``product``: its unit consumption per local
    day in [d0, d1] (``period="year"``: one point, the year to date at d1), as
    [{period_start, value, energy, output, coverage}] -- value in the indicator's unit
    (kgce/t, kWh/t, …), ``None`` below the rule's minimum output -- with its (corrected) levels,
    the meters its numerator sums with their shares, and ``not_judged`` with the reason when
    the site's allocation is ambiguous or a meter the figure needs is missing. Empty when the
    site is not visible or declares no quota indicator for ``product``."""
    found = registry.site_registry(conn, site_id)
    if found is None:
        return []
    site, rows = found
    rules = [r for r in site_quota_rules(site, rows) if r.quota.product == product]
    if not rules:
        return []
    specs = _convertible({m.id: meter_spec(m, electricity) for m in rows})
    alloc = rules[0].allocation
    if alloc is None or alloc.untagged:
        reason = (f"site {site.code} makes {len(alloc.products)} products ({', '.join(alloc.products)}) and energy"
                  f" meters {', '.join(alloc.untagged)} name none of them: no product is charged energy until each"
                  " energy meter has a product or shares" if alloc is not None else f"site {site.code} has no meters")
        return [_indicator(rule, reason, [], {}) for rule in rules]
    state = initial_state(timedelta(days=(d1 - d0).days + 2))
    state = seed_days(state, specs, [(int(r["meter_id"]), (r["day"] - _EPOCH).days, float(r["qty"]),
                                      float(r["covered_s"]), 0.0) for r in energy.meter_days(conn, site_id, d0, d1)],
                      {})
    codes = {m.id: m.code for m in rows}
    ends = [d1] if period == "year" else [d0 + timedelta(days=n) for n in range((d1 - d0).days + 1)]
    out = []
    for rule in rules:
        q = rule.quota
        one = replace(rule, periods=(period,))
        points: list[dict[str, Any]] = []
        missing: str | None = None
        if not {m for m in alloc.numerator(q, rule.meters) if m in specs}:
            missing = f"no meter of site {site.code} counts in {q.indicator_cn} ({q.numerator})"
        elif not [m for m in alloc.output_meters(q) if m in specs]:
            missing = f"no product_output meter of {q.output_product} at site {site.code}"
        for last in ends if missing is None else []:
            day_end = datetime.combine(last + timedelta(days=1), time(), LOCAL).astimezone(timezone.utc)
            for _rule, inp in site_inputs([one], alloc, state, specs, day_end, site_id=site.id,
                                          enterprise_id=site.enterprise_id):
                points.append({"period_start": inp.start.astimezone(LOCAL).date(),
                               "value": unit_consumption(inp.energy, inp.output, rule.min_output),
                               "energy": inp.energy, "output": inp.output, "coverage": round(inp.coverage, 4)})
        shares = {codes.get(m, str(m)): w for m, w in alloc.numerator(q, rule.meters).items()}
        out.append(_indicator(rule, missing, points, shares))
    return out


_QUOTA_STATUS: Final = {"1级": "level 1 (advanced)", "2级": "level 2 (new-build)", "3级": "level 3 (within limit)",
                        "超过3级(不达标)": "exceeds limit"}


def quota_status(value: float | None, levels: dict[str, float], product: str = "",
                 indicator: str = "kgce_per_t") -> str:
    """Where a unit consumption sits against an indicator's levels (GB quota standards: level 3
    is the limit for existing plants), judged as the rules judge it (``analytics.quotas.level_of``:
    at the standard's precision, on the limit is compliant)."""
    q = find(product, indicator)
    if value is None or not levels or q is None:
        return "no data"
    return _QUOTA_STATUS[level_of(value, q, Limits(levels["level1"], levels["level2"], levels["level3"]))]


# ----------------------------------------------------------------- an alert's series

def alert_series(conn: psycopg.Connection[Any], alert: dict[str, Any], *,
                 electricity: ElectricityValue = CALORIFIC_VALUE) -> tuple[str, list[tuple[datetime, float | None]]]:
    """(label, points) of the series that triggered the alert: daily PUE for PUE rules, the
    daily unit consumption of the alert's indicator for quota rules, the rolling 12-month tce
    for the 10 000 tce rule (the year up to the day the alert was last evaluated; its
    projection is drawn from the alert's details, ``charts.annual_chart``), daily tce
    otherwise; over the alert's window (or the 30 days before it), up to its clear or now."""
    details = alert["details"]
    end = (alert["cleared_at"] or datetime.now(timezone.utc)).astimezone(LOCAL).date()
    start_s = details.get("window_start")
    start = (datetime.fromisoformat(start_s).astimezone(LOCAL).date() if isinstance(start_s, str)
             else alert["started_at"].astimezone(LOCAL).date() - timedelta(days=30))
    start = min(start, end)
    site_id = alert.get("site_id")
    noon = datetime.min.time().replace(hour=12)
    if site_id is None:
        return "no site series", []
    if alert["rule"].startswith("pue"):
        rows = energy.pue(conn, site_id, start, end)
        return "daily PUE", [(datetime.combine(r["period_start"], noon, LOCAL), r["pue"]) for r in rows]
    if alert["rule"] == ANNUAL_RULE:  # the rolling 12 months (a point a day) over the year to the rule's day
        as_of = details.get("as_of_local_date")
        last = min(end, date.fromisoformat(as_of)) if isinstance(as_of, str) else end
        rows = energy.energy(conn, site_id, "rolling12", last - timedelta(days=energy.ROLLING_DAYS), last,
                             electricity=electricity)
        return "rolling 12-month tce", [(datetime.combine(r["period_start"], noon, LOCAL), r["tce"]) for r in rows]
    product = details.get("product")
    if alert["rule"].startswith(QUOTA_RULE) and isinstance(product, str):
        wanted = details.get("indicator")
        for ind in unit_product(conn, site_id, product, start, end, electricity=electricity):
            if wanted in (None, ind["indicator"]):
                return (f"daily {ind['unit']} {product} {ind['indicator']}",
                        [(datetime.combine(p["period_start"], noon, LOCAL), p["value"]) for p in ind["points"]])
    rows = energy.energy(conn, site_id, "day", start, end, electricity=electricity)
    return "daily tce", [(datetime.combine(r["period_start"], noon, LOCAL), r["tce"]) for r in rows]


# ----------------------------------------------------------------- region overview

def overview(conn: psycopg.Connection[Any], year: int, *,
             electricity: ElectricityValue = CALORIFIC_VALUE) -> dict[str, Any]:
    """Year-to-date figures per city and industry, PUE grades and quota status."""
    d0, d1 = date(year, 1, 1), min(date(year, 12, 31), datetime.now(LOCAL).date())
    sites = registry.list_sites(conn)
    by_site = energy.site_totals(conn, [s["id"] for s in sites], d0, d1, electricity=electricity) if d1 >= d0 else {}
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    ent_tce: dict[str, float] = {}
    for s in sites:
        g = groups.setdefault((s["city"], s["industry"]), {"city": s["city"], "industry": s["industry"],
                                                           "ents": set(), "sites": 0, "annual_tce": 0.0})
        tce = float(by_site.get(s["id"], {}).get("tce") or 0.0)
        g["ents"].add(s["enterprise_id"])
        g["sites"] += 1
        g["annual_tce"] += tce
        ent_tce[s["enterprise_id"]] = ent_tce.get(s["enterprise_id"], 0.0) + tce
    out_groups = [{"city": g["city"], "industry": g["industry"], "enterprises": len(g["ents"]), "sites": g["sites"],
                   "key_users": sum(1 for e in g["ents"] if ent_tce.get(e, 0.0) >= KEY_USER_TCE),
                   "annual_tce": round(g["annual_tce"], 3)} for g in groups.values()]
    grades: dict[str, int] = {}
    quota: dict[str, int] = {}
    for s in sites:
        r = by_site.get(s["id"], {})
        if s["kind"] == "data_centre":
            value = r["facility_kwh"] / r["it_kwh"] if r.get("it_kwh") else None
            label = pue_grade(value) or "no data"
            grades[label] = grades.get(label, 0) + 1
        elif d1 >= d0:
            for product in registry.site_products(conn, s["id"]):
                for ind in unit_product(conn, s["id"], product, d0, d1, electricity=electricity, period="year"):
                    value = None if ind["not_judged"] or not ind["points"] else ind["points"][-1]["value"]
                    key = quota_status(value, ind["quota_levels"], product, ind["indicator"])
                    quota[key] = quota.get(key, 0) + 1
    return {"year": year, "key_user_threshold_tce": KEY_USER_TCE, "electricity": electricity.label,
            "groups": sorted(out_groups, key=lambda g: (g["city"], g["industry"])),
            "pue_grades": [{"grade": k, "sites": v} for k, v in sorted(grades.items())],
            "quota_status": [{"status": k, "sites": v} for k, v in sorted(quota.items())]}
