"""Baselines re-implemented after RecBole 1.2.1 (recbole/model/general_recommender):
Pop, ItemKNN (cosine, k=100, shrink=0), EASE (closed form), BPR-MF (torch).

Every model exposes fit(data) -> self and scores() -> (U, I) float32 array
(scores for all users and all items; masking is done by metrics.py).
"""

import numpy as np
import torch
from metrics import eval_valid


class Pop:
    """Item popularity = number of train interactions (RecBole Pop)."""

    def fit(self, data):
        self.cnt = np.asarray(data["train"].sum(0)).ravel().astype(np.float32)
        self.n_users = data["n_users"]
        return self

    def scores(self):
        return np.tile(self.cnt, (self.n_users, 1))


class ItemKNN:
    """Item-based KNN as in RecBole's ComputeSimilarity(method='item'):
    sim(i, j) = x_i.x_j / (|x_i| |x_j| + shrink + 1e-6), self-similarity 0;
    for each target item j keep its top-k most similar items i (non-zero only)
    -> W[i, j]; score(u, j) = sum_i X[u, i] W[i, j]."""

    def __init__(self, k=100, shrink=0.0):
        self.k, self.shrink = k, shrink

    def fit(self, data):
        X = data["train"].astype(np.float32)
        self.X = X
        S = (X.T @ X).toarray().astype(np.float32)
        norm = np.sqrt(np.asarray(X.power(2).sum(0)).ravel())
        np.fill_diagonal(S, 0.0)
        S = S / (np.outer(norm, norm) + self.shrink + 1e-6)
        # per column j keep top-k rows
        k = min(self.k, S.shape[0])
        idx = np.argpartition(-S, k - 1, axis=0)[:k]  # (k, I)
        W = np.zeros_like(S)
        cols = np.arange(S.shape[1])[None, :].repeat(k, 0)
        W[idx, cols] = S[idx, cols]
        self.W = W
        return self

    def scores(self):
        return np.asarray(self.X @ self.W, dtype=np.float32)


class EASE:
    """EASE (Steck 2019): B = I - P diagMat(1/diag(P)), P = (X^T X + lambda I)^-1."""

    def __init__(self, reg=250.0):
        self.reg = reg

    def fit(self, data):
        X = data["train"]
        G = (X.T @ X).toarray().astype(np.float64)
        G[np.diag_indices_from(G)] += self.reg
        P = np.linalg.inv(G)
        B = P / (-np.diag(P))
        np.fill_diagonal(B, 0.0)
        self.B, self.X = B, X
        return self

    def scores(self):
        return np.asarray(self.X @ self.B, dtype=np.float32)


def tune_ease(data, grid=(50, 100, 150, 200, 250, 300, 400, 500, 700, 1000), metric="ndcg@10"):
    """Pick EASE lambda by validation metric (train-only fit, valid targets)."""
    best = None
    log = []
    for reg in grid:
        v = eval_valid(EASE(reg).fit(data).scores(), data)[metric]
        log.append((reg, v))
        if best is None or v > best[1]:
            best = (reg, v)
    return best[0], log


class BPRMF(torch.nn.Module):
    """BPR-MF with RecBole's defaults: embedding 64, xavier_normal init,
    loss -log(1e-10 + sigmoid(pos - neg)), Adam lr 1e-3, batch 2048,
    1 uniform negative per positive (excluding the user's train items),
    train pairs shuffled each epoch, eval every epoch on valid MRR@10,
    early stop when >10 consecutive non-improving evals, max 300 epochs, restore best."""

    def __init__(
        self,
        dim=64,
        lr=1e-3,
        batch=2048,
        epochs=300,
        patience=10,
        valid_metric="mrr@10",
        seed=2020,
        verbose=False,
    ):
        super().__init__()
        self.hp = dict(
            dim=dim,
            lr=lr,
            batch=batch,
            epochs=epochs,
            patience=patience,
            valid_metric=valid_metric,
            seed=seed,
        )
        self.verbose = verbose

    def fit(self, data):
        hp = self.hp
        torch.manual_seed(hp["seed"])
        rng = np.random.default_rng(hp["seed"])
        X = data["train"].tocsr()
        U, I = X.shape
        self.ue = torch.nn.Embedding(U, hp["dim"])
        self.ie = torch.nn.Embedding(I, hp["dim"])
        torch.nn.init.xavier_normal_(self.ue.weight)
        torch.nn.init.xavier_normal_(self.ie.weight)
        opt = torch.optim.Adam(self.parameters(), lr=hp["lr"])
        coo = X.tocoo()
        users = coo.row.astype(np.int64)
        pos = coo.col.astype(np.int64)
        seen = set(zip(users.tolist(), pos.tolist()))
        best, best_state, bad = -1.0, None, 0
        self.history = []
        for ep in range(hp["epochs"]):
            order = rng.permutation(len(users))
            u_e, p_e = users[order], pos[order]
            # uniform negatives, rejection-resampled if the user saw the item
            neg = rng.integers(0, I, len(u_e))
            for t in range(len(neg)):
                while (u_e[t], neg[t]) in seen:
                    neg[t] = rng.integers(0, I)
            u_t, p_t, n_t = map(torch.from_numpy, (u_e, p_e, neg))
            self.train()
            for s in range(0, len(u_t), hp["batch"]):
                ub, pb, nb = (
                    u_t[s : s + hp["batch"]],
                    p_t[s : s + hp["batch"]],
                    n_t[s : s + hp["batch"]],
                )
                ue = self.ue(ub)
                d = (ue * self.ie(pb)).sum(1) - (ue * self.ie(nb)).sum(1)
                loss = -torch.log(1e-10 + torch.sigmoid(d)).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
            v = eval_valid(self.scores(), data)[hp["valid_metric"]]
            self.history.append(v)
            # RecBole utils.early_stopping: ties count as improvement and
            # training stops once cur_step > stopping_step (11 bad evals)
            if v >= best:
                best, bad = v, 0
                best_state = {k: t.detach().clone() for k, t in self.state_dict().items()}
            else:
                bad += 1
                if bad > hp["patience"]:
                    break
            if self.verbose and ep % 10 == 0:
                print(f"  bpr ep {ep} loss {loss.item():.4f} valid {v:.4f}")
        self.load_state_dict(best_state)
        self.best_epoch = len(self.history) - 1 - int(np.argmax(self.history[::-1]))
        return self

    @torch.no_grad()
    def scores(self):
        return (self.ue.weight @ self.ie.weight.T).numpy()
