"""The leaderboard by configuration, for sweeps that train each configuration several times
(``sweep.repeats``): the mean of each repeat's objective and metrics, their standard deviation
and 95% confidence interval, a rank by the mean, and which configurations the data cannot
separate from #1 ("tied").

The interval is Student's t interval of the mean (``mean ± t(0.975, n-1) · s / √n``): where the
mean of many more repeats would lie, 19 times in 20, if the repeats were independent draws. "Tied
with #1" is a paired test over the seeds two configurations share (repeat k trains with seed
``train.seed + k`` in every configuration, on the same splits): Wilcoxon's signed-rank test from 6
shared seeds, a paired t test below that (Wilcoxon cannot reach p < 0.05 with fewer than 6 pairs);
two-sided, tied when p >= 0.05. No TensorFlow import.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from sweeper.record import Status

CONFIGURATIONS_FIRST = ["rank", "config_id", "label", "n", "objective", "objective_std",
                        "objective_ci", "tied", "p_value"]
RANKED = [s.value for s in Status if s.scored]  # as the leaderboard ranks trials
ALPHA = 0.05  # a p-value below it separates a configuration from #1
MIN_WILCOXON = 6  # fewer pairs: Wilcoxon's smallest two-sided p-value is 0.0625 > ALPHA
# Per-trial columns that are not scores of the trial (not averaged over its repeats).
_NOT_SCORES = {"rank", "repeat", "seed", "best_epoch", "epochs", "objective"}


def interval(values: list[float]) -> tuple[float, float | None, float | None]:
    """Mean, standard deviation and the half-width of the 95% t interval (None for n < 2)."""
    from scipy import stats

    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, None, None
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, std, float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n)


def paired_p(a: dict[int, float], b: dict[int, float]) -> float | None:
    """Two-sided p-value that two configurations differ, over the seeds both have (None: fewer
    than 2 shared seeds, nothing to test)."""
    from scipy import stats

    shared = sorted(a.keys() & b.keys())
    if len(shared) < 2:
        return None
    diffs = [a[s] - b[s] for s in shared]
    if all(d == 0 for d in diffs):
        return 1.0
    if len(shared) >= MIN_WILCOXON:
        return float(stats.wilcoxon(diffs).pvalue)
    if len(set(diffs)) == 1:  # a constant non-zero difference: no spread, as separated as can be
        return 0.0
    return float(stats.ttest_rel([a[s] for s in shared], [b[s] for s in shared]).pvalue)


def by_configuration(trials: pd.DataFrame, mode: str) -> pd.DataFrame:
    """One row per configuration of ranked trials (``leaderboard.rank``'s table with its
    ``config_id`` and ``seed`` columns), best mean first; configurations without a scored
    repeat last, unranked."""
    scored = trials[trials["status"].isin(RANKED) & trials["objective"].notna()
                    & trials["rank"].notna()]
    hps = [c for c in trials if c.startswith("hp.")]
    metrics = [c for c in trials if c not in _NOT_SCORES and not c.startswith("hp.")
               and c != "objective" and pd.api.types.is_float_dtype(trials[c])]
    rows: list[dict[str, Any]] = []
    values: dict[str, dict[int, float]] = {}
    for config_id, group in trials.groupby("config_id", sort=False):
        done = scored[scored["config_id"] == config_id]
        first = group.iloc[0]
        row: dict[str, Any] = {"config_id": config_id, "label": first["config_label"],
                               "n": len(done), "trials": len(group)}
        row.update({c: first[c] for c in hps})
        if "params" in group and group["params"].notna().any():  # the same in every repeat
            row["params"] = int(group["params"].dropna().iloc[0])
        if len(done):
            mean, std, ci = interval([float(v) for v in done["objective"]])
            row.update(objective=mean, objective_std=std, objective_ci=ci)
            for c in metrics:
                got = [float(v) for v in done[c].dropna()]
                if got:
                    row[c], _, row[f"{c}_ci"] = interval(got)
            best = done.sort_values("rank").iloc[0]
            row["best_trial"] = best["trial_id"]
            row["values"] = " ".join(f"{v:.4g}" for v in done["objective"])
            values[str(config_id)] = {int(s): float(v) for s, v in
                                      zip(done["seed"], done["objective"], strict=True)}
        rows.append(row)
    table = pd.DataFrame(rows)
    ranked = table[table["n"] > 0].sort_values(["objective", "config_id"],
                                               ascending=[mode == "min", True], kind="stable")
    rest = table.drop(ranked.index)
    ranked = ranked.assign(rank=range(1, len(ranked) + 1))
    if len(ranked):
        top = values[str(ranked.iloc[0]["config_id"])]
        p = [paired_p(top, values[str(c)]) for c in ranked["config_id"]]
        p[0] = None
        ranked["p_value"] = pd.array(p, dtype="Float64")
        ranked["tied"] = [i > 0 and v is not None and v >= ALPHA for i, v in enumerate(p)]
    out = pd.concat([ranked, rest.assign(rank=None)], ignore_index=True)
    out["rank"] = out["rank"].astype("Int64")
    ordered = [c for c in CONFIGURATIONS_FIRST if c in out] + sorted(c for c in out
                                                                     if c.startswith("hp."))
    return out[ordered + [c for c in out if c not in ordered]]


def shown(row: Any) -> str:
    """``0.842 ± 0.011 (n=3)``: a configuration's mean objective and its interval."""
    n = int(row["n"])
    ci = row.get("objective_ci")
    spread = f" ± {ci:.3f}" if ci is not None and not pd.isna(ci) else ""
    return f"{row['objective']:.3f}{spread} (n={n})"


def tie_break(table: pd.DataFrame, rule: str, trials: pd.DataFrame) -> tuple[Any, str]:
    """The configuration to promote under ``rule`` (none, params, duration) among #1 and those
    tied with it, and the reason in words."""
    ranked = table[table["rank"].notna()]
    top = ranked.iloc[0]
    tied = ranked[(ranked["rank"] == 1) | ranked["tied"].fillna(False).astype(bool)]
    column = {"params": "params", "duration": "duration_s"}.get(rule)
    if rule == "none" or len(tied) < 2 or column is None:
        return top, "the best mean"
    cost = trials.groupby("config_id")[column].mean() if column in trials else None
    if cost is None or cost.reindex(tied["config_id"]).isna().any():
        return top, f"the best mean (no {column} to break the tie with)"
    order = cost.reindex(tied["config_id"]).sort_values(kind="stable")
    chosen = tied[tied["config_id"] == order.index[0]].iloc[0]
    if chosen["config_id"] == top["config_id"]:
        return top, f"the best mean, and the {'smallest' if rule == 'params' else 'fastest'} " \
                    f"of the {len(tied)} tied with it"
    word = "smallest model" if rule == "params" else "fastest to train"
    return chosen, (f"the {word} of the {len(tied)} configurations tied with #1 "
                    f"(sweep.tie_break={rule})")

