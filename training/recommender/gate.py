"""The recommender's gate: challenger against champion on the training set's test window
(protocol B: the history known at valid_end, the items touched next), through `recommend_batch`.

Primary metric NDCG@10; Recall@10 and Hit@10 within tolerance; floor: popularity (from the fit
histories) on the same users. Behavioural tests: no item the user has seen, no duplicates, k
respected, a cold start (no history) answered with the popularity fallback.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from core.settings import Settings
from training.gate import MetricRule, decide, gate_inputs, record

from .evaluate import list_metrics
from .predict import Request

log = logging.getLogger(__name__)
K = 20  # ranked per user: metrics @10 and @20
REPORTED = ("ndcg@10", "recall@10", "hit@10", "ndcg@20")


def gate_step(
    training_set: str | Path, version: str, settings: Settings | None = None
) -> dict[str, Any]:
    """Evaluate `version` (and the champion) on the test window, decide, record on the version."""
    from .registry import MODEL_NAME, load_recommender

    frame = pd.read_parquet(training_set)
    test = frame[(frame.role == "test") & (frame.target_item_ids.map(len) > 0)]
    if test.empty:
        raise ValueError(f"{training_set}: no test user with a target; the gate has no holdout")
    histories = [list(h) for h in test.history_item_ids]
    targets = [list(t) for t in test.target_item_ids]

    inputs = gate_inputs(MODEL_NAME, version, load_recommender, settings)
    policy = inputs.policy
    metrics = {name: evaluate(m, histories, targets) for name, m in inputs.models.items()}
    challenger = inputs.models["challenger"]
    fit_histories = frame[frame.role == "fit"].history_item_ids
    metrics["popularity"] = popularity_metrics(fit_histories, histories, targets)
    floor = max(metrics["popularity"]["ndcg@10"], policy.recommender_min_ndcg)
    rules = [
        MetricRule("ndcg@10", True, margin=policy.recommender_margin, floor=floor),
        MetricRule("recall@10", True, tolerance=policy.recommender_tolerance),
        MetricRule("hit@10", True, tolerance=policy.recommender_tolerance),
    ]
    behaviour = behavioural_tests(challenger, histories[: policy.behaviour_sample])
    champion = inputs.champion_version
    decision = record(decide(MODEL_NAME, version, champion, rules, metrics, behaviour))
    return decision.to_dict()


def evaluate(model, histories: list[list[str]], targets: list[list[str]]) -> dict[str, float]:
    answers = model.recommend_batch([Request(h, K) for h in histories])
    metrics = list_metrics([a.item_ids for a in answers], targets)
    return {name: round(metrics[name], 6) for name in REPORTED}


def popularity_metrics(
    fit_histories: pd.Series, histories: list[list[str]], targets: list[list[str]]
) -> dict[str, float]:
    """The most touched items of the fit histories, minus what each user has seen."""
    counts = Counter(item for history in fit_histories for item in history)
    ranking = [item for item, _ in counts.most_common()]
    lists = []
    for history in histories:
        seen = set(history)
        lists.append([i for i in ranking[: K + len(seen)] if i not in seen][:K])
    metrics = list_metrics(lists, targets)
    return {name: round(metrics[name], 6) for name in REPORTED}


def behavioural_tests(model, histories: list[list[str]]) -> dict[str, bool]:
    answers = model.recommend_batch([Request(h, 10) for h in histories])
    ones = model.recommend_batch([Request(h, 1) for h in histories[:20]])
    cold = model.recommend(None, 10)
    catalogue = len(model.item_ids)
    return {
        "no seen items recommended": all(
            not set(a.item_ids) & set(h) for a, h in zip(answers, histories, strict=True)
        ),
        "no duplicate items": all(len(set(a.item_ids)) == len(a.item_ids) for a in answers),
        "k respected": all(
            len(a.items) == min(10, catalogue - len(set(h) & model.index.keys()))
            for a, h in zip(answers, histories, strict=True)
        )
        and all(len(a.items) == 1 for a in ones),
        "cold start answered": cold.fallback and len(cold.items) == min(10, catalogue),
    }
