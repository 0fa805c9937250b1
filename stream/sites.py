"""Per-site rule state held by a worker, fed from the domain core.

For each site on this worker's partitions: the streaming energy state
(``analytics.site_energy``) and the rule state (``alerts.engine``). A site seen for the first
time (start-up, a partition moved here, or after a backend error) is rebuilt from the
database: its recent readings (the fine horizon) are replayed through the same pure functions,
the days before them up to the horizon (the annual rules' two calendar years) come from the
daily rollups as day totals (``analytics.day_totals``), and its active alerts are restored,
so a restart neither forgets an open alert nor opens it twice.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import itemgetter

from alerts import engine
from analytics import day_totals
from analytics import site_energy as se
from nxem.contract import AlertEvent, ReadingBatch
from stream import metrics as m

log = logging.getLogger(__name__)
_TS = itemgetter(1)  # a row's time: the sort key of every poll's rows (a C call, not a lambda)


@dataclass(frozen=True)
class Registry:
    """What the rules need to know about sites and meters (built from storage rows)."""

    sites: Mapping[int, engine.SiteRules]
    meters: Mapping[int, se.MeterSpec]  # meter_id -> spec
    meters_by_site: Mapping[int, Mapping[int, se.MeterSpec]]


History = Callable[[int, Iterable[int], datetime], list[tuple[int, datetime, float]]]
ActiveAlerts = Callable[[int], list[AlertEvent]]
#: (site, meters, since, until) -> daily rollup rows of the local days in [since, until)
DayHistory = Callable[[int, Iterable[int], datetime, datetime], list[day_totals.DayRollup]]


class SiteEngine:
    """Implements ``stream.service.RuleEngine`` over the pure domain functions."""

    def __init__(
        self,
        registry: Callable[[], Registry],
        history: History,
        active_alerts: ActiveAlerts,
        horizon: timedelta,
        owns: Callable[[int], bool] = lambda _site_id: False,
        fine_horizon: timedelta | None = None,
        day_history: DayHistory | None = None,
    ) -> None:
        self._registry, self._history, self._active = registry, history, active_alerts
        self._horizon = horizon
        self._fine = fine_horizon  # 15-minute detail kept this long; older days keep totals only
        self._days = day_history  # None: rebuild from raw readings over the whole horizon
        self._owns = owns  # site id -> True when its readings come to this worker's partitions
        self._energy: dict[int, se.SiteEnergyState] = {}
        self._rules: dict[int, engine.SiteRulesState] = {}
        self._sweep: list[int] = []  # sites left in the current silence sweep

    def reset(self) -> None:
        self._energy.clear()
        self._rules.clear()
        self._sweep.clear()
        m.SITES.set(0)

    def forget(self, site_id: int) -> None:
        """Drop one site's state (rebuilt from the database when seen again), e.g. after its
        rules failed half-way through a batch."""
        self._energy.pop(site_id, None)
        self._rules.pop(site_id, None)
        m.SITES.set(len(self._energy))

    def _ensure(self, site_id: int, reg: Registry, first_ts: datetime) -> None:
        if site_id in self._energy:
            return
        specs = reg.meters_by_site.get(site_id, {})
        state = se.initial_state(retention=self._horizon, fine_retention=self._fine)
        since, days = first_ts - self._horizon, []
        if self._days is not None:
            # the days before the fine horizon as day totals from the daily rollups (one row per
            # meter and day), the rest from the raw readings
            split = se.local_day_start(first_ts, math.ceil(state.fine_retention / timedelta(days=1)))
            start = se.local_day_start(since)
            if start < split:
                days = self._days(site_id, specs.keys(), start, split)
                state, since = day_totals.seed_from_rollups(state, specs, days), split
        rows = self._history(site_id, specs.keys(), since)
        if rows:
            state, _ = se.apply_readings(state, specs, rows)
        self._energy[site_id] = state
        # a stored reading was evaluated in the poll that stored it: resume after the newest (of
        # the raw readings replayed and of the daily rollups taken as day totals)
        newest = max([r[1] for r in rows] + [d.last_ts for d in days], default=None)
        self._rules[site_id] = engine.restore_state(self._active(site_id), newest)
        m.SITES.set(len(self._energy))
        log.info("site state rebuilt site_id=%s readings=%s day_rollups=%s", site_id, len(rows), len(days))

    def apply(self, batches: list[ReadingBatch]) -> list[AlertEvent]:
        reg = self._registry()
        per_site: dict[int, list[tuple[int, datetime, float]]] = {}
        for b in batches:
            rows = per_site.setdefault(b.site_id, [])
            rows.extend((r.meter_id, r.ts, r.value) for r in b.readings)
        out: list[AlertEvent] = []
        for site_id, rows in per_site.items():
            rules = reg.sites.get(site_id)
            if rules is None:
                continue  # not registered any more: readings are stored, no rules apply
            rows.sort(key=_TS)
            self._ensure(site_id, reg, rows[0][1])
            specs = reg.meters_by_site.get(site_id, {})
            energy, _quality = se.apply_readings(self._energy[site_id], specs, rows)
            self._energy[site_id] = energy
            now = rows[-1][1]  # event time: the newest reading of this site in the poll
            state, events = engine.evaluate_site(rules, self._rules[site_id], energy, specs, now)
            self._rules[site_id] = state
            out.extend(events)
        return out

    @property
    def sweeping(self) -> bool:
        """A silence sweep is under way (``tick`` has sites left to check)."""
        return bool(self._sweep)

    def tick(self, now: datetime, budget: int = 10_000) -> list[AlertEvent]:
        """Wall-clock checks (a meter gone silent) of every site this worker is responsible
        for: the sites it holds, and registered sites of its partitions it has not seen yet
        (a gateway that died while no worker ran still has its history in the database).

        A sweep is spread over calls, about ``budget`` meters each (100 000 meters cost ≈ 0.2 s
        here: one call would stall that poll); ``sweeping`` tells whether it goes on."""
        reg = self._registry()
        if not self._sweep:
            self._sweep = [sid for sid in reg.sites if sid in self._energy or self._owns(sid)]
        out: list[AlertEvent] = []
        done = 0
        while self._sweep and done < budget:
            site_id = self._sweep.pop()
            rules = reg.sites.get(site_id)
            if rules is None:
                continue
            self._ensure(site_id, reg, now)
            specs = reg.meters_by_site.get(site_id, {})
            state, events = engine.evaluate_silence(rules, self._rules[site_id], self._energy[site_id], specs, now)
            self._rules[site_id] = state
            out.extend(events)
            done += len(specs) + 1
        return out
