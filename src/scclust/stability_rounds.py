"""Adaptive stability: bootstraps in rounds, each round only for the columns whose outcome is not settled.

A first round of :data:`FIRST_ROUND` bootstraps goes to every level-1 column; after each round STABILITY_SUMMARY
decides, from each column's statistics and their jackknife standard errors, which columns get the next round.
Bootstrap ``b`` keeps its seed and cells whatever round it runs in, so a column with ``k`` bootstraps has exactly
the first ``k`` of a fixed run, and its statistics are the same bits.

A column is settled when another round could not change the recommendation through it. Each statistic's
interval is its estimate +- 1.96 reported standard errors: the reported error is the jackknife's widened by
:func:`error_scale` (Student's t over the normal quantile, 2.19x for 3 bootstraps, 1.31x for 6, 1.15x for 10),
because the jackknife error of so few bootstraps is itself uncertain. Without the widening a column settled after 3
bootstraps read, on upsampled pbmc68k, up to 4.5 of its errors away from a fixed run of 10 (docs/benchmarks.md
section 11); with it, 7-11% of median stabilities lie beyond two errors of 20 bootstraps' with 3 bootstraps, 2-5%
with 10 (section 12).

- its outcome under the rule is sure: both the median and the lowest cluster stability lie above their marks
  (0.75, 0.5) with their whole interval (it passes), or one of them lies below with its whole interval (it fails);
- or it is uncertain but a higher resolution of its algorithm surely passes: the rule takes the highest passing
  resolution, so this column cannot be the one recommended;
- and, while no column of its algorithm surely passes (so the fallback, the highest cell-weighted stability,
  may decide), its cell-weighted stability's interval does not reach the best one's.
"""

from __future__ import annotations

from typing import Any

from scclust.stability import DISSOLVED, STABLE

FIRST_ROUND = 3
MAX_ROUNDS = 4  # the workflow unrolls this many rounds (subworkflows/local/stability.nf)
CONFIDENCE = 0.95


def round_targets(cap: int, adaptive: bool) -> list[int]:
    """Cumulative bootstraps a column can have after each round: doubling from :data:`FIRST_ROUND` up to ``cap``.

    The last round always reaches ``cap``; a fixed run (or a cap within the first round) is one round.
    """
    if cap == 0:
        return []
    if not adaptive or cap <= FIRST_ROUND:
        return [cap]
    targets = [FIRST_ROUND]
    while len(targets) < MAX_ROUNDS - 1 and 2 * targets[-1] < cap:
        targets.append(2 * targets[-1])
    return [*targets, cap]


def error_scale(k: int) -> float:
    """The factor on the jackknife error of ``k >= 2`` bootstraps.

    With it, +- 1.96 reported errors is the 95% Student-t interval with ``k - 1`` degrees of freedom.
    """
    from scipy.stats import norm, t

    return float(t.ppf(0.5 + CONFIDENCE / 2, k - 1) / norm.ppf(0.5 + CONFIDENCE / 2))


def _interval(entry: dict[str, Any], key: str) -> tuple[float, float]:
    """The statistic's interval; unbounded without a standard error (one bootstrap)."""
    from scipy.stats import norm

    value, se = entry[key], entry.get(f"{key}_se")
    if se is None:
        return -float("inf"), float("inf")
    half = float(norm.ppf(0.5 + CONFIDENCE / 2)) * se
    return value - half, value + half


def outcome(entry: dict[str, Any]) -> str:
    """``"pass"``, ``"fail"`` or ``"uncertain"``: the column's outcome under the rule, given its errors."""
    (m_lo, m_hi), (low_lo, low_hi) = _interval(entry, "stability"), _interval(entry, "stability_min")
    if m_hi < STABLE or low_hi < DISSOLVED:
        return "fail"
    if m_lo >= STABLE and low_lo >= DISSOLVED:
        return "pass"
    return "uncertain"


def describe(entry: dict[str, Any]) -> str:
    """The rule's statistics of a column with their standard errors, for the reasons the report shows."""

    def one(key: str, label: str) -> str:
        se = entry.get(f"{key}_se")
        return f"{label} {entry[key]:.3f}" + ("" if se is None else f" ± {se:.3f}")

    return ", ".join([one("stability", "median"), one("stability_min", "lowest"), one("stability_weighted", "weighted")])


def pending(columns: dict[str, dict[str, Any]], placement: dict[str, tuple[str, float]]) -> dict[str, str]:
    """The columns that need another round, each with the reason (see the module's docstring).

    Parameters
    ----------
    columns
        The stability entries of the level-1 columns (:func:`scclust.stability_summary.column_summary`).
    placement
        Each column's algorithm and resolution.
    """
    by_algorithm: dict[str, list[str]] = {}
    for name in columns:
        by_algorithm.setdefault(placement[name][0], []).append(name)
    out = {}
    for names in by_algorithm.values():
        outcomes = {n: outcome(columns[n]) for n in names}
        passing = [placement[n][1] for n in names if outcomes[n] == "pass"]
        top = max(passing, default=None)
        for n in names:
            if outcomes[n] == "uncertain" and (top is None or placement[n][1] > top):
                out[n] = f"an interval reaches a mark of the rule (0.75 median, 0.5 lowest): {describe(columns[n])}"
        if top is None:
            fallback = "no column surely meets the rule, and the highest weighted stability is not sure"
            best = max(names, key=lambda n: columns[n]["stability_weighted"])
            best_lo = _interval(columns[best], "stability_weighted")[0]
            rivals = [n for n in names if n != best and _interval(columns[n], "stability_weighted")[1] >= best_lo]
            for n in [best, *rivals] if rivals else []:
                out.setdefault(n, f"{fallback}: {describe(columns[n])}")
    return out


def certainty(columns: dict[str, dict[str, Any]], placement: dict[str, tuple[str, float]]) -> dict[str, str]:
    """Per algorithm, whether more bootstraps could change its recommended column, in words for the user.

    The recommendation itself applies the rule to the estimates (so an adaptive and a fixed run recommend alike);
    this says how sure it is: the columns that would still be :func:`pending`, had the cap not been reached.
    """
    open_columns = pending(columns, placement)
    out = {}
    for algorithm in sorted({a for a, _ in placement.values()}):
        names = sorted((n for n in open_columns if placement[n][0] == algorithm), key=lambda n: placement[n][1])
        if not names:
            out[algorithm] = "sure: no column that could change it has an interval reaching a mark of the rule"
        else:
            listed = "; ".join(f"{n}: {open_columns[n]}" for n in names)
            out[algorithm] = f"uncertain: more bootstraps (--stability_bootstraps) could change it through {listed}"
    return out
