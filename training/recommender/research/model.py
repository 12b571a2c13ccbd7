"""Aisle main model: DLAE + ideal low-pass filter ensemble, in PyTorch.

score(u) = (1 - w) * z_u( x_u B )  +  w * z_u( x_u D^-1/2 V_k V_k^T D^1/2 )

Component 1 -- DLAE (Steck 2020, "Autoencoders that don't overfit towards the
identity", NeurIPS).  Full-rank linear autoencoder trained with input dropout
(prob p) + L2 (lambda).  Its expected dropout loss has the closed form
    B = (G + Lambda)^-1 G,   G = X^T X,   Lambda = lambda I + p/(1-p) diagMat(diag G)
(no zero-diagonal constraint: the dropout penalty already stops it from
learning the identity; on this data DLAE beat EDLAE/EASE on validation).

Component 2 -- ideal low-pass graph filter (as in GF-CF, Shen et al. 2021):
normalised matrix R~ = D_u^-1/2 X D_i^-1/2; V_k = top-k eigenvectors of R~^T R~
(= right singular vectors).  Scores x_u D_i^-1/2 V_k V_k^T D_i^1/2 capture smooth,
global co-occurrence structure that the (heavily regularised) DLAE misses.

The two score matrices live on different scales, so each is z-normalised per
user over the items the user has not interacted with in train (z_u), then
mixed with weight w.  Everything is computed in closed form with torch.linalg
(float64) -- deterministic, ~1-2 s on 2 CPU cores; no SGD needed.
Hyper-parameters (lambda, p, k, w) were chosen on the VALIDATION split only
(see tune.py / RESULTS.md).
"""

import torch


def _zscore(s, seen):
    """Per-user z-normalisation over items not in `seen` (bool mask)."""
    s = s.clone()
    free = ~seen
    cnt = free.sum(1, keepdim=True).clamp(min=1)
    mean = (s * free).sum(1, keepdim=True) / cnt
    var = (((s - mean) * free) ** 2).sum(1, keepdim=True) / cnt
    return (s - mean) / var.sqrt().clamp(min=1e-12)


class DLAE(torch.nn.Module):
    """Dropout linear autoencoder, closed form (float64)."""

    def __init__(self, lam=200.0, p=0.67):
        super().__init__()
        self.lam, self.p = lam, p

    def fit(self, X):
        G = X.T @ X
        diag = torch.diagonal(G)
        A = G + torch.diag(self.lam + self.p / (1 - self.p) * diag)
        self.B = torch.linalg.solve(A, G)  # (I, I) item-item weights
        return self

    def forward(self, X):
        return X @ self.B


class LowPass(torch.nn.Module):
    """Ideal low-pass filter on the degree-normalised item-item graph."""

    def __init__(self, k=64):
        super().__init__()
        self.k = k

    def fit(self, X):
        du = X.sum(1).clamp(min=1)
        di = X.sum(0).clamp(min=1)
        R = X / du.sqrt()[:, None] / di.sqrt()[None, :]
        evals, evecs = torch.linalg.eigh(R.T @ R)  # ascending eigenvalues
        V = evecs[:, -self.k :]  # top-k
        self.di = di
        self.P = V @ V.T
        return self

    def forward(self, X):
        return (X / self.di.sqrt()) @ self.P * self.di.sqrt()


class DLAELowPass(torch.nn.Module):
    """Main model: z-score mix of DLAE and LowPass scores."""

    def __init__(self, lam=200.0, p=0.67, k=64, w=0.2):
        super().__init__()
        self.hp = dict(lam=lam, p=p, k=k, w=w)
        self.dlae, self.lp, self.w = DLAE(lam, p), LowPass(k), w

    def fit(self, data):
        self.X = torch.tensor(data["train"].toarray(), dtype=torch.float64)
        self.dlae.fit(self.X)
        self.lp.fit(self.X)
        return self

    @torch.no_grad()
    def component_scores(self):
        seen = self.X > 0
        return (_zscore(self.dlae(self.X), seen), _zscore(self.lp(self.X), seen))

    @torch.no_grad()
    def scores(self, w=None):
        w = self.w if w is None else w
        a, b = self.component_scores()
        return ((1 - w) * a + w * b).float().numpy()


class MultDAE(torch.nn.Module):
    """Mult-DAE (Liang et al. 2018), SGD-trained comparison model.

    L2-normalised input -> dropout(p) -> Linear(I, hid) -> tanh -> Linear(hid, I),
    multinomial log-likelihood, Adam; validation NDCG@10 checked every
    `every` epochs, best checkpoint kept (early stopping on valid only)."""

    def __init__(self, hid=600, drop=0.5, lr=1e-3, epochs=40, batch=128, every=5, seed=0):
        super().__init__()
        self.hp = dict(
            hid=hid, drop=drop, lr=lr, epochs=epochs, batch=batch, every=every, seed=seed
        )

    def _fwd(self, x, train):
        x = torch.nn.functional.normalize(x, dim=1)
        x = torch.nn.functional.dropout(x, self.hp["drop"], train)
        return self.dec(torch.tanh(self.enc(x)))

    def fit(self, data):
        from metrics import eval_valid

        hp = self.hp
        torch.manual_seed(hp["seed"])
        self.X = torch.tensor(data["train"].toarray(), dtype=torch.float32)
        U, I = self.X.shape
        self.enc, self.dec = torch.nn.Linear(I, hp["hid"]), torch.nn.Linear(hp["hid"], I)
        opt = torch.optim.Adam(self.parameters(), lr=hp["lr"])
        best = (-1.0, None)
        for ep in range(hp["epochs"]):
            perm = torch.randperm(U)
            for s in range(0, U, hp["batch"]):
                xb = self.X[perm[s : s + hp["batch"]]]
                loss = -(torch.log_softmax(self._fwd(xb, True), 1) * xb).sum(1).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
            if ep % hp["every"] == hp["every"] - 1:
                v = eval_valid(self.scores(), data)["ndcg@10"]
                if v > best[0]:
                    best = (v, {k: t.clone() for k, t in self.state_dict().items()})
                    self.best_epoch = ep
        self.load_state_dict(best[1])
        return self

    @torch.no_grad()
    def scores(self):
        return self._fwd(self.X, False).numpy()
