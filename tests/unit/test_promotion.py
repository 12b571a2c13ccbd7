"""Promotion's refusals in process, with a stand-in gateway admin and slots: a challenger that
does not start, or fails its smoke test, is rejected before any traffic moves, its colour is
cleared and stopped, every step is in the audit log, and the checks' HTTP client is closed."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from core.audit import AuditLog
from core.settings import get_settings
from serving import promotion
from serving.slots import Slot, SlotFailed


def closed_port_url() -> str:
    """A local URL nothing listens on: every request to it fails at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class StandInAdmin:
    """The gateway's admin API with blue live at version 1 and no recent requests."""

    def __init__(self, experiment: dict[str, Any] | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.experiment = experiment

    def experiments(self) -> dict[str, Any]:
        return {"recommender": self.experiment}

    def status(self) -> dict[str, Any]:
        colours = {"blue": {"url": "http://blue", "version": "1", "ready": True},
                   "green": {"url": None, "version": None, "ready": None}}  # fmt: skip
        return {"recommender": {"active": "blue", "shadow_share": 0.0, "colours": colours}}

    def set_slot(self, model: str, colour: str, url: str | None) -> dict[str, Any]:
        self.calls.append(("set_slot", colour, url))
        return {}

    def shadow(self, model: str, colour: str | None, share: float = 0.0) -> dict[str, Any]:
        self.calls.append(("shadow", colour, share))
        return {}

    def switch(self, model: str, colour: str) -> dict[str, Any]:
        self.calls.append(("switch", colour))
        return {"at": 0.0}

    def recent(self, model: str, n: int = 100) -> list[dict[str, Any]]:
        return []


class StandInSlots:
    def __init__(self, url: str, starts: bool = True) -> None:
        self.url, self.starts = url, starts
        self.stopped: list[str] = []

    def deploy(self, model: str, colour: str, version: str) -> Slot:
        return Slot(model, colour, version, self.url)

    def wait_ready(self, slot: Slot, timeout_s: float) -> None:
        if not self.starts:
            raise SlotFailed("exited at start: no such version")

    def stop(self, model: str, colour: str) -> None:
        self.stopped.append(colour)

    def switch(self, model: str, colour: str) -> None:
        raise AssertionError("a rejected challenger must not take traffic")


@pytest.fixture
def opened_checks(monkeypatch) -> list[promotion.ChallengerChecks]:
    """Every ChallengerChecks a promotion opens."""
    opened = []

    class Recorded(promotion.ChallengerChecks):
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            opened.append(self)

    monkeypatch.setattr(promotion, "ChallengerChecks", Recorded)
    return opened


def promote(tmp_path, slots: StandInSlots) -> tuple[promotion.Outcome, StandInAdmin, list]:
    settings = get_settings(data_dir=tmp_path / "data", promotion={"smoke_timeout_s": 2})
    admin, audit = StandInAdmin(), AuditLog(settings, "test")
    outcome = promotion.Promoter(settings, slots, admin, audit).promote("recommender", "2")
    return outcome, admin, [e["step"] for e in audit.entries("recommender")]


def test_a_challenger_that_does_not_start_is_rejected(tmp_path, opened_checks):
    slots = StandInSlots(closed_port_url(), starts=False)
    outcome, admin, steps = promote(tmp_path, slots)
    assert (outcome.result, outcome.colour) == ("rejected", "green")
    assert outcome.reason == "deploy: exited at start: no such version"
    assert steps == ["start", "rejected"]
    assert admin.calls == [("shadow", None, 0.0), ("set_slot", "green", None)]
    assert slots.stopped == ["green"]
    assert [c.http.is_closed for c in opened_checks] == [True]


def test_a_challenger_that_fails_its_smoke_test_is_rejected(tmp_path, opened_checks):
    slots = StandInSlots(closed_port_url())
    outcome, admin, steps = promote(tmp_path, slots)
    assert outcome.result == "rejected" and outcome.reason.startswith("smoke: /recommend")
    assert [c["check"] for c in outcome.checks] == ["smoke"]
    assert steps == ["start", "deployed", "smoke", "rejected"]
    assert ("switch", "green") not in admin.calls and slots.stopped == ["green"]
    assert [c.http.is_closed for c in opened_checks] == [True]


def test_no_blue_green_promotion_while_an_experiment_holds_the_idle_colour(tmp_path):
    settings = get_settings(data_dir=tmp_path / "data")
    admin = StandInAdmin({"id": "recommender-v2-x", "status": "running"})
    slots = StandInSlots(closed_port_url())
    promoter = promotion.Promoter(settings, slots, admin, AuditLog(settings, "test"))
    with pytest.raises(promotion.PromotionError, match="aisle experiment stop recommender"):
        promoter.promote("recommender", "3")
    assert admin.calls == [] and slots.stopped == []


def test_no_experiment_starts_while_the_champion_s_colour_is_down(tmp_path):
    from serving.experiment_control import ExperimentRunner

    class DownAdmin(StandInAdmin):
        def status(self) -> dict[str, Any]:
            found = super().status()
            found["recommender"]["colours"]["blue"]["ready"] = False  # killed: probes refused
            return found

    settings = get_settings(data_dir=tmp_path / "data")
    admin, slots = DownAdmin(), StandInSlots(closed_port_url())
    runner = ExperimentRunner(settings, slots, admin, AuditLog(settings, "test"))
    with pytest.raises(promotion.PromotionError, match="live colour blue is not answering"):
        runner.start("recommender", "2", share=0.5, metric="clicks")
    assert admin.calls == [] and slots.stopped == []  # nothing deployed over the spare
