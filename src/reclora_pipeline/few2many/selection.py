"""Which samples the LLM sees: seeded selection strategies over a candidate pool.

The CRM was trained on the whole train split; the LLM is fine-tuned on a few of
its samples only (method.md, "Few2Many learning"). Every strategy is a pure
function of (candidates, n, seed), so reruns select the same rows.
"""

from __future__ import annotations

import numpy as np

from reclora_pipeline.errors import ParameterError

STRATEGIES = ("random", "stratified_user", "crm_uncertain")


def select(
    sample_ids: np.ndarray,
    n: int,
    strategy: str,
    seed: int,
    *,
    user_ids: np.ndarray | None = None,
    crm_probability: np.ndarray | None = None,
    parameter: str = "few2many.n_train",
    pool: str = "the candidate pool",
) -> np.ndarray:
    """Sorted ids of ``n`` samples chosen from ``sample_ids`` by ``strategy``.

    ``random``: uniform without replacement (the paper). ``stratified_user``:
    round-robin over users in a seeded order, so ``n`` samples cover as many
    users as possible. ``crm_uncertain``: the samples whose CRM probability is
    closest to 0.5, seeded tie-breaks. Asking for more samples than ``pool``
    (how messages name the candidates) holds is a ``ParameterError``.
    """
    if strategy not in STRATEGIES:
        raise ParameterError(
            f"few2many.strategy={strategy!r} is not known; accepted values: {list(STRATEGIES)}"
        )
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ParameterError(f"{parameter} must be a positive integer, got {n!r}")
    sample_ids = np.asarray(sample_ids)
    check_size(n, len(sample_ids), parameter, pool)
    if n == len(sample_ids):
        return np.sort(sample_ids)
    # Candidates in id order first: the choice must not depend on how rows arrived.
    by_id = np.argsort(sample_ids, kind="stable")
    sample_ids = sample_ids[by_id]
    user_ids = None if user_ids is None else np.asarray(user_ids)[by_id]
    crm_probability = None if crm_probability is None else np.asarray(crm_probability)[by_id]
    rng = np.random.default_rng(seed)
    # Seeded random keys break every tie, so the choice never depends on row order.
    noise = rng.random(len(sample_ids))
    if strategy == "random":
        order = np.argsort(noise, kind="stable")
    elif strategy == "stratified_user":
        order = _round_robin_over_users(_required(user_ids, "user ids", strategy), noise)
    else:
        probability = _required(crm_probability, "CRM probabilities", strategy)
        order = np.lexsort((noise, np.abs(probability.astype(np.float64) - 0.5)))
    return np.sort(sample_ids[order[:n]])


def check_size(n: int, available: int, parameter: str, pool: str) -> None:
    """Refuse a subset larger than its pool.

    Taking the whole pool instead would silently turn "a few samples" into all of
    them (hours of fine-tuning) and make the run differ from what was asked for.
    """
    if n <= available:
        return
    if available == 0:
        raise ParameterError(
            f"{parameter} = {n} but {pool} has no samples: check the ingest settings "
            "(split_ratios, k_core, min_history)"
        )
    raise ParameterError(
        f"{parameter} = {n} but {pool} has {available:,} samples: set it to at most {available:,}"
    )


def _round_robin_over_users(user_ids: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Row order: every user's first (random) sample, then every user's second, ..."""
    by_user = np.lexsort((noise, user_ids))
    sorted_users = user_ids[by_user]
    starts = np.r_[0, np.flatnonzero(sorted_users[1:] != sorted_users[:-1]) + 1]
    run_lengths = np.diff(np.r_[starts, len(sorted_users)])
    rank = np.arange(len(sorted_users)) - np.repeat(starts, run_lengths)
    # Within one round, users come in a seeded order too (their first sample's key).
    user_key = np.repeat(noise[by_user][starts], run_lengths)
    return by_user[np.lexsort((user_key, rank))]


def _required(values: np.ndarray | None, what: str, strategy: str) -> np.ndarray:
    if values is None:
        raise ParameterError(f"few2many.strategy={strategy!r} needs {what}")
    return np.asarray(values)
