"""Catalogue scaling of POST /recommend: p50/p99 through HTTP at 1,682 items (MovieLens-100k),
100,000 and 1,000,000 items (the shop simulator), exact scoring against a faiss IVF index, with
the index's recall@10 against exact, in the same run.

    .venv/bin/python benchmarks/catalogue.py [--sizes 100000 1000000] [--seconds 15]

Which model serves. At 1,682 items, the served item autoencoder (registered by the serving
sandbox). Its items x items weights would be 40 GB at 100,000 items and 4 TB at 1,000,000, so the
large catalogues are served by its factor form (training/recommender/factors.py): the spectral
term's 64-dim factors fitted on the simulator's interactions, searched exactly (one matmul and a
top-k over the catalogue) or through the checkpoint's IVF index, whose nprobe was chosen on
held-out users' histories at fit time.

How it is measured. Each model is registered in its own MLflow registry and every query user's
history is written to its own Feast online store; a slot (`bentoml serve`, as `aisle serve up`
starts it) is started once with AISLE_RECOMMENDER_SEARCH=exact and once with ivf. One client
asks for k=10 for a cycle of users for `--seconds`; the same 300 users' answers from both slots
give the recall@10 of the served IVF answers against the served exact ones. The in-process time
of the scoring call alone (no HTTP, no feature lookup) is reported beside.
Results: benchmarks/results/catalogue.{json,md}.
"""

from __future__ import annotations

import argparse
import gc
import os
import secrets
import sys
import time

import httpx
import numpy as np

# The project root first, not benchmarks/: benchmarks/serving.py would shadow the serving package.
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from benchmarks.common import WORK, machine, percentile, provide_sources, write_results  # noqa: E402

K, QUERY_USERS, RECALL_USERS, VALIDATION_USERS = 10, 2_000, 300, 500
PORT_BASE = 28810


def settings_for(name: str, search: str = "auto"):
    from core.settings import get_settings

    return get_settings(
        data_dir=WORK / "catalogue" / name / "data",
        slot_port_base=PORT_BASE,
        admin_token=secrets.token_hex(16),
        recommender_search=search,
    )


# -- the models ----------------------------------------------------------------------------------
def movielens_world(settings) -> tuple[str, list[str]]:
    """The served item autoencoder on MovieLens-100k, every user's history online."""
    from features.store import apply
    from serving.sandbox import fit_recommender, register

    provide_sources(settings, "movielens")
    apply(settings)
    recommender, users, _ = fit_recommender(settings)
    return register(settings, "recommender", recommender), users


def simulated_world(settings, items: int, on_step=print) -> tuple[str, list[str], dict]:
    """The factor form fitted on a simulated shop of `items` items; its users' histories online."""
    import scipy.sparse as sp

    from features.sources.simulator import SimulatorConfig, simulate
    from features.store import apply, feature_store
    from serving.sandbox import register
    from training.recommender.factors import FactorConfig, FactorRecommender

    started = time.perf_counter()
    config = SimulatorConfig(
        items=items, users=100_000, events=3_000_000, categories=500, stores=1, days=14
    )
    shop = simulate(config)
    events = shop.interactions.sort_values("timestamp")
    catalogue = shop.items.item_id.tolist()
    took = time.perf_counter() - started
    on_step(f"{items:,} items: simulated {len(events):,} events in {took:.0f} s")
    users = np.array(sorted(events.user_id.unique()))
    held_out = set(np.random.default_rng(0).choice(users, VALIDATION_USERS, replace=False))
    fit = events[~events.user_id.isin(held_out)]
    row = {u: n for n, u in enumerate(users)}
    col = {i: n for n, i in enumerate(catalogue)}
    matrix = sp.csr_matrix(
        (np.ones(len(fit)), (fit.user_id.map(row), fit.item_id.map(col))),
        shape=(len(users), len(catalogue)),
    )
    histories = (
        events.iloc[::-1]
        .drop_duplicates(["user_id", "item_id"])
        .groupby("user_id", sort=True)
        .agg(history_item_ids=("item_id", list), event_timestamp=("timestamp", "max"))
        .reset_index()
    )
    validation = histories[histories.user_id.isin(held_out)].history_item_ids.tolist()
    started = time.perf_counter()
    model = FactorRecommender.fit(
        matrix,
        catalogue,
        FactorConfig(),
        dict(zip(shop.items.item_id, shop.items.category, strict=True)),
        {"source": f"simulator, {items:,} items (benchmark)"},
        validation_histories=validation,
    )
    fit_s = time.perf_counter() - started
    on_step(f"{items:,} items: factors + index in {fit_s:.0f} s, {model.metadata}")

    apply(settings)
    query = histories[~histories.user_id.isin(held_out)].head(QUERY_USERS).copy()
    query["history_length"] = query.history_item_ids.map(len).astype("int64")
    query["history_item_ids"] = query.history_item_ids.map(lambda h: h[:1000])
    feature_store(settings).write_to_online_store("user_history_fv", query.reset_index(drop=True))
    version = register(settings, "recommender", model)
    stage = scoring_times(model, query.history_item_ids.tolist())
    info = {"fit_s": round(fit_s, 1), **stage, **_index_facts(model)}
    del model, shop, events, fit, matrix
    gc.collect()
    return version, query.user_id.astype(str).tolist(), info


def _index_facts(model) -> dict:
    return {
        "nprobe": model.metadata.get("ivf_nprobe"),
        "nlist": model.metadata.get("ivf_nlist"),
        "validation_recall_at_10": model.metadata.get("ivf_validation_recall_at_10"),
    }


def scoring_times(model, histories: list[list[str]]) -> dict:
    """The scoring call alone, in process, one request at a time, each search mode."""
    from training.recommender.predict import Request

    out = {}
    for mode in ("exact", "ivf"):
        model.use_search(mode)
        times = []
        for history in histories[:500]:
            started = time.perf_counter()
            model.recommend_batch([Request(history, K)])
            times.append((time.perf_counter() - started) * 1000)
        out[f"{mode}_in_process_p50_ms"] = round(percentile(times, 50), 3)
    return out


# -- HTTP ---------------------------------------------------------------------------------------
def served(settings, version: str, users: list[str], seconds: float) -> tuple[dict, list]:
    """Start a slot on `version`, put one client's load on /recommend, collect answers."""
    from serving.loadgen import cycle, run_load
    from serving.slots import LocalSlots

    slots = LocalSlots(settings)
    started = time.perf_counter()
    slot = slots.deploy("recommender", "blue", version)
    try:
        slots.wait_ready(slot, timeout_s=600)
        start_s = time.perf_counter() - started
        model = httpx.post(slot.url + "/model", json={}, timeout=10).json()
        requests = [("/recommend", {"user_id": u, "k": K}) for u in users]
        run_load(slot.url, cycle(requests), 2, concurrency=1)  # warm up
        summary = run_load(slot.url, cycle(requests), seconds, concurrency=1).summary()
        answers = []
        for user in users[:RECALL_USERS]:
            body = httpx.post(slot.url + "/recommend", json={"user_id": user, "k": K}, timeout=30)
            body.raise_for_status()
            answer = body.json()
            assert not answer["fallback"], f"{user} fell back: {answer['fallback_reason']}"
            answers.append([i["item_id"] for i in answer["items"]])
        return {**summary, "search": model["search"], "slot_start_s": round(start_s, 1)}, answers
    finally:
        slots.stop("recommender", "blue")


def measure(name: str, items: int | None, seconds: float) -> dict:
    from training.recommender.factors import recall_at

    settings = settings_for(name)
    if items is None:
        version, users = movielens_world(settings)
        info = {"items": 1682, "model": "item autoencoder"}
        http, _ = served(settings, version, users[:QUERY_USERS], seconds)
        return {**info, "exact": http}
    version, users, info = simulated_world(settings, items)
    exact, exact_answers = served(settings_for(name, "exact"), version, users, seconds)
    ivf, ivf_answers = served(settings_for(name, "ivf"), version, users, seconds)
    served_recall = recall_at(np.array(ivf_answers), np.array(exact_answers))
    return {
        "items": items,
        "model": "factor form (64-dim)",
        "exact": exact,
        "ivf": ivf,
        "served_recall_at_10": round(served_recall, 4),
        **info,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    rows = [measure("movielens", None, args.seconds)]
    print(rows[-1], flush=True)
    for n in args.sizes:
        rows.append(measure(f"simulated-{n}", n, args.seconds))
        print(rows[-1], flush=True)
    report = {"machine": machine(), "seconds": args.seconds, "rows": rows}
    write_results("catalogue", report, markdown(rows, args.seconds))


def markdown(rows: list[dict], seconds: float) -> str:
    lines = [
        f"# Catalogue scaling of POST /recommend (k=10, one client, {seconds:.0f} s per case, "
        "straight to a slot, same run)",
        "",
        "| items | model | search | p50 ms | p99 ms | req/s | failed | scoring alone p50 ms "
        "| recall@10 vs exact (served) | nprobe / nlist |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        for mode in ("exact", "ivf"):
            if mode not in r:
                continue
            h = r[mode]
            alone = r.get(f"{mode}_in_process_p50_ms", "—")
            recall = r.get("served_recall_at_10", "—") if mode == "ivf" else "—"
            probe = f"{r['nprobe']} / {r['nlist']}" if mode == "ivf" else "—"
            lines.append(
                f"| {r['items']:,} | {r['model']} | {mode} | {h['p50_ms']} | {h['p99_ms']} "
                f"| {h['per_second']} | {h['failed']} | {alone} | {recall} | {probe} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
