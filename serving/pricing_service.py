"""The pricing model as a BentoML service: POST /price and POST /price_batch.

    bentoml serve serving.pricing_service:PricingService --port 3000

The model version (AISLE_SERVE_MODEL_URI, else `pricing@champion`) is loaded from the MLflow
registry once, at start; an item's `pricing_v1` features come from the online store per request.
A quote is the whole-cent price that maximises expected profit (or revenue) inside the request's
guardrails (`training.pricing.quoting`); it is never a price a guardrail forbids. The shop's price
step and preferred endings (AISLE_QUOTING__...) apply wherever the request sets none; a quote that
could keep no preferred ending says so in its `notes`.

Errors say what to fix: 404 for an item and store the online store or the model does not know,
400 for contradictory guardrails or a missing cost, 422 when the item's own features cannot be
priced from (a NaN shelf price). When the online store does not answer, an item and store this
slot has quoted before is quoted on its last copy of their features, marked `fallback: true`
with the reason; one it has not seen gets 503. /price_batch answers every request, each with
its quote or its error, in one feature round trip.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from http import HTTPStatus
from typing import Any

import bentoml

from core.settings import get_settings

from .common import add_middleware, served_model, service_options
from .schemas import (
    MAX_BATCH,
    ModelInfo,
    PriceBatchResponse,
    PriceError,
    PriceRequest,
    PriceResponse,
)

log = logging.getLogger(__name__)
RECENT_ROWS = 100_000  # item x store feature rows each slot keeps for an online store outage


class QuoteRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@bentoml.service(**service_options("pricing"))
class PricingService:
    def __init__(self) -> None:
        import torch

        from training.pricing.registry import MODEL_NAME, load_pricing

        torch.set_num_threads(1)
        self.settings = get_settings()
        self.served = served_model(self.settings, MODEL_NAME)
        self.model = load_pricing(self.served.uri)
        self.features = self._features()
        self.recent: OrderedDict[tuple[str, str], Any] = OrderedDict()
        log.info("serving %s", self.served.uri)

    def _features(self):
        from training.pricing.online import PricingFeatures

        try:
            return PricingFeatures(self.settings)
        except Exception as exc:  # no registry yet: every quote answers 503 until there is
            log.warning("no online pricing features (%s)", exc)
            return None

    @bentoml.api(route="/price", input_spec=PriceRequest)
    def price(self, **fields: Any) -> PriceResponse:
        """The price for an item in a store, with expected units, profit and elasticity."""
        answer = self._quotes([PriceRequest.model_construct(**fields)])[0]
        if isinstance(answer, PriceError):
            raise _http_error(answer)
        return answer

    @bentoml.api(route="/price_batch")
    def price_batch(self, requests: list[PriceRequest]) -> PriceBatchResponse:
        """Up to 1000 items: every request answered with its quote or its error."""
        if not 1 <= len(requests) <= MAX_BATCH:
            raise bentoml.exceptions.InvalidArgument(
                f"send 1 to {MAX_BATCH} requests per batch, got {len(requests)}"
            )
        return PriceBatchResponse(results=self._quotes(requests), model_version=self.served.version)

    @bentoml.api(route="/model")
    def model_info(self) -> ModelInfo:
        return ModelInfo(
            model=self.served.name, version=self.served.version, uri=self.served.uri, device="cpu"
        )

    def _quotes(self, requests: list[PriceRequest]) -> list[PriceResponse | PriceError]:
        keys = [(r.item_id, r.store_id) for r in requests]
        rows, outage = self._rows(keys)
        out: list[PriceResponse | PriceError] = []
        for request, row in zip(requests, rows, strict=True):
            try:
                if row is None and outage:
                    raise QuoteRefused(503, f"online features: {outage}")
                if row is None:
                    raise QuoteRefused(
                        404,
                        f"no online pricing features for item_id {request.item_id!r} in "
                        f"store_id {request.store_id!r}",
                    )
                answer = self._quote(request, row)
                if outage:
                    answer.fallback = True
                    answer.fallback_reason = (
                        f"online store unavailable ({outage}); quoted on this slot's last copy "
                        "of the item's features"
                    )
                out.append(answer)
            except QuoteRefused as exc:
                out.append(PriceError(item_id=request.item_id, store_id=request.store_id,
                                      status=exc.status, error=str(exc)))  # fmt: skip
        return out

    def _rows(self, keys: list[tuple[str, str]]) -> tuple[list[Any], str | None]:
        """Each key's feature row (None: unknown) and, when the online store did not answer,
        why: the rows are then this slot's last copies (None where it has none)."""
        from features.online import FeaturesUnavailable

        if self.features is None:
            self.features = self._features()
        try:
            if self.features is None:
                raise FeaturesUnavailable("no pricing_v1 feature service in the registry yet")
            frame, found = self.features.rows(keys)
        except FeaturesUnavailable as exc:
            return [self.recent.get(key) for key in keys], str(exc)
        rows = []
        for n, key in enumerate(keys):
            row = frame.iloc[[n]].reset_index(drop=True) if found[n] else None
            if row is not None:
                self.recent[key] = row
                self.recent.move_to_end(key)
            rows.append(row)
        while len(self.recent) > RECENT_ROWS:
            self.recent.popitem(last=False)
        return rows, None

    def _quote(self, request: PriceRequest, row: Any) -> PriceResponse:
        from training.pricing.design import BadFeatures, UnknownEntity
        from training.pricing.quoting import GuardrailError, GuardrailViolation, house_guardrails

        cost = request.cost if request.cost is not None else _feature(row, "cost")
        if cost is None:
            raise QuoteRefused(400, "cost: the item has no cost feature; send cost")
        try:
            guardrails = house_guardrails(request.guardrails, self.settings.quoting)
            quote = self.model.quote(
                row, cost=cost, guardrails=guardrails, current_price=request.current_price
            )
        except UnknownEntity as exc:
            raise QuoteRefused(404, f"{exc} (model version {self.served.version})") from None
        except GuardrailError as exc:
            raise QuoteRefused(400, str(exc)) from None
        except BadFeatures as exc:
            raise QuoteRefused(422, f"the item's online features: {exc}") from None
        except GuardrailViolation as exc:  # a bug: refuse loudly, never publish the price
            log.error("refused a quote: %s", exc)
            raise QuoteRefused(500, f"refused to quote: {exc}") from None
        except ValueError as exc:
            raise QuoteRefused(422, f"could not quote: {exc}") from None
        decision = quote.decision
        return PriceResponse(
            item_id=quote.item_id,
            store_id=quote.store_id,
            price=decision.price,
            current_price=decision.current_price,
            cost=decision.cost,
            expected_units=decision.expected_units,
            expected_profit=decision.expected_profit,
            expected_revenue=decision.expected_revenue,
            elasticity=_finite(decision.elasticity),
            elasticity_std=_finite(quote.elasticity_std),
            objective=decision.objective,
            binding=list(decision.binding),
            notes=list(decision.notes),
            features_as_of=row["event_timestamp"].iloc[0].to_pydatetime(),
            model_version=self.served.version,
        )


def _feature(row: Any, name: str) -> float | None:
    if name not in row:
        return None
    value = row[name].iloc[0]
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _http_error(error: PriceError) -> bentoml.exceptions.BentoMLException:
    return bentoml.exceptions.BentoMLException(error.error, error_code=HTTPStatus(error.status))


add_middleware(PricingService, get_settings())
