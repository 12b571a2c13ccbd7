"""Approximate top-k inner-product search over item factors (faiss), for large catalogues.

Item factors of the recommender's factor form (factors.py) carry popularity in their norms
(Q = D^1/2 V): on the simulator at 1,000,000 items the squared norms run from 0 to 0.69 with a
median of 2e-7. Two measures make an IVF index work on such vectors:

* **MIPS to nearest neighbour** (Bachrach et al. 2014): an item x becomes [x, sqrt(M - |x|^2)],
  a query q becomes [q, 0], so |q - x'|^2 = |q|^2 + M - 2 q.x and the nearest item is the best
  scored. An IVF index on the raw inner product reached recall@10 0.44 at nprobe 128 (100,000
  items); the reduction 0.99 at nprobe 16.
* **Norm ranging** (after Yan et al. 2018): one huge M drowns the small items' coordinates in
  float32 (recall@10 0.13 at 1,000,000 items). The highest-norm items (the head, 1 %) are scored
  exactly, the rest (the tail, M taken from the tail) through the index, and candidates merged
  by their exact score: recall@10 1.0 at nprobe 4, 0.25 ms a query.

Items whose factors are all zero (never touched in training) score 0 for every query and are
left out of the index; exact search still ranks them.
"""

from __future__ import annotations

import numpy as np
import torch

HEAD_SHARE, MIN_HEAD = 0.01, 1000


class FactorIndex:
    def __init__(self, head: np.ndarray, tail: np.ndarray, index, nprobe: int = 1) -> None:
        self.head = torch.as_tensor(np.asarray(head, dtype=np.int64))
        self.tail = np.asarray(tail, dtype=np.int64)
        self.index = index
        self.nprobe = nprobe

    @property
    def nprobe(self) -> int:
        return int(self.index.nprobe)

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        self.index.nprobe = int(value)

    @property
    def nlist(self) -> int:
        return int(self.index.nlist)

    @classmethod
    def build(
        cls,
        items: np.ndarray,
        seed: int = 0,
        head_share: float = HEAD_SHARE,
        min_head: int = MIN_HEAD,
    ) -> FactorIndex:
        import faiss

        norms = (items.astype(np.float64) ** 2).sum(1)
        order = np.argsort(-norms, kind="stable")
        n_head = min(len(items), max(min_head, int(head_share * len(items))))
        head, tail = order[:n_head], order[n_head:]
        tail = np.sort(tail[norms[tail] > 0])
        dim = items.shape[1] + 1
        nlist = max(1, int(4 * np.sqrt(len(tail))))
        index = faiss.IndexIVFFlat(faiss.IndexFlatL2(dim), dim, nlist, faiss.METRIC_L2)
        if len(tail):
            vectors = _augment(items[tail])
            sample = np.random.default_rng(seed).choice(
                len(tail), size=min(len(tail), 50 * nlist), replace=False
            )
            index.train(vectors[sample])
            index.add(vectors)
        return cls(np.sort(head), tail, index)

    def search(
        self, items: torch.Tensor, query: torch.Tensor, want: int
    ) -> tuple[list[int], list[float]]:
        """Up to `want` candidates, best first by their exact inner product with `query`."""
        head_scores = items[self.head] @ query
        best = torch.topk(head_scores, min(want, len(self.head)))
        found = self.head[best.indices].tolist()
        if len(self.tail):
            probe = np.hstack([query.cpu().numpy(), [0.0]]).astype(np.float32)[None, :]
            _, positions = self.index.search(probe, want)
            found += self.tail[positions[0][positions[0] >= 0]].tolist()
        scores = items[found] @ query
        order = torch.argsort(scores, descending=True)[:want]
        return [found[i] for i in order.tolist()], scores[order].tolist()

    # -- checkpoint: tensors only, so it loads with weights_only=True ---------------------------
    def to_payload(self) -> dict:
        import faiss

        return {
            "head": self.head.clone(),
            "tail": torch.from_numpy(self.tail),
            "index": torch.from_numpy(faiss.serialize_index(self.index)),
            "nprobe": self.nprobe,
        }

    @classmethod
    def from_payload(cls, payload: dict) -> FactorIndex:
        import faiss

        index = faiss.deserialize_index(payload["index"].numpy())
        return cls(payload["head"].numpy(), payload["tail"].numpy(), index, payload["nprobe"])


def _augment(items: np.ndarray) -> np.ndarray:
    norms = (items.astype(np.float64) ** 2).sum(1)
    extra = np.sqrt(np.maximum(norms.max() - norms, 0.0))
    return np.hstack([items, extra[:, None]]).astype(np.float32)
