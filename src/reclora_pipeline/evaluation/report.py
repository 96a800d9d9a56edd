"""The evaluation's metrics document (JSON contract) and its markdown table for people."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "COMPARISON_KEYS",
    "CRM_NAMES",
    "METRIC_KEYS",
    "OPTIONAL_METRIC_KEYS",
    "metrics_document",
    "metrics_markdown",
]

METRIC_KEYS = ("auc", "logloss", "accuracy", "n", "auc_ci_low", "auc_ci_high")
# Present when the intervals resampled users: how many distinct users the test rows have.
OPTIONAL_METRIC_KEYS = ("n_users",)
COMPARISON_KEYS = ("mean_difference", "ci_low", "ci_high", "p_a_not_better")
# Model names that are CRMs (the CTR stage's models and baselines); every other name is an LLM
# arm. The table lists LLM arms first because they are what the experiment compares.
CRM_NAMES = ("din", "sim", "deepfm", "logistic_regression", "popularity")


def _numbers(
    entry: Mapping[str, Any], keys: Iterable[str], what: str, optional: Iterable[str] = ()
) -> dict[str, Any]:
    """Plain Python numbers (numpy scalars are not JSON) for ``keys`` and those of
    ``optional`` that ``entry`` has."""
    missing = [key for key in keys if key not in entry]
    if missing:
        raise ValueError(f"{what} lacks {', '.join(missing)}")
    kept = [*keys, *(key for key in optional if key in entry)]
    return {key: int(entry[key]) if key.startswith("n") else float(entry[key]) for key in kept}


def metrics_document(
    models: Mapping[str, Mapping[str, Any]],
    mlflow_tracking_uri: str | None,
    mlflow_run_id: str | None,
    comparisons: Mapping[str, Mapping[str, Any]] | None = None,
    bootstrap_unit: str = "row",
) -> dict[str, Any]:
    """``{"models": {name: metrics}, "bootstrap_unit", "mlflow_tracking_uri",
    "mlflow_run_id"[, "comparisons"]}``.

    ``models`` values come from ``model_metrics``; ``comparisons`` values from
    ``paired_bootstrap_auc_difference``, keyed by a label such as ``"reclora - vanilla_lora"``.
    ``bootstrap_unit`` says what the intervals resampled: "user" or "row".
    """
    if not models:
        raise ValueError("the metrics document needs at least one model")
    document: dict[str, Any] = {
        "models": {
            str(name): _numbers(
                entry, METRIC_KEYS, f"metrics of model {name!r}", OPTIONAL_METRIC_KEYS
            )
            for name, entry in models.items()
        },
        "bootstrap_unit": bootstrap_unit,
        "mlflow_tracking_uri": mlflow_tracking_uri,
        "mlflow_run_id": mlflow_run_id,
    }
    if comparisons:
        document["comparisons"] = {
            str(name): _numbers(entry, COMPARISON_KEYS, f"comparison {name!r}")
            for name, entry in comparisons.items()
        }
    return document


def _ordered(names: Iterable[str], crm_names: Iterable[str]) -> list[str]:
    """LLM arms then CRMs, each group in the document's own order."""
    crms = {name.lower() for name in crm_names}
    names = list(names)
    return [n for n in names if n.lower() not in crms] + [n for n in names if n.lower() in crms]


def _fmt(value: float, digits: int = 4) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def metrics_markdown(
    document: Mapping[str, Any], crm_names: Iterable[str] = CRM_NAMES, level: float = 0.95
) -> str:
    """A markdown table (model, AUC [CI], LogLoss, accuracy, n) plus the paired comparisons.

    ``level`` only labels the intervals: pass the one the bootstrap used.
    """
    models = document["models"]
    ci = f"{100 * level:g}% CI"
    best = max(models.values(), key=lambda m: m["auc"])["auc"]
    lines = [
        f"| model | AUC [{ci}] | LogLoss | accuracy | n | users |",
        "|---|---|---|---|---|---|",
    ]
    for name in _ordered(models, crm_names):
        m = models[name]
        auc = _fmt(m["auc"])
        # Bold the best AUC so the winner is visible at a glance.
        auc = f"**{auc}**" if m["auc"] == best else auc
        lines.append(
            f"| {name} | {auc} [{_fmt(m['auc_ci_low'])}, {_fmt(m['auc_ci_high'])}] "
            f"| {_fmt(m['logloss'])} | {_fmt(m['accuracy'])} | {int(m['n'])} "
            f"| {m.get('n_users', 'n/a')} |"
        )
    unit = document.get("bootstrap_unit", "row")
    lines += [
        "",
        f"Intervals: {unit}-level bootstrap"
        + (" (whole users resampled; their rows are not independent)." if unit == "user" else "."),
    ]
    for label, c in (document.get("comparisons") or {}).items():
        lines += [
            "",
            f"Paired bootstrap AUC difference, {label}: {c['mean_difference']:+.4f} "
            f"[{ci} {c['ci_low']:+.4f}, {c['ci_high']:+.4f}], "
            f"P(first not better) = {c['p_a_not_better']:.3f}",
        ]
    if document.get("mlflow_run_id"):
        lines += [
            "",
            f"MLflow run `{document['mlflow_run_id']}` at `{document.get('mlflow_tracking_uri')}`",
        ]
    return "\n".join(lines) + "\n"
