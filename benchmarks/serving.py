"""Online scoring latency and throughput: /recommend and /price through the gateway and straight
to a slot, beside a BentoML no-op endpoint served the same way (the framework's floor), in the
same run; and /recommend with and without adaptive batching under concurrency.

    .venv/bin/python benchmarks/serving.py [--seconds 15]

The world is the serving sandbox (the recommender fitted on MovieLens-100k, 1,682 items; a
pricing model of a 6-item shop), on private ports. Results: benchmarks/results/serving.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import time

import httpx

# The project root first, not benchmarks/: this file's own name would shadow the serving package.
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from benchmarks.common import ROOT, WORK, machine, provide_sources, write_results  # noqa: E402

NOOP_PORT = 28799


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()

    from core.settings import get_settings
    from serving.cluster import down, up
    from serving.loadgen import cycle, run_load
    from serving.sandbox import build_world
    from serving.slots import LocalSlots

    settings = get_settings(
        data_dir=WORK / "serving" / "data",
        gateway_port=28700,
        slot_port_base=28710,
        admin_token=secrets.token_hex(16),
    )
    provide_sources(settings, "movielens")
    world = build_world(settings)
    noop = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bentoml",
            "serve",
            "noop_service:Noop",
            "--port",
            str(NOOP_PORT),
        ],
        cwd=ROOT / "benchmarks",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        up(settings, on_step=print)
        _wait(f"http://127.0.0.1:{NOOP_PORT}/readyz")
        slots = LocalSlots(settings)
        recommend = [("/recommend", {"user_id": u, "k": 10}) for u in world.users[:300]]
        price = [("/price", {"item_id": i, "store_id": s}) for i, s in world.priced]
        batched = [("/recommend_batch", {"requests": [b]}) for _, b in recommend]
        rec_slot = slots.get("recommender", "blue").url
        price_slot = slots.get("pricing", "blue").url
        cases = [
            ("no-op (floor)", f"http://127.0.0.1:{NOOP_PORT}", [("/noop", {"user_id": "1"})], 1),
            ("/recommend, slot", rec_slot, recommend, 1),
            ("/recommend, gateway", settings.gateway_url, recommend, 1),
            ("/price, slot", price_slot, price, 1),
            ("/price, gateway", settings.gateway_url, price, 1),
            (
                "no-op (floor), 8 clients",
                f"http://127.0.0.1:{NOOP_PORT}",
                [("/noop", {"user_id": "1"})],
                8,
            ),
            ("/recommend, slot, 8 clients", rec_slot, recommend, 8),
            ("/recommend_batch (adaptive batching), slot, 8 clients", rec_slot, batched, 8),
        ]
        rows = []
        for name, base, requests, clients in cases:
            run_load(base, cycle(requests), 2, concurrency=clients)  # warm up
            summary = run_load(base, cycle(requests), args.seconds, concurrency=clients).summary()
            rows.append({"case": name, "clients": clients, **summary})
            print(rows[-1])
    finally:
        noop.terminate()
        down(settings)
    floor = {r["clients"]: r for r in rows if r["case"].startswith("no-op")}
    for row in rows:
        base = floor[row["clients"]]
        row["p50_vs_floor"] = round(row["p50_ms"] / base["p50_ms"], 2)
        row["p99_vs_floor"] = round(row["p99_ms"] / base["p99_ms"], 2)
    report = {"machine": machine(), "seconds": args.seconds, "rows": rows}
    write_results("serving", report, markdown(rows, args.seconds))


def _wait(url: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} not ready")


def markdown(rows: list[dict], seconds: float) -> str:
    lines = [
        f"# Online scoring ({seconds:.0f} s per case, same run, 2 cores shared by client, "
        "gateway and slots)",
        "",
        "| case | clients | req/s | p50 ms | p99 ms | p50 ÷ floor | p99 ÷ floor | failed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['clients']} | {r['per_second']} | {r['p50_ms']} | {r['p99_ms']} "
            f"| {r['p50_vs_floor']} | {r['p99_vs_floor']} | {r['failed']} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
