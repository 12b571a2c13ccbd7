"""What travels on the event stream: a shop's interaction event (`Event`, the canonical
interactions schema plus its idempotency key), and the subjects events and answers travel on.

The gateway validates events with this model before the broker gets them (POST /events); the
consumer validates again what it takes off the broker, since anything may publish there. The
rules are the ETL's (features.validation): a positive price where there is one (a purchase may
come without its price, as order logs send them), at least one unit; and a moment no later than
a minute from now.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

EVENTS_SUBJECT = "aisle.events"
ANSWERS_SUBJECT = "aisle.answers"
MAX_EVENTS_PER_POST = 1000
CLOCK_SKEW = timedelta(minutes=1)  # a device's clock may run a little ahead

Id = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\s]+$")]
EventType = Literal["view", "add_to_cart", "purchase", "rating"]


class Event(BaseModel):
    """One thing a shopper did, in the canonical interactions schema (README "Data")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: Id = Field(description="Unique per event: a retry sends the same id, counted once.")
    user_id: Id
    item_id: Id
    timestamp: datetime = Field(
        description="When it happened: ISO 8601 (no offset: UTC) or unix seconds."
    )
    event_type: EventType
    price: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = Field(
        None, description="Unit price paid or shown; a purchase without it is kept, price unknown."
    )
    quantity: Annotated[int, Field(ge=1)] | None = None
    rating: Annotated[float, Field(allow_inf_nan=False)] | None = None
    request_id: Annotated[str, Field(min_length=1, max_length=160)] | None = Field(
        None, description="The answer the shopper was shown (the X-Request-Id it came with)."
    )

    @model_validator(mode="after")
    def _rules(self) -> Event:
        moment = self.timestamp
        if moment.tzinfo is None:
            object.__setattr__(self, "timestamp", moment.replace(tzinfo=UTC))
        elif moment.utcoffset() != timedelta(0):
            object.__setattr__(self, "timestamp", moment.astimezone(UTC))
        if self.timestamp > datetime.now(UTC) + CLOCK_SKEW:
            raise ValueError("timestamp: in the future (more than a minute from now)")
        if self.event_type == "rating" and self.rating is None:
            raise ValueError("rating: required for event_type=rating")
        return self

    def record(self) -> dict[str, Any]:
        """As it goes on the broker and into the raw zone: JSON types, the time in ISO 8601 UTC."""
        out = self.model_dump(exclude_none=True)
        out["timestamp"] = self.timestamp.isoformat().replace("+00:00", "Z")
        return out


_EVENT = TypeAdapter(Event)


def problem(error: ValidationError) -> str:
    """A validation error as one line that names the field: `price: Input should be ...`."""
    first = error.errors()[0]
    message = first["msg"].removeprefix("Value error, ")
    where = ".".join(str(p) for p in first["loc"])
    return f"{where}: {message}" if where else message  # a rule's message names its field


def parse_events(items: list[Any]) -> tuple[list[Event], list[dict[str, Any]]]:
    """The valid events, and for each invalid one {"index", "error"} naming its field."""
    good, bad = [], []
    for index, item in enumerate(items):
        try:
            good.append(_EVENT.validate_python(item))
        except ValidationError as error:
            bad.append({"index": index, "error": problem(error)})
    return good, bad
