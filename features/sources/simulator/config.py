"""What to simulate: the shop's size and span (`SimulatorConfig`) and its drift knobs
(`DriftConfig`), each switched on at a date."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field, model_validator


class DriftConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    taste_shift_at: date | None = None
    taste_shift_strength: float = Field(0.5, ge=0, le=1)
    price_shock_at: date | None = None
    price_shock_pct: float = Field(0.2, gt=-1)
    price_shock_share: float = Field(0.3, ge=0, le=1)
    seasonality_amplitude: float = Field(0.0, ge=0, lt=1)
    new_items_at: date | None = None
    new_items: int = Field(50, ge=0)


class SimulatorConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = 7
    events: int = Field(1_000_000, gt=0)  # approximate number of interaction events
    users: int = Field(20_000, gt=0)
    items: int = Field(2_000, gt=0)  # the catalogue at the start; new items come on top
    categories: int = Field(20, gt=0)
    stores: int = Field(5, gt=0)
    start: date = date(2024, 1, 1)
    days: int = Field(182, ge=7)
    drift: DriftConfig = Field(default_factory=DriftConfig)
    # Grocery mode (on when staples_per_user > 0): each user has staple items, drawn once by
    # their tastes, that take `staple_share` of their views and convert `staple_cart_boost`
    # times as often, so they are bought again and again (events.py).
    staples_per_user: int = Field(0, ge=0)
    staple_share: float = Field(0.4, ge=0, le=1)
    staple_cart_boost: float = Field(4.0, ge=1)

    @model_validator(mode="after")
    def _every_category_has_an_item(self) -> SimulatorConfig:
        if self.items < self.categories:
            raise ValueError(f"items ({self.items}) must be >= categories ({self.categories})")
        return self
