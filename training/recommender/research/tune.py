"""Validation-only grid search for DLAELowPass (pooled over the 3 split seeds).

For each config the mean VALID NDCG@10 over seeds 2020-2022 is computed
(train -> predict valid, train items masked); the best config is printed.
Test data is never touched here.
"""

import itertools
import time

import numpy as np
import torch
from metrics import eval_valid
from model import DLAE, _zscore
from split import split

torch.set_num_threads(2)
SEEDS = (2020, 2021, 2022)
LAMS, PS, KS, WS = (100, 200, 300), (0.5, 0.67, 0.75), (32, 48, 64, 96, 128), (0.0, 0.1, 0.2, 0.3)


def main():
    t0 = time.time()
    res = {}
    for seed in SEEDS:
        d = split(seed)
        X = torch.tensor(d["train"].toarray(), dtype=torch.float64)
        seen = X > 0
        du, di = X.sum(1).clamp(min=1), X.sum(0).clamp(min=1)
        R = X / du.sqrt()[:, None] / di.sqrt()[None, :]
        _, evecs = torch.linalg.eigh(R.T @ R)
        lp = {
            k: _zscore((X / di.sqrt()) @ (evecs[:, -k:] @ evecs[:, -k:].T) * di.sqrt(), seen)
            for k in KS
        }
        for lam, p in itertools.product(LAMS, PS):
            a = _zscore(DLAE(lam, p).fit(X)(X), seen)
            for k, w in itertools.product(KS, WS):
                if w == 0 and k != KS[0]:
                    continue
                v = eval_valid(((1 - w) * a + w * lp[k]).numpy(), d)["ndcg@10"]
                res.setdefault((lam, p, k, w), []).append(v)
    ranked = sorted(res.items(), key=lambda kv: -np.mean(kv[1]))
    print("top 10 configs by mean valid NDCG@10 (lam, p, k, w):")
    for cfg, v in ranked[:10]:
        print(f"  {cfg}  valid {np.mean(v):.4f}  per-seed {np.round(v, 4).tolist()}")
    best_dlae = max((kv for kv in res.items() if kv[0][3] == 0), key=lambda kv: np.mean(kv[1]))
    print("best pure DLAE (w=0):", best_dlae[0][:2], f"{np.mean(best_dlae[1]):.4f}")
    print(f"grid search took {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
