"""The workload rule and the staffing checks (一格三员), written once for the scorecard, the check and the proposals.

Workload is households per full-time grid worker against ``Settings.households_per_worker`` (the plan: one
full-time worker per 300 households). With ``special_group_weight`` above 1 a special-group household counts as
that many households (its visits cost time); the default 1.0 counts every household once. The same figures make
the scorecard's over-capacity check (:func:`geo.diagnose.grid_workload`), ``redraw check`` and the default band
of ``redraw propose`` (:func:`workload_band`).

The staffing checks: each grid has at least one full-time worker and the two part-time officers (information
officer 信息员, mediator 调解员) or names what is missing (:func:`grid_staffing`); the share of full-time workers
among the grid workers (网格员专职化比例: full-time and part-time grid workers, ``part_time_workers``; the part-time
officers are not grid workers) is :func:`full_time_share`.

Example
-------
>>> import pandas as pd
>>> grids = pd.DataFrame({"worker_name": ["王芳", ""], "full_time_workers": [2, 0],
...                       "info_officer_name": ["李丽", None], "mediator_name": [None, None]})
>>> grid_staffing(grids)["staff_missing"].tolist()
['mediator', 'full_time_worker,info_officer,mediator']
>>> workload_band(2)
(300, 600)
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from geo.settings import Settings

#: The floor of the default redraw band as a share of its ceiling. Half leaves the proposer room to keep every
#: grid in one piece with whole estates: on the sample, 360–600 (0.6, the ratio of the common practice's 300–500)
#: left a grid in several pieces in 3 of 5 communities, 300–600 in none.
FLOOR_SHARE = 0.5
#: The special groups the workload weighs: those with visit rules (the same as ``geo.risk.WATCHED_GROUPS``;
#: migrants and tenants are registered, not visited on a schedule).
WEIGHTED_GROUPS = ("elderly_alone", "child_in_difficulty", "mental_disorder")
#: The roles of 一格三员, in the order ``staff_missing`` names them.
ROLES = ("full_time_worker", "info_officer", "mediator")


def grid_workers(grids: pd.DataFrame) -> np.ndarray:
    """Full-time workers of each grid: ``full_time_workers`` where given, else 1 if ``worker_name`` is set, else 0.

    Examples
    --------
    >>> import pandas as pd
    >>> grid_workers(pd.DataFrame({"worker_name": ["王芳", "", "李强"], "full_time_workers": [3, None, None]})).tolist()
    [3, 0, 1]
    """
    named = _named(grids, "worker_name")
    default = pd.Series(np.where(named, 1, 0), index=grids.index)
    if "full_time_workers" in grids.columns and grids["full_time_workers"].notna().any():
        workers = pd.to_numeric(grids["full_time_workers"], errors="coerce").round().astype("Int64")
    else:
        workers = pd.Series(pd.NA, index=grids.index, dtype="Int64")
    return workers.fillna(default).to_numpy(dtype=np.int64)


def grid_part_time_workers(grids: pd.DataFrame) -> np.ndarray:
    """Part-time grid workers (兼职网格员) of each grid: ``part_time_workers`` where given, else 0.

    Examples
    --------
    >>> import pandas as pd
    >>> grid_part_time_workers(pd.DataFrame({"part_time_workers": [2, None]})).tolist()
    [2, 0]
    """
    if "part_time_workers" not in grids.columns:
        return np.zeros(len(grids), dtype=np.int64)
    values = pd.to_numeric(grids["part_time_workers"], errors="coerce").round().astype("Int64")
    return values.fillna(0).clip(lower=0).to_numpy(dtype=np.int64)


def workload_weights(households: pd.DataFrame, *, settings: Settings = Settings()) -> np.ndarray:
    """What each household counts for in the workload: ``special_group_weight`` if it belongs to a group with
    visit rules (:data:`WEIGHTED_GROUPS`), else 1 (a frame without those columns counts every household once).

    Examples
    --------
    >>> import pandas as pd
    >>> hh = pd.DataFrame({"elderly_alone": [True, False], "migrant": [False, False]})
    >>> workload_weights(hh, settings=Settings(special_group_weight=1.5)).tolist()
    [1.5, 1.0]
    """
    special = np.zeros(len(households), dtype=bool)
    for group in WEIGHTED_GROUPS:
        if group in households.columns:
            special |= households[group].astype("boolean").fillna(False).to_numpy(dtype=bool)
    return np.where(special, float(settings.special_group_weight), 1.0)


def workload_ceiling(workers, *, settings: Settings = Settings()) -> np.ndarray:
    """The workload (weighted households) that ``workers`` full-time workers carry by the rule: workers × standard.

    Examples
    --------
    >>> workload_ceiling([0, 1, 2]).tolist()
    [0, 300, 600]
    """
    return np.asarray(workers, dtype=np.int64) * int(settings.households_per_worker)


def is_over_capacity(load, workers, *, settings: Settings = Settings()) -> np.ndarray:
    """The workload check: a grid is over capacity when its load exceeds what its workers carry (a grid with
    households and no worker always is).

    Examples
    --------
    >>> is_over_capacity([300, 301, 10], [1, 1, 0]).tolist()
    [False, True, True]
    """
    return np.asarray(load, dtype=float) > workload_ceiling(workers, settings=settings)


def workload_band(workers: int = 1, *, settings: Settings = Settings(), mean_weight: float = 1.0) -> tuple[int, int]:
    """The redraw band that keeps a grid of ``workers`` full-time workers within the rule: ceiling = workers ×
    standard ÷ the mean household weight (households, not weighted), floor = :data:`FLOOR_SHARE` of it.

    Examples
    --------
    >>> workload_band(1)
    (150, 300)
    >>> workload_band(1, mean_weight=1.2)
    (125, 250)
    """
    ceiling = max(1, math.floor(max(int(workers), 1) * settings.households_per_worker / max(mean_weight, 1.0)))
    return max(1, math.ceil(FLOOR_SHARE * ceiling)), ceiling


def staffing_band(grids: pd.DataFrame, households: pd.DataFrame, *,
                  settings: Settings = Settings()) -> tuple[tuple[int, int], int]:
    """The default band of a community (or communities) from its current staffing and the workload rule.

    The workers per grid assumed are those of the community's typical staffed grid (the lower median of the
    staffed current grids' full-time workers; 1 when none is staffed): a proposed grid that takes the id and
    workers of such a grid stays within the rule inside the band; one that takes fewer (or none, a new grid)
    may not, and the proposal says so.

    Returns
    -------
    tuple
        The band ``(floor, ceiling)`` and the workers per grid it assumes.

    Examples
    --------
    >>> import pandas as pd
    >>> grids = pd.DataFrame({"worker_name": ["王芳", "李强", "张伟", ""], "full_time_workers": [2, 3, 2, 0]})
    >>> staffing_band(grids, pd.DataFrame(index=range(10)))
    ((300, 600), 2)
    """
    workers = grid_workers(grids)
    staffed = workers[workers > 0]
    k = int(np.sort(staffed)[(len(staffed) - 1) // 2]) if len(staffed) else 1
    weights = workload_weights(households, settings=settings)
    mean_weight = float(weights.mean()) if len(weights) else 1.0
    return workload_band(k, settings=settings, mean_weight=mean_weight), k


def band_warning(band: tuple[int, int], workers: int = 1, *, settings: Settings = Settings(),
                 mean_weight: float = 1.0) -> str | None:
    """A line for a band whose ceiling lets a grid of ``workers`` exceed the workload rule (else None).

    Examples
    --------
    >>> print(band_warning((300, 500), 1)[:76])
    the band 300-500 lets a grid of 1 full-time worker hold up to 500 households
    >>> band_warning((150, 300), 1) is None
    True
    """
    rule = workload_band(workers, settings=settings, mean_weight=mean_weight)[1]
    if band[1] <= rule:
        return None
    return (f"the band {band[0]}-{band[1]} lets a grid of {workers} full-time worker{'s' if workers != 1 else ''} "
            f"hold up to {band[1]} households, above the workload rule ({settings.households_per_worker} per worker"
            f"{'' if mean_weight <= 1 else ', weighted'}): such grids show as over capacity")


def allot_workers(workload, carried, pool: int, *, settings: Settings = Settings()) -> np.ndarray:
    """Full-time workers for proposed grids from a community's ``pool`` of them, by the workload rule.

    Each grid needs ⌈workload ÷ standard⌉ workers (at least 1). When the pool covers every need, each grid gets
    its need; otherwise each keeps what it ``carried`` up to its need, and the rest of the pool goes one by one
    to the grid with the largest load per worker (ties: the first): the grids still over the rule are those
    the pool cannot staff.

    Examples
    --------
    >>> allot_workers([550, 250, 610], [1, 1, 0], pool=6).tolist()
    [2, 1, 3]
    >>> allot_workers([550, 250, 610], [1, 1, 0], pool=4).tolist()
    [1, 1, 2]
    """
    load = np.asarray(workload, dtype=float)
    need = np.maximum(1, np.ceil(load / settings.households_per_worker)).astype(np.int64)
    if need.sum() <= pool:
        return need
    out = np.minimum(np.asarray(carried, dtype=np.int64), need)
    for _ in range(max(0, int(pool) - int(out.sum()))):  # one step per worker of a community, not per household
        per = np.where(out < need, load / np.maximum(out, 0.5), -1.0)
        out[int(np.argmax(per))] += 1
    return out


def grid_staffing(grids: pd.DataFrame) -> pd.DataFrame:
    """The 一格三员 check of each grid: ``part_time_officers`` (0–2), ``staff_missing`` (the missing roles of
    :data:`ROLES`, comma-separated, empty when complete: the full-time worker needs a ``worker_name`` and at least
    one full-time worker) and ``staffing_complete``; aligned with ``grids``.

    Examples
    --------
    >>> import pandas as pd
    >>> g = pd.DataFrame({"worker_name": ["王芳"], "info_officer_name": ["李丽"], "mediator_name": ["赵军"]})
    >>> grid_staffing(g)["staffing_complete"].tolist()
    [True]
    """
    worker = (grid_workers(grids) > 0) & _named(grids, "worker_name")  # a post without a name is not yet staffed
    has = np.column_stack([worker, _named(grids, "info_officer_name"), _named(grids, "mediator_name")])
    names = np.array(ROLES, dtype=object)
    missing = np.array([",".join(names[~row]) for row in has], dtype=object) if len(has) else np.zeros(0, object)
    return pd.DataFrame({"part_time_officers": has[:, 1:].sum(axis=1).astype(np.int64),
                         "staff_missing": missing, "staffing_complete": has.all(axis=1)}, index=grids.index)


def full_time_share(workers, part_time_workers) -> float | None:
    """网格员专职化比例: full-time grid workers ÷ all grid workers (full-time + part-time grid workers 兼职网格员);
    None without grid workers. The part-time officers of 一格三员 (信息员, 调解员) are not grid workers: a grid
    staffed exactly by 一格三员 has a share of 1.

    Examples
    --------
    >>> full_time_share([2, 1], [0, 1])
    0.75
    >>> full_time_share([1], [0])
    1.0
    """
    full = int(np.sum(workers))
    total = full + int(np.sum(part_time_workers))
    return round(full / total, 4) if total else None


def staffing_summary(grids: pd.DataFrame) -> dict:
    """The 一格三员 check and 专职化比例 of some grids (with :func:`geo.diagnose.grid_workload`'s columns), for
    summary.json: ``staffing_incomplete`` (grids), ``staff_missing`` (grids per role), ``full_time_workers``,
    ``part_time_workers``, ``part_time_officers`` and ``full_time_share`` (``part_time_workers`` 0 where the
    grids lack the column).

    Examples
    --------
    >>> import pandas as pd
    >>> g = pd.DataFrame({"workers": [2, 0], "part_time_officers": [2, 1], "staffing_complete": [True, False],
    ...                   "staff_missing": ["", "full_time_worker,mediator"]})
    >>> staffing_summary(g)["staff_missing"]
    {'full_time_worker': 1, 'info_officer': 0, 'mediator': 1}
    """
    missing = "," + grids["staff_missing"].astype(str) + ","
    part_time = grid_part_time_workers(grids)
    return {"staffing_incomplete": int((~grids["staffing_complete"].astype(bool)).sum()),
            "staff_missing": {role: int(missing.str.contains(f",{role},", regex=False).sum()) for role in ROLES},
            "full_time_workers": int(grids["workers"].sum()),
            "part_time_workers": int(part_time.sum()),
            "part_time_officers": int(grids["part_time_officers"].sum()),
            "full_time_share": full_time_share(grids["workers"], part_time)}


def _named(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    values = frame[column].astype("string").str.strip()
    return (values.notna() & (values != "")).fillna(False).to_numpy(dtype=bool)
