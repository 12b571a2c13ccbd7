"""Protocol A split for MovieLens-100k, mirroring RecBole 1.2.1 defaults.

RecBole config used as reference (properties/overall.yaml):
    eval_args: split {'RS': [0.8, 0.1, 0.1]}, group_by user, order RO, mode full
    seed 2020, no filtering for ml-100k (properties/dataset/ml-100k.yaml).

Pipeline reproduced (recbole/data/dataset/dataset.py, RecBole 1.2.1):
  1. Rows are kept in file order; user/item tokens are remapped to ids in order
     of first appearance (pd.factorize, as RecBole's _remap does; RecBole
     reserves id 0 for padding, we use 0-based ids -- irrelevant for metrics).
  2. init_seed(seed) -> torch.manual_seed(seed); then `order: RO` calls
     Dataset.shuffle() -> Interaction.shuffle(): index = torch.randperm(n)
     (dataset.py:1826-1827, interaction.py:301-304).
  3. split_by_ratio(ratios, group_by=user) (dataset.py:1623-1664): rows are
     grouped per user *in shuffled order* (_grouped_index, dataset.py:1591), and
     each user's list is cut with _calcu_split_ids (dataset.py:1600-1621):
         cnt = [int(r * tot) for r in ratios]        # floor for every part
         cnt[0] = tot - sum(cnt[1:])                 # train takes the remainder
         for i in 1..len-1: if cnt[0] <= 1: break
             if 0 < ratios[-i]*tot < 1: cnt[-i] += 1; cnt[0] -= 1
     i.e. valid = floor(0.1*n), test = floor(0.1*n), train = rest; a part whose
     exact share is in (0,1) is bumped to 1 while train keeps >1 item.
     (ml-100k users have >= 20 ratings, so the bump never fires there.)
"""

import importlib.util
import os

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

DATA = os.path.join(
    os.path.dirname(importlib.util.find_spec("recbole").origin),  # installed by `make venv`
    "dataset_example",
    "ml-100k",
    "ml-100k.inter",
)
RATIOS = [0.8, 0.1, 0.1]


def load_interactions(path=DATA):
    """Return (users, items, n_users, n_items) as int arrays in file order."""
    df = pd.read_csv(path, sep="\t")
    df.columns = [c.split(":")[0] for c in df.columns]
    u, _ = pd.factorize(df["user_id"])
    i, _ = pd.factorize(df["item_id"])
    return u.astype(np.int64), i.astype(np.int64), int(u.max() + 1), int(i.max() + 1)


def calcu_split_sizes(tot, ratios):
    """Exact port of RecBole Dataset._calcu_split_ids, returning part sizes."""
    s = sum(ratios)
    ratios = [r / s for r in ratios]  # split_by_ratio normalises first
    cnt = [int(ratios[i] * tot) for i in range(len(ratios))]
    cnt[0] = tot - sum(cnt[1:])
    for i in range(1, len(ratios)):
        if cnt[0] <= 1:
            break
        if 0 < ratios[-i] * tot < 1:
            cnt[-i] += 1
            cnt[0] -= 1
    return cnt


def split(seed, ratios=RATIOS, path=DATA):
    """Protocol-A split. Returns dict with CSR matrices train/valid/test (users x items)."""
    users, items, n_users, n_items = load_interactions(path)
    n = len(users)
    torch.manual_seed(seed)  # RecBole init_seed before create_dataset
    perm = torch.randperm(n).numpy()  # Interaction.shuffle()
    users, items = users[perm], items[perm]

    # group rows by user, preserving the shuffled order within each user
    order = np.argsort(users, kind="stable")
    bounds = np.flatnonzero(np.diff(users[order])) + 1
    parts = [[], [], []]
    for grp in np.split(order, bounds):
        sizes = calcu_split_sizes(len(grp), ratios)
        start = 0
        for p, c in enumerate(sizes):
            parts[p].append(grp[start : start + c])
            start += c

    def to_csr(idx):
        idx = np.concatenate(idx)
        return sp.csr_matrix(
            (np.ones(len(idx), dtype=np.float32), (users[idx], items[idx])),
            shape=(n_users, n_items),
        )

    train, valid, test = (to_csr(p) for p in parts)
    return {
        "train": train,
        "valid": valid,
        "test": test,
        "n_users": n_users,
        "n_items": n_items,
        "seed": seed,
    }


if __name__ == "__main__":
    d = split(2020)
    for k in ("train", "valid", "test"):
        print(k, d[k].nnz)
    print(
        "users",
        d["n_users"],
        "items",
        d["n_items"],
        "items w/o train interactions",
        int((d["train"].sum(0) == 0).sum()),
    )
