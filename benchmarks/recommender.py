"""Recommender quality and training time: every model in one harness, 3 seeds, two protocols.

    A  MovieLens-100k, RecBole's per-user random 80/10/10 split (training/recommender/splits.py),
       models fit on train, tuned and early-stopped on valid, train + valid masked at test.
       References (3-seed means, NDCG@10): popularity 0.145, ItemKNN 0.281, BPR-MF 0.292,
       EASE 0.335.
    B  a temporal split at day boundaries through Feast (training/recommender/dataset.py):
       history known at a cut is the input, the next window's new items the targets. MovieLens
       (valid and test: the last 28 days each) and a simulated shop (14 days each).

    catalogue  `train_step` (training/recommender/pipeline.py, what the DAG and the CLI run) on
       simulated shops of ~2k, ~15k and ~100k items, protocol B: the form it chose by catalogue
       size, its wall seconds (references included), peak RSS (each size in its own process),
       test NDCG@10 against popularity and EASE (left out where its inverse does not fit).

Every model sees the same matrices and the same metric code (training/recommender/evaluate.py).
Seeds matter for the random split (A) and for the trained models (BPR-MF, our fine-tuning).

    .venv/bin/python benchmarks/recommender.py [--protocols A B] [--seeds 2020 2021 2022]
    .venv/bin/python benchmarks/recommender.py --parts catalogue [--sizes 2000 15000 100000]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from common import RESULTS, WORK, machine, provide_sources, write_results

MODELS = ("popularity", "itemknn", "ease", "bpr-mf", "aisle")
REFERENCES = {"popularity": 0.145, "itemknn": 0.281, "bpr-mf": 0.292, "ease": 0.335}
COLUMNS = ("ndcg@10", "recall@10", "hit@10", "ndcg@20", "recall@20", "hit@20")
EASE_GRID = (50, 100, 150, 200, 250, 300, 400, 500, 700, 1000)
PROTOCOL_B = {
    # name: (source, first day, end, valid days, test days, simulator settings)
    "movielens": ("movielens", "1997-09-19", "1998-04-23", 28, 28, {}),
    "simulator": (
        "simulator",
        "2024-01-01",
        "2024-04-01",
        14,
        14,
        {"events": 300_000, "users": 5_000, "items": 1_000, "days": 91},
    ),
}


# simulated shops of the catalogue table: items -> simulator settings (91 days, protocol B with
# 14 valid and 14 test days); events grow with the catalogue so items keep a few interactions
CATALOGUE = {
    2_000: {"events": 300_000, "users": 10_000, "items": 2_000, "days": 91},
    15_000: {"events": 1_000_000, "users": 20_000, "items": 15_000, "days": 91},
    100_000: {"events": 2_000_000, "users": 40_000, "items": 100_000, "days": 91},
}


def fit_and_score(
    name: str, seed: int, train: Any, valid: Any, history: Any, fit_rows: np.ndarray | None = None
) -> tuple[np.ndarray, float]:
    """Fit `name` on train (valid for tuning/early stopping); scores of `history`; fit seconds.

    `fit_rows[i]` is the train row of history row i's user (-1: a user train has not seen), for
    BPR-MF, which scores users by their learned embedding rather than by their history; users
    without one get the popularity ranking, as a served user-embedding model would.
    """
    from dataclasses import replace

    from training.recommender.baselines import BPRMF, EASE, ItemKNN, Popularity
    from training.recommender.evaluate import ranking_metrics
    from training.recommender.model import RecommenderConfig
    from training.recommender.train import dense, score_all, train_recommender

    started = time.perf_counter()
    if name == "popularity":
        scorer: Callable[[Any], np.ndarray] = Popularity().fit(train).scores
    elif name == "itemknn":
        scorer = ItemKNN(100).fit(train).scores
    elif name == "ease":
        fitted = [EASE(l2).fit(train) for l2 in EASE_GRID]
        ndcg = [ranking_metrics(m.scores(train), train, valid)["ndcg@10"] for m in fitted]
        scorer = fitted[int(np.argmax(ndcg))].scores
    elif name == "bpr-mf":
        bpr = BPRMF(seed=seed).fit(train, valid)

        def scorer(h: Any) -> np.ndarray:
            known = bpr.scores(train)
            if fit_rows is None:
                return known
            fallback = Popularity().fit(train).scores(h)
            return np.where((fit_rows >= 0)[:, None], known[np.maximum(fit_rows, 0)], fallback)
    elif name == "aisle":
        result = train_recommender(train, valid, replace(RecommenderConfig(), seed=seed))
        model = result.model

        def scorer(h: Any) -> np.ndarray:
            return score_all(model, dense(h, model.weights.device)).cpu().numpy()
    else:
        raise ValueError(f"unknown model {name!r}")
    seconds = time.perf_counter() - started
    return scorer(history), seconds


def protocol_a(seeds: list[int]) -> dict[str, list[dict[str, float]]]:
    import pandas as pd

    from features.sources import movielens
    from training.recommender.evaluate import ranking_metrics
    from training.recommender.splits import random_split

    log = movielens.load()["interactions"]
    users, user_ids = pd.factorize(log["user_id"])
    items, item_ids = pd.factorize(log["item_id"])
    runs: dict[str, list[dict[str, float]]] = {m: [] for m in MODELS}
    for seed in seeds:
        split = random_split(users, items, (len(user_ids), len(item_ids)), seed)
        for name in MODELS:
            scores, seconds = fit_and_score(name, seed, split.train, split.valid, split.train)
            got = ranking_metrics(scores, split.train + split.valid, split.test)
            runs[name].append({**got, "fit_seconds": seconds})
            print(
                f"A seed {seed} {name}: ndcg@10 {got['ndcg@10']:.4f} ({seconds:.1f}s)", flush=True
            )
    return runs


def protocol_b_data(name: str) -> Any:
    """The Feast training set of a protocol-B input, built once under benchmarks/.work/."""
    from training.recommender.dataset import RecommenderData

    return RecommenderData.load(protocol_b_path(name, PROTOCOL_B[name]))


def protocol_b_path(name: str, spec: tuple) -> Any:
    """The path of the training set of `spec` (PROTOCOL_B's shape), built once through Feast."""
    from core.clock import as_utc
    from core.settings import get_settings
    from features.ingest import ingest
    from features.pipeline import run_features
    from training.recommender.dataset import MODEL, build_training_set
    from training.training_sets import Windows, training_set_path

    source, first, end, valid_days, test_days, simulator = spec
    settings = get_settings(
        data_dir=WORK / "recommender" / name, interactions_source=source, simulator=simulator
    )
    windows = Windows.days_before(as_utc(end), valid_days, test_days)
    path = training_set_path(settings, MODEL, source, windows)
    if not path.exists():
        provide_sources(settings, source)
        ingest("interactions", first, end, settings)
        run_features("interactions", first, end, settings)
        build_training_set(settings, source, windows)
    return path


def catalogue_spec(items: int) -> tuple:
    return ("simulator", "2024-01-01", "2024-04-01", 14, 14, CATALOGUE[items])


def catalogue_row(items: int) -> dict[str, Any]:
    """Build the shop's training set here, then train it in a child process of its own, so
    each size's peak RSS is its own."""
    import subprocess
    import sys

    started = time.perf_counter()
    protocol_b_path(f"catalogue-{items}", catalogue_spec(items))
    print(f"catalogue {items}: training set in {time.perf_counter() - started:.0f} s", flush=True)
    child = subprocess.run(
        [sys.executable, __file__, "--catalogue-child", str(items)],
        check=True, stdout=subprocess.PIPE, text=True,  # its log goes on to stderr
    )  # fmt: skip
    row = json.loads(child.stdout.strip().splitlines()[-1])
    print(f"catalogue {items}: {row}", flush=True)
    return row


def catalogue_child(items: int) -> None:
    """One `train_step` on the size's training set, in a fresh MLflow store; one JSON line."""
    import logging
    import resource
    import shutil

    from core.settings import get_settings
    from training.recommender.pipeline import train_step

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    path = protocol_b_path(f"catalogue-{items}", catalogue_spec(items))
    folder = WORK / "recommender" / f"catalogue-{items}-runs"
    shutil.rmtree(folder, ignore_errors=True)
    settings = get_settings(data_dir=folder)
    started = time.perf_counter()
    trained = train_step(path, None, settings, device="cpu")
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak = usage.ru_maxrss / 1024  # kB on Linux
    references = trained["references"]
    ease = next((m for n, m in references.items() if n.startswith("ease")), None)
    from training.recommender.predict import load_checkpoint

    model = load_checkpoint(trained["checkpoint"], device="cpu")
    row = {
        "catalogue": items,
        "items": len(model.item_ids),
        "form": trained["form"] + (f" ({model.metadata['form']['weights']} weights)"
                                   if "weights" in model.metadata["form"] else ""),
        "train_seconds": round(seconds, 1),
        "model_seconds": round(trained["train_seconds"], 1),
        "peak_rss_mb": round(peak),
        # CPU seconds of the whole process (imports and data loading too): on a shared machine
        # the wall seconds above carry other work's waits, these do not
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
        "ndcg@10": round(trained["test"]["ndcg@10"], 4),
        "popularity": round(references["popularity"]["ndcg@10"], 4),
        "ease": None if ease is None else round(ease["ndcg@10"], 4),
        "ease_l2": None if ease is None else ease["l2"],
        "factor_rank": model.metadata.get("factor_rank"),
        "best_epoch": trained["best_epoch"],
        "notes": model.metadata.get("reference_notes", []),
    }  # fmt: skip
    print(json.dumps(row))


def protocol_b(seeds: list[int], inputs: list[str]) -> dict[str, dict[str, list[dict]]]:
    from training.recommender.evaluate import ranking_metrics

    out: dict[str, dict[str, list[dict]]] = {}
    for name in inputs:
        data = protocol_b_data(name)
        out[name] = {m: [] for m in MODELS}
        fit_index = {user: n for n, user in enumerate(data.fit_users)}
        fit_rows = np.array([fit_index.get(u, -1) for u in data.test_users])
        for seed in seeds:
            for model in MODELS:
                scores, seconds = fit_and_score(
                    model, seed, data.train, data.valid, data.test_history, fit_rows
                )
                got = ranking_metrics(scores, data.test_history, data.test_targets)
                out[name][model].append({**got, "fit_seconds": seconds})
                print(f"B {name} seed {seed} {model}: {got['ndcg@10']:.4f}", flush=True)
        out[name]["_shape"] = [
            {
                "users": data.train.shape[0],
                "items": data.train.shape[1],
                "train_interactions": int(data.train.nnz),
                "test_users": int((data.test_targets.sum(axis=1) > 0).sum()),
                "cold_item_targets": data.cold_targets,
            }
        ]
    return out


def _cell(runs: list[dict[str, float]], key: str) -> str:
    values = [r[key] for r in runs]
    return f"{np.mean(values):.4f} ± {np.std(values):.4f}"


def table(runs: dict[str, list[dict[str, float]]], references: bool) -> str:
    head = ["model", *COLUMNS, "fit s", "fit ÷ EASE"] + (["ref NDCG@10"] if references else [])
    ease_seconds = np.mean([r["fit_seconds"] for r in runs["ease"]])
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for model in MODELS:
        cells = [_cell(runs[model], c) for c in COLUMNS]
        seconds = np.mean([r["fit_seconds"] for r in runs[model]])
        cells += [f"{seconds:.1f}", f"{seconds / ease_seconds:.2f}"]
        if references:
            cells.append(str(REFERENCES.get(model, "target ≥ 0.335, goal 0.34")))
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def catalogue_table(rows: list[dict[str, Any]]) -> str:
    head = ["items", "form chosen", "train s", "CPU s", "peak RSS MB", "NDCG@10", "popularity"]
    head.append("EASE")
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for r in rows:
        ease = "not fitted (items x items too large)" if r["ease"] is None else f"{r['ease']:.4f}"
        cells = [
            f"{r['items']:,}", r["form"], f"{r['train_seconds']:.0f}",
            f"{r['cpu_seconds']:.0f}" if r.get("cpu_seconds") else "—", f"{r['peak_rss_mb']:,}",
            f"{r['ndcg@10']:.4f}", f"{r['popularity']:.4f}", ease,
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def render(report: dict[str, Any]) -> str:
    markdown = [f"# Recommender: protocol A and B (mean ± std over seeds {report['seeds']})\n"]
    if "A" in report:
        markdown += ["## A: MovieLens-100k, RecBole random 80/10/10\n", table(report["A"], True)]
    for name, runs in report.get("B", {}).items():
        shape = runs["_shape"][0]
        markdown += [f"## B: {name}, temporal split ({json.dumps(shape)})\n", table(runs, False)]
    if report.get("catalogue"):
        markdown += [
            "## Catalogue: `train_step` by catalogue size (simulator, protocol B)\n",
            "Train s: the whole `train_step` (references, model, evaluation, MLflow), "
            "one process per size.\n",
            catalogue_table(report["catalogue"]),
        ]
    return "\n".join(markdown)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--protocols", nargs="+", default=["A", "B"], choices=["A", "B"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[2020, 2021, 2022])
    parser.add_argument("--inputs", nargs="+", default=list(PROTOCOL_B), choices=list(PROTOCOL_B))
    parser.add_argument(
        "--parts", nargs="+", default=["protocols"], choices=["protocols", "catalogue"],
        help="the protocol tables (--protocols), the catalogue table, or both",
    )  # fmt: skip
    parser.add_argument("--sizes", nargs="+", type=int, default=list(CATALOGUE), choices=CATALOGUE)
    parser.add_argument("--catalogue-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite the markdown from the last JSON"
    )
    args = parser.parse_args()
    if args.catalogue_child:
        catalogue_child(args.catalogue_child)
        return
    if args.report_only:
        report = json.loads((RESULTS / "recommender.json").read_text())
        write_results("recommender", report, render(report))
        return
    # a partial rerun (one protocol, one input) keeps the other results of the same seeds
    previous = RESULTS / "recommender.json"
    report: dict[str, Any] = json.loads(previous.read_text()) if previous.exists() else {}
    if report.get("seeds") != args.seeds and "protocols" in args.parts:
        report = {key: report[key] for key in ("catalogue",) if key in report}
    report.update({"machine": machine(), "seeds": report.get("seeds", args.seeds)})
    if "protocols" in args.parts:
        report["seeds"] = args.seeds
        if "A" in args.protocols:
            report["A"] = protocol_a(args.seeds)
        if "B" in args.protocols:
            report.setdefault("B", {}).update(protocol_b(args.seeds, args.inputs))
    if "catalogue" in args.parts:
        rows = {r["catalogue"]: r for r in report.get("catalogue", [])}
        for items in args.sizes:  # written after each size: a 100k run can be long
            rows[items] = catalogue_row(items)
            report["catalogue"] = [rows[k] for k in sorted(rows)]
            write_results("recommender", report, render(report))
    write_results("recommender", report, render(report))


if __name__ == "__main__":
    main()
