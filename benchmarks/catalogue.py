"""Catalogue scaling of recommendation scoring: exact top-10 against an approximate nearest
neighbour index (faiss IVF), at 1,682 items (MovieLens-100k, the served model), 100,000 and
1,000,000 items, in the same run.

    .venv/bin/python benchmarks/catalogue.py

Why two scorers. The served recommender (training/recommender/model.py) keeps an items x items
weight matrix: 11 MB at 1,682 items, 40 GB at 100,000, 4 TB at 1,000,000. Past ~30,000 items its
low-rank spectral term is what scales: a user's history maps to a 64-dim vector and items to
64-dim factors, and scoring is an inner-product search over the catalogue. At 1,682 items this
script times the served model itself; at the large sizes it times that search over a simulated
catalogue (64-dim factors around 500 category centres; a query is the mean factor of 20 items
of one category, as a history would be) exactly (one matmul + top-k, torch) and with faiss's
IVF index, whose `nprobe` is the smallest reaching recall@10 >= 0.95 on 200 validation queries;
recall and latency are then reported on 500 other queries. One query at a time, one thread.
Results: benchmarks/results/catalogue.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch

# The project root first, not benchmarks/: benchmarks/serving.py would shadow the serving package.
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from benchmarks.common import WORK, machine, percentile, provide_sources, write_results  # noqa: E402

DIM, CATEGORIES, K, TARGET_RECALL = 64, 500, 10, 0.95
NPROBES = (1, 2, 4, 8, 16, 32, 64, 128)


def catalogue(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(CATEGORIES, DIM)).astype("float32")
    category = rng.integers(0, CATEGORIES, n)
    items = centres[category] + 0.7 * rng.normal(size=(n, DIM)).astype("float32")
    return items.astype("float32"), category


def queries(items: np.ndarray, category: np.ndarray, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = []
    for c in rng.integers(0, CATEGORIES, count):
        members = np.flatnonzero(category == c)
        picks = rng.choice(members, size=min(20, len(members)), replace=False)
        out.append(items[picks].mean(0))
    return np.stack(out).astype("float32")


def exact_top(items_t: torch.Tensor, query: np.ndarray) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    scores = items_t @ torch.from_numpy(query)
    top = torch.topk(scores, K).indices.numpy()
    return top, (time.perf_counter() - started) * 1000


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth, strict=True)]))


def large(n: int) -> dict:
    import faiss

    items, category = catalogue(n)
    items_t = torch.from_numpy(items)
    valid, test = queries(items, category, 200, 1), queries(items, category, 500, 2)
    exact = [exact_top(items_t, q) for q in test]
    truth_test = np.stack([t for t, _ in exact])
    truth_valid = np.stack([exact_top(items_t, q)[0] for q in valid])

    started = time.perf_counter()
    nlist = int(4 * np.sqrt(n))
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(DIM), DIM, nlist, faiss.METRIC_INNER_PRODUCT)
    sample = items[np.random.default_rng(3).choice(n, size=min(n, 50 * nlist), replace=False)]
    index.train(sample)
    index.add(items)
    build_s = time.perf_counter() - started

    chosen = None
    for nprobe in NPROBES:  # tuned on the validation queries only
        index.nprobe = nprobe
        _, found = index.search(valid, K)
        if recall(found, truth_valid) >= TARGET_RECALL:
            chosen = nprobe
            break
    index.nprobe = chosen or NPROBES[-1]
    ann_ms, found = [], []
    for q in test:
        started = time.perf_counter()
        _, ids = index.search(q[None, :], K)
        ann_ms.append((time.perf_counter() - started) * 1000)
        found.append(ids[0])
    exact_ms = [ms for _, ms in exact]
    return {
        "items": n,
        "scorer": "inner-product search (64-dim factors)",
        "exact_p50_ms": round(percentile(exact_ms, 50), 3),
        "exact_p99_ms": round(percentile(exact_ms, 99), 3),
        "ann_p50_ms": round(percentile(ann_ms, 50), 3),
        "ann_p99_ms": round(percentile(ann_ms, 99), 3),
        "ann_recall_at_10": round(recall(np.stack(found), truth_test), 4),
        "nprobe": index.nprobe,
        "nlist": nlist,
        "build_s": round(build_s, 1),
    }


def served(settings) -> dict:
    """The served model at MovieLens-100k's size: one history at a time, scores + top-10."""
    from serving.sandbox import fit_recommender
    from training.recommender.predict import Request

    provide_sources(settings, "movielens")
    recommender, _, _ = fit_recommender(settings, write_online=False)
    import pandas as pd

    events = pd.read_parquet(settings.sources_dir / "movielens" / "interactions.parquet")
    histories = events.groupby("user_id").item_id.apply(list).head(500).tolist()
    times = []
    for history in histories:
        started = time.perf_counter()
        recommender.recommend_batch([Request(history, K)])
        times.append((time.perf_counter() - started) * 1000)
    return {
        "items": len(recommender.item_ids),
        "scorer": "the served item autoencoder (exact)",
        "exact_p50_ms": round(percentile(times, 50), 3),
        "exact_p99_ms": round(percentile(times, 99), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    from aisle.settings import get_settings

    torch.set_num_threads(1)
    import faiss

    faiss.omp_set_num_threads(1)
    rows = [served(get_settings(data_dir=WORK / "catalogue" / "data"))]
    print(rows[-1])
    for n in args.sizes:
        rows.append(large(n))
        print(rows[-1])
    write_results("catalogue", {"machine": machine(), "rows": rows}, markdown(rows))


def markdown(rows: list[dict]) -> str:
    lines = [
        "# Catalogue scaling: one query at a time, one thread, same run",
        "",
        "| items | scorer | exact p50 ms | exact p99 ms | ANN p50 ms | ANN p99 ms | ANN recall@10 "
        "| nprobe / nlist | index build s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ann = ("ann_p50_ms", "ann_p99_ms", "ann_recall_at_10")
        a, b, c = (r.get(k, "—") for k in ann)
        probe = f"{r['nprobe']} / {r['nlist']}" if "nprobe" in r else "—"
        lines.append(
            f"| {r['items']:,} | {r['scorer']} | {r['exact_p50_ms']} | {r['exact_p99_ms']} | {a} "
            f"| {b} | {c} | {probe} | {r.get('build_s', '—')} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
