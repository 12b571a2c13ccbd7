"""Protocol-A benchmark on MovieLens-100k: every model x 3 split seeds.

Prints test metrics (mean +- std over seeds 2020/2021/2022) and fit seconds.
Hyper-parameters are fixed from validation-only tuning (tune.py) except EASE,
whose lambda is tuned per seed on the validation split here (as the reference).
Usage: python run.py [--fast]   (--fast skips BPR and Mult-DAE)
"""

import sys
import time

import numpy as np
import torch
from baselines import BPRMF, EASE, ItemKNN, Pop, tune_ease
from metrics import eval_test, eval_valid
from model import DLAE, DLAELowPass, MultDAE
from split import split

torch.set_num_threads(2)
SEEDS = (2020, 2021, 2022)
METRICS = ("ndcg@10", "recall@10", "hit@10", "ndcg@20", "recall@20", "hit@20")
REFERENCE = {
    "Pop": 0.145,
    "ItemKNN(k=100)": 0.281,
    "EASE(tuned)": 0.335,
    "BPR-MF": 0.292,
    "BPR-MF(patience=30)": 0.292,
}


class _DLAEOnly:
    """Adapter so the pure DLAE component can be benchmarked on its own."""

    def __init__(self, lam, p):
        self.m = DLAE(lam, p)

    def fit(self, data):
        self.X = torch.tensor(data["train"].toarray(), dtype=torch.float64)
        self.m.fit(self.X)
        return self

    def scores(self):
        with torch.no_grad():
            return self.m(self.X).float().numpy()


def models(seed, fast):
    yield "Pop", lambda d: Pop()
    yield "ItemKNN(k=100)", lambda d: ItemKNN(k=100)
    yield "EASE(tuned)", lambda d: EASE(tune_ease(d)[0])
    if not fast:
        yield "BPR-MF", lambda d: BPRMF(seed=seed)  # RecBole defaults
        yield "BPR-MF(patience=30)", lambda d: BPRMF(seed=seed, patience=30)
        yield "Mult-DAE", lambda d: MultDAE(seed=seed)
    yield "DLAE(300,p=.5)", lambda d: _DLAEOnly(300.0, 0.5)
    yield "DLAE+LowPass (ours)", lambda d: DLAELowPass(lam=300.0, p=0.5, k=64, w=0.2)


def main():
    fast = "--fast" in sys.argv
    res, secs, extra = {}, {}, {}
    for seed in SEEDS:
        d = split(seed)
        for name, make in models(seed, fast):
            t = time.time()
            m = make(d)
            if name == "EASE(tuned)":
                extra.setdefault(name, []).append(f"lambda={m.reg:g}")
            m.fit(d)
            sc = m.scores()
            secs.setdefault(name, []).append(time.time() - t)
            r = eval_test(sc, d)
            r["valid_ndcg@10"] = eval_valid(sc, d)["ndcg@10"]
            res.setdefault(name, []).append(r)
            if hasattr(m, "best_epoch"):
                extra.setdefault(name, []).append(f"best_ep={m.best_epoch}")
            print(
                f"seed {seed} {name:22s} ndcg@10 {r['ndcg@10']:.4f}  ({secs[name][-1]:.1f}s)",
                flush=True,
            )

    cols = ("valid_ndcg@10",) + METRICS
    print("\n| model | " + " | ".join(cols) + " | fit s | ref NDCG@10 |")
    print("|---" * (len(cols) + 3) + "|")
    for name, rs in res.items():
        cells = [
            f"{np.mean([r[c] for r in rs]):.4f} ± {np.std([r[c] for r in rs]):.4f}" for c in cols
        ]
        ref = REFERENCE.get(name, "")
        print(f"| {name} | " + " | ".join(cells) + f" | {np.mean(secs[name]):.1f} | {ref} |")
    for name, e in extra.items():
        print(f"{name}: {', '.join(e)}")


if __name__ == "__main__":
    main()
