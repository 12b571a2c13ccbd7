"""The recommender's gate: challenger against champion on the training set's test window
(protocol B: the history known at valid_end, the items touched next), through `recommend_batch`.

Primary metric NDCG@10; Recall@10 and Hit@10 within tolerance; floor: the strongest reference on
the same users, a first model included: popularity (from the fit histories) and EASE where the
training run fitted it (`ease_reference`), named in a rejection. Behavioural tests: no item the
user has seen, no duplicates, k respected, a cold start (no history) answered with the popularity
fallback. A challenger trained with buy-again on (buy_again.py) is judged by its own setting: the
rebuys it allows count as targets, "most bought by this user" joins the floor's references, and
only the history items the setting masks must stay out of its answers.
"""

from __future__ import annotations

import logging
from collections import Counter
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.settings import Settings
from training.gate import MetricRule, decide, gate_inputs, record

from .buy_again import MOST_BOUGHT, BuyAgain
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
    buy_again = getattr(inputs.models["challenger"], "buy_again", BuyAgain())
    if buy_again.on:  # the challenger's setting says which rebuys count as targets
        test, targets = rebuy_targets(frame, buy_again, inputs.models["challenger"].categories)
        histories = [list(h) for h in test.history_item_ids]
    metrics = {name: evaluate(m, histories, targets) for name, m in inputs.models.items()}
    challenger = inputs.models["challenger"]
    fit_histories = frame[frame.role == "fit"].history_item_ids
    metrics["popularity"] = popularity_metrics(fit_histories, histories, targets)
    ease = ease_reference(challenger, training_set, test.user_id.tolist(), targets)
    if ease is not None:
        metrics[ease[0]] = ease[1]
    floors = {n: metrics[n]["ndcg@10"] for n in ("popularity", *(ease[:1] if ease else ()))}
    if buy_again.on:
        metrics[MOST_BOUGHT] = most_bought_metrics(test, buy_again, challenger, targets)
        floors[MOST_BOUGHT] = metrics[MOST_BOUGHT]["ndcg@10"]
    floors["setting recommender_min_ndcg"] = policy.recommender_min_ndcg
    source = max(floors, key=floors.__getitem__)  # the strongest reference sets the floor
    rules = [
        MetricRule(
            "ndcg@10",
            True,
            margin=policy.recommender_margin,
            floor=floors[source],
            floor_source=source,
        ),
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


def ease_reference(
    model, training_set: str | Path, users: list[str], targets: list[list[str]]
) -> tuple[str, dict[str, float]] | None:
    """EASE at the l2 the model's training run chose on its validation window, refitted on the
    training set and scored on the gate's rows through the gate's metric code (the run's own
    figure leaves out targets outside the vocabulary, so it is not comparable); None when the
    run left EASE out (a catalogue above `dense_max_items`) or predates it."""
    from .pipeline import ease_lists

    references = getattr(model, "metadata", {}).get("references", {})
    fitted = [(name, m["l2"]) for name, m in references.items() if "l2" in m]
    if not fitted:
        return None
    name, l2 = fitted[0]
    metrics = list_metrics(ease_lists(training_set, l2, users, K), targets)
    return name, {metric: round(metrics[metric], 6) for metric in REPORTED}


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


def rebuy_targets(
    frame: pd.DataFrame, buy_again: BuyAgain, categories: dict[str, str]
) -> tuple[pd.DataFrame, list[list[str]]]:
    """The test rows with a target once the rebuys `buy_again` allows count, and the targets."""
    if "repeat_item_ids" not in frame:
        raise ValueError(
            "the challenger recommends rebuys but its training set holds no repeat_item_ids: "
            "build the training set again"
        )
    test = frame[frame.role == "test"]
    targets = [
        [*new, *(i for i in again if buy_again.rebuyable(i, categories))]
        for new, again in zip(test.target_item_ids, test.repeat_item_ids, strict=True)
    ]
    keep = [bool(t) for t in targets]
    return test[keep], [t for t, k in zip(targets, keep, strict=True) if k]


def most_bought_metrics(
    test: pd.DataFrame, buy_again: BuyAgain, model, targets: list[list[str]]
) -> dict[str, float]:
    """The "most bought by this user" reference on the gate's rows: each user's rebuyable
    purchases, most bought first, then the model's popularity ranking of the items not masked."""
    order = [model.item_ids[i] for i in np.argsort(-np.asarray(model.popularity), kind="stable")]
    lists = []
    for history, bought in zip(test.history_item_ids, test.bought_item_ids, strict=True):
        again = [i for i in bought if buy_again.rebuyable(i, model.categories)]
        hidden = {i for i in history if not buy_again.rebuyable(i, model.categories)}
        fill = (i for i in order if i not in hidden and i not in again)
        lists.append([*again[:K], *islice(fill, max(0, K - len(again)))])
    metrics = list_metrics(lists, targets)
    return {name: round(metrics[name], 6) for name in REPORTED}


def behavioural_tests(model, histories: list[list[str]]) -> dict[str, bool]:
    """The answers' contract, under the model's buy-again setting: a history item is never
    recommended unless the setting allows it again."""
    answers = model.recommend_batch([Request(h, 10) for h in histories])
    ones = model.recommend_batch([Request(h, 1) for h in histories[:20]])
    cold = model.recommend(None, 10)
    catalogue = len(model.item_ids)
    buy_again = getattr(model, "buy_again", BuyAgain())
    categories = getattr(model, "categories", {})
    masked = [
        {i for i in h if i in model.index and not buy_again.rebuyable(i, categories)}
        for h in histories
    ]
    name = "no masked history item recommended" if buy_again.on else "no seen items recommended"
    return {
        name: all(not set(a.item_ids) & m for a, m in zip(answers, masked, strict=True)),
        "no duplicate items": all(len(set(a.item_ids)) == len(a.item_ids) for a in answers),
        "k respected": all(
            len(a.items) == min(10, catalogue - len(m))
            for a, m in zip(answers, masked, strict=True)
        )
        and all(len(a.items) == 1 for a in ones),
        "cold start answered": cold.fallback and len(cold.items) == min(10, catalogue),
    }
