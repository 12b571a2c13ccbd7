"""The recommender as a BentoML service: POST /recommend and POST /recommend_batch.

    bentoml serve serving.recommender_service:RecommenderService --port 3000

The model version (AISLE_SERVE_MODEL_URI, else `recommender@champion`) is loaded from the MLflow
registry once, at start: the item autoencoder, or for a large catalogue its factor form, which
searches a faiss IVF index (training/recommender/factors.py, AISLE_RECOMMENDER_SEARCH). A user's
history comes from the online store per request: the live session the event stream pushes
(`user_session_fv`: the items touched since, newest first) ahead of the history as of the last
batch (`user_history_fv`), so a click shows in the next answer ("because you viewed X"). The
answer is never an error for a well-formed request: an unknown user, or an online store that does
not answer, gets the popularity list with `fallback: true` and the reason.
Malformed requests (k out of 1..1000, empty or blank ids, wrong types, unknown fields) are 400s.
"""

from __future__ import annotations

import logging

import bentoml

from core.settings import get_settings

from .common import add_middleware, device_name, served_model, service_options
from .schemas import ModelInfo, RecommendedItem, RecommendRequest, RecommendResponse

log = logging.getLogger(__name__)
HISTORY_VIEW = "user_history_fv"
SESSION_VIEW = "user_session_fv"
STORE_DOWN = "online store unavailable"


@bentoml.service(**service_options("recommender"))
class RecommenderService:
    def __init__(self) -> None:
        import torch

        from training.recommender.registry import MODEL_NAME, load_recommender

        torch.set_num_threads(1)  # one worker per slot; two slots share a small machine
        self.settings = get_settings()
        self.served = served_model(self.settings, MODEL_NAME)
        self.model = load_recommender(self.served.uri).to(device_name())
        if self.settings.recommender_search != "auto":
            self._use_search(self.settings.recommender_search)
        self.history = self._lookup(HISTORY_VIEW)
        self.session = self._lookup(SESSION_VIEW)
        self.fallbacks = bentoml.metrics.Counter(
            name="aisle_recommender_fallback",
            documentation="Answers that were not personal, by reason.",
            labelnames=["reason"],
        )
        log.info("serving %s on %s", self.served.uri, self.model.device)

    def _use_search(self, mode: str) -> None:
        if not hasattr(self.model, "use_search"):
            log.warning("search mode %r ignored: this model scores every item exactly", mode)
            return
        self.model.use_search(mode)

    def _lookup(self, view: str):
        from features.online import OnlineLookup

        try:
            return OnlineLookup(self.settings, view)
        except Exception as exc:  # no registry yet, or the store's config is unusable
            log.warning("no online %s (%s); answers go without it", view, exc)
            return None

    @bentoml.api(route="/recommend", input_spec=RecommendRequest)
    def recommend(
        self,
        user_id: str,
        k: int = 10,
        current_item: str | None = None,
        category: str | None = None,
    ) -> RecommendResponse:
        """Top-k items for a user, with a reason each; `fallback` when not personal."""
        request = RecommendRequest.model_construct(
            user_id=user_id, k=k, current_item=current_item, category=category
        )
        return self._answer([request])[0]

    @bentoml.api(route="/recommend_batch", batchable=True, max_batch_size=256, max_latency_ms=250)
    def recommend_batch(self, requests: list[RecommendRequest]) -> list[RecommendResponse]:
        """Many users in one call; concurrent calls are merged into one forward pass by
        adaptive batching (so nothing here may fail one caller for another's request)."""
        return self._answer(requests)

    @bentoml.api(route="/model")
    def model_info(self) -> ModelInfo:
        return ModelInfo(
            model=self.served.name,
            version=self.served.version,
            uri=self.served.uri,
            device=str(self.model.device),
            search=getattr(self.model, "search", "exact"),
            items=len(self.model.item_ids),
        )

    def _answer(self, requests: list[RecommendRequest]) -> list[RecommendResponse]:
        from training.recommender.predict import BadRequest, Request

        histories, reasons = self._histories([r.user_id for r in requests])
        asks = [
            Request(h, r.k, r.current_item, r.category)
            for h, r in zip(histories, requests, strict=True)
        ]
        try:
            answers = self.model.recommend_batch(asks)
        except BadRequest as exc:
            raise bentoml.exceptions.InvalidArgument(str(exc)) from None
        out = []
        for request, answer, reason in zip(requests, answers, reasons, strict=True):
            fallback_reason = reason or answer.fallback_reason
            if answer.fallback:
                self.fallbacks.labels(reason=fallback_reason or "").inc()
            out.append(
                RecommendResponse(
                    user_id=request.user_id,
                    items=[RecommendedItem(**vars(item)) for item in answer.items],
                    fallback=answer.fallback,
                    fallback_reason=fallback_reason if answer.fallback else None,
                    notes=answer.notes,
                    model_version=self.served.version,
                )
            )
        return out

    def _histories(self, users: list[str]) -> tuple[list[list[str] | None], list[str | None]]:
        """Each user's history and, where there is none, why (unknown user, store down)."""
        from features.online import FeaturesUnavailable

        if self.history is None:
            return [None] * len(users), [STORE_DOWN] * len(users)
        try:
            found = self.history(users)
            live = self.session(users) if self.session is not None else None
        except FeaturesUnavailable as exc:
            log.warning("%s", exc)
            return [None] * len(users), [STORE_DOWN] * len(users)
        histories, reasons = [], []
        for i, stored in enumerate(found.features["history_item_ids"]):
            recent = live.features["recent_item_ids"][i] if live is not None else None
            # the session's items first (newest first), then the batch history's others
            items = list(dict.fromkeys([*(recent or []), *(stored or [])]))
            histories.append(items or None)
            reasons.append(None if items else "unknown user: no history yet")
        return histories, reasons


add_middleware(RecommenderService, get_settings())
