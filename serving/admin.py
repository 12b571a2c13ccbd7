"""The gateway's admin API as Python calls (httpx), with the token from the settings."""

from __future__ import annotations

from typing import Any

import httpx

from core.settings import Settings


class AdminRefused(RuntimeError):
    """The gateway refused an admin call (no or wrong token: 401), or is not running."""


class GatewayAdmin:
    def __init__(self, settings: Settings, timeout_s: float = 10.0) -> None:
        if settings.admin_token is None:
            raise AdminRefused(
                "admin actions need AISLE_ADMIN_TOKEN in the environment (the gateway's token)"
            )
        self.base = settings.gateway_url
        self.client = httpx.Client(
            base_url=self.base,
            timeout=timeout_s,
            headers={"Authorization": f"Bearer {settings.admin_token.get_secret_value()}"},
        )

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise AdminRefused(f"the gateway at {self.base} did not answer: {exc}") from None
        if response.status_code == 401:
            raise AdminRefused(f"the gateway refused the token (401): {response.text}")
        if response.status_code >= 400:
            raise AdminRefused(f"{method} {path}: {response.status_code} {response.text}")
        return response.json()

    def status(self) -> dict[str, Any]:
        return self._call("GET", "/admin/status")

    def set_slot(self, model: str, colour: str, url: str | None) -> dict[str, Any]:
        return self._call(
            "POST", "/admin/slots", json={"model": model, "colour": colour, "url": url}
        )

    def switch(self, model: str, colour: str) -> dict[str, Any]:
        return self._call("POST", "/admin/switch", json={"model": model, "colour": colour})

    def shadow(self, model: str, colour: str | None, share: float = 0.0) -> dict[str, Any]:
        body = {"model": model, "colour": colour, "share": share}
        return self._call("POST", "/admin/shadow", json=body)

    def stats(self, model: str, colour: str, since: float, role: str = "live") -> dict[str, Any]:
        params = {"model": model, "colour": colour, "since": since, "role": role}
        return self._call("GET", "/admin/stats", params=params)

    def pairs(self, model: str, since: float) -> list[dict[str, Any]]:
        return self._call("GET", "/admin/pairs", params={"model": model, "since": since})

    def recent(self, model: str, n: int = 100) -> list[dict[str, Any]]:
        return self._call("GET", "/admin/recent", params={"model": model, "n": n})

    def experiments(self) -> dict[str, Any]:
        return self._call("GET", "/admin/experiments")

    def start_experiment(self, experiment: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/admin/experiments", json=experiment)

    def end_experiment(self, model: str, reason: str, winner: str = "control") -> dict[str, Any]:
        body = {"model": model, "reason": reason, "winner": winner}
        return self._call("POST", "/admin/experiments/end", json=body)
