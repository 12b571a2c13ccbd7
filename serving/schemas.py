"""The HTTP contract of the scoring services: typed requests and answers (BentoML derives the
OpenAPI schema and the 400 answers for malformed input from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from training.pricing.quoting import Guardrails

MAX_K = 1000  # a shop page shows tens of items; more is a client bug, answered 400
MAX_BATCH = 1000  # items per /price_batch call (every body is also capped in bytes)
Id = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\s]+$")]
K = Annotated[int, Field(ge=1, le=MAX_K, description=f"How many items, 1..{MAX_K}.")]
Amount = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecommendRequest(_Strict):
    user_id: Id
    k: K = 10
    current_item: Id | None = Field(None, description="The item page the shopper is on.")
    category: Annotated[str, Field(min_length=1, max_length=128)] | None = Field(
        None, description="Only items of this category."
    )


class RecommendedItem(BaseModel):
    item_id: str
    score: float
    reason: str = Field(description='For a shopper: "because you viewed Star Wars (1977)".')
    because_of: str | None = Field(None, description="The id of the item behind the reason.")
    name: str | None = Field(None, description="The item's display name, where it has one.")


class RecommendResponse(BaseModel):
    user_id: str
    items: list[RecommendedItem]
    fallback: bool = Field(description="True when the answer is not personal (see the reason).")
    fallback_reason: str | None = None
    notes: list[str] = []
    model_version: str


class PriceRequest(_Strict):
    item_id: Id
    store_id: Id
    cost: Amount | None = Field(None, description="Unit cost; default: the item's cost feature.")
    current_price: Amount | None = Field(
        None, description="The price now, for max_change_pct; default: the shelf price feature."
    )
    guardrails: Guardrails | None = None


class PriceResponse(BaseModel):
    item_id: str
    store_id: str
    price: float
    current_price: float | None
    cost: float
    expected_units: float
    expected_profit: float
    expected_revenue: float
    elasticity: float | None
    elasticity_std: float | None
    objective: str
    binding: list[str]
    notes: list[str] = Field(
        [], description="What a reader must know, e.g. no preferred ending fitted the guardrails."
    )
    features_as_of: datetime | None
    fallback: bool = Field(
        False,
        description="True when quoted on the slot's last copy of the features (the "
        "online store did not answer; see the reason).",
    )
    fallback_reason: str | None = None
    model_version: str


class PriceError(BaseModel):
    item_id: str
    store_id: str
    status: int = Field(description="The HTTP status /price would have answered.")
    error: str


class PriceBatchRequest(_Strict):
    requests: Annotated[list[PriceRequest], Field(min_length=1, max_length=MAX_BATCH)]


class PriceBatchResponse(BaseModel):
    results: list[PriceResponse | PriceError] = Field(
        description="One per request, in order: a quote, or why there is none."
    )
    model_version: str


class ModelInfo(BaseModel):
    model: str
    version: str
    uri: str
    device: str
    search: str | None = None  # recommender: exact, or ivf (approximate, faiss)
    items: int | None = None  # recommender: the catalogue's size
