"""Full-ranking top-k metrics computed exactly as RecBole 1.2.1 does
(recbole/evaluator/metrics.py: Hit, Recall, NDCG; collector/evaluator in full mode).

For each user with >= 1 target item:
  - all items are scored; already-seen items (train for validation,
    train+valid for test) are set to -inf;
  - pos_index[u, r] = 1 if the item at rank r (1..K) is a target item;
  - Hit@k    = 1[any hit in top k]
  - Recall@k = #hits in top k / |targets(u)|
  - NDCG@k   = DCG@k / IDCG, IDCG = sum_{i=1}^{min(|targets|, k)} 1/log2(i+1)
  - MRR@k    = 1/rank of the first hit (0 if none) -- RecBole's valid_metric
Metrics are averaged over those users (users without targets are skipped,
as RecBole's full-sort eval only iterates over users present in the split).
"""

import numpy as np
import scipy.sparse as sp
import torch

TOPK = (10, 20)


def _to_dense_bool(m):
    if sp.issparse(m):
        m = m.toarray()
    return torch.as_tensor(np.asarray(m) > 0)


def evaluate(scores, seen, target, topk=TOPK, per_user=False):
    """scores: (U, I) array/tensor; seen: (U, I) sparse mask to exclude;
    target: (U, I) sparse ground truth. Returns dict metric@k -> mean."""
    scores = torch.as_tensor(
        np.asarray(scores) if not torch.is_tensor(scores) else scores, dtype=torch.float32
    ).clone()
    seen_t = _to_dense_bool(seen)
    tgt = _to_dense_bool(target)
    users = torch.nonzero(tgt.sum(1) > 0).squeeze(1)
    scores, seen_t, tgt = scores[users], seen_t[users], tgt[users]
    scores[seen_t] = -float("inf")
    kmax = max(topk)
    top = torch.topk(scores, kmax, dim=1).indices
    pos = torch.gather(tgt, 1, top).double().numpy()  # (n, kmax) 0/1
    pos_len = tgt.sum(1).double().numpy()  # |targets(u)|
    cum = np.cumsum(pos, axis=1)
    disc = 1.0 / np.log2(np.arange(2, kmax + 2))
    dcg = np.cumsum(pos * disc, axis=1)
    idcg_full = np.cumsum(disc)
    out, pu = {}, {}
    for k in topk:
        n_ideal = np.minimum(pos_len, k).astype(int)
        idcg = idcg_full[n_ideal - 1]
        pu[f"recall@{k}"] = cum[:, k - 1] / pos_len
        pu[f"ndcg@{k}"] = dcg[:, k - 1] / idcg
        pu[f"hit@{k}"] = (cum[:, k - 1] > 0).astype(float)
        # MRR@k (RecBole's default valid_metric): 1/rank of first hit in top k
        first = np.argmax(pos[:, :k] > 0, axis=1)
        pu[f"mrr@{k}"] = np.where(cum[:, k - 1] > 0, 1.0 / (first + 1), 0.0)
    for m, v in pu.items():
        out[m] = float(v.mean())
    return (out, pu) if per_user else out


def eval_valid(scores, data, **kw):
    """Validation: mask train items, targets = valid items."""
    return evaluate(scores, data["train"], data["valid"], **kw)


def eval_test(scores, data, **kw):
    """Test: mask train + valid items, targets = test items."""
    return evaluate(scores, data["train"] + data["valid"], data["test"], **kw)
