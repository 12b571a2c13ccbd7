"""Buy again on a grocery shop: Aisle with rebuys against "most bought by this user" and popularity.

The simulator's grocery mode (`staples_per_user`: each shopper's staples take a share of their
views and convert more often) gives a shop whose shoppers buy the same items again and again.
Its protocol-B training set (dataset.frame_from_events: histories as `user_history_fv` serves
them) is trained by the same `train_step` the DAG and the CLI run, with
`recommender_buy_again=all`; every row is scored on the same test users and targets, rebuys
included (NDCG@10 etc., full ranking, history masked as the setting says):

    aisle, buy-again on        the trained model: new items by the item model, rebuys by their
                               repeat score (weight and decay chosen on the validation window)
    aisle, buy-again off       the same item model with every history item masked (what Aisle
                               answered before buy-again): it cannot reach a rebuy
    most bought by this user   the shopper's purchases by count, then popularity
    popularity                 the most touched items, rebuys allowed

    .venv/bin/python benchmarks/buy_again.py [--events 1000000 --users 20000 --items 2000]
"""

from __future__ import annotations

import argparse
import shutil
import time
from datetime import timedelta
from typing import Any

from common import WORK, machine, write_results

COLUMNS = ("ndcg@10", "recall@10", "hit@10", "ndcg@20")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--items", type=int, default=2_000)
    parser.add_argument("--days", type=int, default=91)
    parser.add_argument("--staples", type=int, default=6, help="staples per user")
    parser.add_argument("--valid-days", type=int, default=14)
    parser.add_argument("--test-days", type=int, default=14)
    args = parser.parse_args()

    import pandas as pd

    from core.settings import get_settings
    from features.sources.simulator import SimulatorConfig, simulate
    from training.recommender.buy_again import BuyAgain, masked, model_scores
    from training.recommender.dataset import RecommenderData, frame_from_events
    from training.recommender.evaluate import ranking_metrics
    from training.recommender.pipeline import train_step
    from training.recommender.predict import load_checkpoint
    from training.training_sets import Windows, write_training_set

    work = WORK / "buy_again"
    shutil.rmtree(work, ignore_errors=True)
    config = SimulatorConfig(
        events=args.events,
        users=args.users,
        items=args.items,
        days=args.days,
        staples_per_user=args.staples,
    )
    started = time.perf_counter()
    shop = simulate(config)
    events = shop.interactions[["user_id", "item_id", "timestamp", "event_type"]]
    end = pd.Timestamp(config.start, tz="UTC") + timedelta(days=config.days)
    windows = Windows.days_before(end.to_pydatetime(), args.valid_days, args.test_days)
    frame = frame_from_events(events, windows)
    metadata = {
        "dataset": "grocery",
        "feature_service": "recommender_history_v1",
        "windows": windows.to_dict(),
        "categories": dict(zip(shop.items.item_id, shop.items.category, strict=True)),
    }
    path = write_training_set(frame, metadata, work / "training_set.parquet")
    prepared = time.perf_counter() - started

    settings = get_settings(data_dir=work / "data", recommender_buy_again="all")
    started = time.perf_counter()
    trained = train_step(path, None, settings)
    train_seconds = time.perf_counter() - started
    model = load_checkpoint(trained["checkpoint"], device="cpu")

    # the same item model with buy-again off: every history item masked, on the same targets
    data = RecommenderData.load(path)
    rebuyable = BuyAgain(None).mask(data.item_ids, metadata["categories"])
    targets = data.with_repeats(data.test_targets, data.test_repeats, rebuyable)
    off = ranking_metrics(
        model_scores(model, data.test_history), masked(data.test_history, ~rebuyable), targets
    )
    table: dict[str, dict[str, float]] = {
        "aisle, buy-again on": trained["test"],
        "aisle, buy-again off": off,
        **model.metadata["references"],
    }
    test = frame[frame.role == "test"]
    report: dict[str, Any] = {
        "machine": machine(),
        "shop": config.model_dump(mode="json"),
        "windows": windows.to_dict(),
        "test_users": int((targets.sum(axis=1) > 0).sum()),
        "test_targets": int(targets.nnz),
        "test_rebuy_share": round(float(1 - data.test_targets.nnz / max(targets.nnz, 1)), 4),
        "users_rebuying": int((test.repeat_item_ids.map(len) > 0).sum()),
        "repeat_scores": {
            k: v for k, v in model.metadata["buy_again"].items() if k != "propensity"
        },
        "prepare_seconds": round(prepared, 1),
        "train_seconds": round(train_seconds, 1),
        "models": table,
        "ratio_to_most_bought": round(
            table["aisle, buy-again on"]["ndcg@10"] / table["most bought by this user"]["ndcg@10"],
            3,
        ),
    }
    write_results("buy_again", report, markdown(report))


def markdown(report: dict[str, Any]) -> str:
    shop, chosen = report["shop"], report["repeat_scores"]
    lines = [
        "# Buy again on a grocery shop",
        "",
        f"Simulated grocery shop: {shop['events']:,} events, {shop['users']:,} users, "
        f"{shop['items']:,} items, {shop['staples_per_user']} staples per user, "
        f"{shop['days']} days. Protocol B test window {report['windows']['valid_end'][:10]} .. "
        f"{report['windows']['end'][:10]}: {report['test_users']:,} users, "
        f"{report['test_targets']:,} targets, {report['test_rebuy_share']:.0%} of them rebuys.",
        "",
        "| model | " + " | ".join(COLUMNS) + " |",
        "|---" * (len(COLUMNS) + 1) + "|",
    ]
    for name, metrics in report["models"].items():
        lines.append(f"| {name} | " + " | ".join(f"{metrics[c]:.4f}" for c in COLUMNS) + " |")
    lines += [
        "",
        f"Aisle (buy-again on) ÷ most bought by this user, NDCG@10: "
        f"{report['ratio_to_most_bought']:.3f}. Repeat scores chosen on the validation window: "
        f"weight {chosen['weight']:g}, decay {chosen['decay']:g}, blend "
        f"{chosen.get('blend', 0):g}. Training (train_step, "
        f"references included) {report['train_seconds']:.0f} s.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
