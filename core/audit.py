"""The promotion audit log: one JSON line per step, decision and reason (who, when, which model
versions, which check, its figures), appended and flushed to disk before the step's effect, in
<data_dir>/serving/audit.jsonl. Nothing is ever rewritten."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.actor import actor
from core.settings import Settings

__all__ = ["AuditLog", "actor"]


class AuditLog:
    def __init__(self, settings: Settings, who: str | None = None) -> None:
        self.path: Path = settings.serving_dir / "audit.jsonl"
        self.who = who or actor()

    def write(self, model: str, action: str, step: str, **details: Any) -> dict[str, Any]:
        entry = {
            "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "who": self.who,
            "model": model,
            "action": action,
            "step": step,
            **details,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as out:
            out.write(json.dumps(entry, default=str) + "\n")
            out.flush()
            os.fsync(out.fileno())
        return entry

    def entries(self, model: str | None = None) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        found = [json.loads(line) for line in self.path.read_text().splitlines() if line]
        return [e for e in found if model is None or e["model"] == model]
