"""`aisle serve ...`, `aisle promote`, `aisle rollback`: refused without the admin token, clear
when the gateway is not running."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from aisle.cli import app

runner = CliRunner()
COMMANDS = [
    ["serve", "up"],
    ["serve", "down"],
    ["serve", "status"],
    ["promote", "pricing"],
    ["rollback", "recommender"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_admin_commands_are_refused_without_a_token(command, tmp_path, monkeypatch):
    monkeypatch.delenv("AISLE_ADMIN_TOKEN", raising=False)
    result = runner.invoke(app, [*command, "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "AISLE_ADMIN_TOKEN" in result.output and "401" in result.output


def test_status_without_a_gateway_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("AISLE_ADMIN_TOKEN", "a-token")
    monkeypatch.setenv("AISLE_GATEWAY_PORT", "18799")  # nothing listens there
    result = runner.invoke(app, ["serve", "status", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "did not answer" in result.output


def test_an_unknown_model_is_refused_by_name(tmp_path):
    result = runner.invoke(app, ["promote", "ranker", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and "ranker" in result.output
