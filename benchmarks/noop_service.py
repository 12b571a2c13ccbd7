"""The framework's floor: a BentoML endpoint that does nothing, served like the slots are."""

from __future__ import annotations

import bentoml


@bentoml.service(
    name="noop",
    workers=1,
    traffic={"timeout": 30, "concurrency": 64},
    logging={"access": {"enabled": False}},  # as the slots are served
)
class Noop:
    @bentoml.api(route="/noop")
    def noop(self, user_id: str, k: int = 10) -> dict:
        return {"user_id": user_id, "k": k}
