"""Online feature lookup latency, local (SQLite) and production (Redis), against the raw store.

MovieLens-100k goes through the ETL and the features stage into a private data folder, and is
materialised into both online stores (local: SQLite; production: Redis, with the registry in
PostgreSQL, the CI host's services). Then, for batches of 1 and 100 users drawn from the users
the newest day's table knows, each iteration times, back to back on the same keys:

    aisle      features.store.online_features(...) for user_activity_fv: what serving calls
    floor      the same rows read raw: SQLite `SELECT ... WHERE entity_key IN (...)` on Feast's
               table, or a pipelined Redis `HMGET` of the same fields of the same hashes (Feast
               keeps one hash per entity, so a plain MGET cannot fetch them); keys pre-encoded

p50/p99 over the iterations and the ratio aisle ÷ floor are reported.

    .venv/bin/python benchmarks/online_features.py [--iterations 300] [--skip-redis]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import ROOT, WORK, machine, percentile, write_results

VIEW = "user_activity_fv"
START, END = "1997-09-01", "1998-05-01"  # all of MovieLens-100k


def prepare(data_dir: Path, production: dict[str, str]) -> Any:
    """MovieLens through ETL and features into `data_dir`; materialised into both stores."""
    from aisle.settings import get_settings
    from features import store
    from features.ingest import ingest
    from features.pipeline import build_step
    from features.storage import Interval

    data_dir.mkdir(parents=True, exist_ok=True)
    sources = data_dir / "sources"
    if not sources.exists():
        sources.symlink_to((ROOT / "data" / "sources").resolve())
    settings = get_settings(data_dir=data_dir, interactions_source="movielens")
    marker = data_dir / "features" / "movielens" / ".built"
    if not marker.exists():
        ingest("interactions", START, END, settings)
        build_step("interactions", START, END, settings)
        marker.touch()
    interval = Interval.parse(START, END)
    profiles = {"sqlite": settings}
    if production:
        profiles["redis"] = settings.model_copy(update={"profile": "production", **production})
    for profiled in profiles.values():
        store.apply(profiled)
        store.materialize(profiled, interval, flow="interactions")
    return profiles


def sqlite_floor(settings: Any, fs: Any) -> Callable[[list[str]], int]:
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    path = settings.data_dir / "feast" / "online_store.db"
    con = sqlite3.connect(path, check_same_thread=False)
    table = f"{fs.project}_{VIEW}"

    def key(user: str) -> bytes:
        entity = EntityKey(join_keys=["user_id"], entity_values=[Value(string_val=user)])
        return serialize_entity_key(entity, entity_key_serialization_version=3)

    cache: dict[str, bytes] = {}

    def read(users: list[str]) -> int:
        keys = [cache.setdefault(u, key(u)) for u in users]
        rows = con.execute(
            f'SELECT entity_key, feature_name, value, event_ts FROM "{table}" '
            f"WHERE entity_key IN ({','.join('?' * len(keys))})",
            keys,
        ).fetchall()
        return len(rows)

    return read


def redis_floor(fs: Any, url: str) -> Callable[[list[str]], int]:
    import redis
    from feast.infra.online_stores.helpers import _mmh3, _redis_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    host, port = url.split(",")[0].split(":")
    client = redis.Redis(host=host, port=int(port))
    view = fs.get_feature_view(VIEW)
    fields = [_mmh3(f"{VIEW}:{f.name}") for f in view.features] + [f"_ts:{VIEW}".encode()]
    cache: dict[str, bytes] = {}

    def key(user: str) -> bytes:
        entity = EntityKey(join_keys=["user_id"], entity_values=[Value(string_val=user)])
        return _redis_key(fs.project, entity, entity_key_serialization_version=3)

    def read(users: list[str]) -> int:
        pipe = client.pipeline(transaction=False)
        for u in users:
            pipe.hmget(cache.setdefault(u, key(u)), fields)
        return sum(1 for values in pipe.execute() if values[-1] is not None)

    return read


def measure(
    users: list[str],
    ours: Callable[[list[str]], object],
    floor: Callable[[list[str]], int],
    batch: int,
    iterations: int,
    seed: int,
) -> dict[str, Any]:
    rng = random.Random(seed)
    for _ in range(20):  # warm both paths (connections, caches, the registry)
        sample = rng.sample(users, batch)
        ours(sample)
        floor(sample)
    times: dict[str, list[float]] = {"aisle": [], "floor": []}
    for i in range(iterations):
        sample = rng.sample(users, batch)
        order = [("aisle", ours), ("floor", floor)]
        for name, call in order if i % 2 == 0 else order[::-1]:  # alternate who goes first
            started = time.perf_counter()
            call(sample)
            times[name].append((time.perf_counter() - started) * 1000)
    out: dict[str, Any] = {"batch": batch, "iterations": iterations}
    for name, values in times.items():
        out[name] = {"p50_ms": percentile(values, 50), "p99_ms": percentile(values, 99)}
    for q in ("p50", "p99"):
        out[f"ratio_{q}"] = out["aisle"][f"{q}_ms"] / out["floor"][f"{q}_ms"]
    return out


def main(argv: list[str] | None = None) -> None:
    import pandas as pd

    from features import store

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--iterations", type=int, default=300)
    p.add_argument("--skip-redis", action="store_true", help="local profile only")
    p.add_argument("--registry", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    p.add_argument("--redis", default="127.0.0.1:6379")
    args = p.parse_args(argv)

    production = (
        {} if args.skip_redis else {"feast_registry_url": args.registry, "feast_redis": args.redis}
    )
    profiles = prepare(WORK / "online_features", production)
    local = profiles["sqlite"]
    newest = sorted((local.data_dir / "features" / "movielens" / "user_activity").glob("date=*"))
    users = pd.read_parquet(newest[-1] / "part-0.parquet")["user_id"].tolist()
    # The newest day knows too few users for batches of 100: take every user of the last 30 days.
    known = {u for part in newest[-30:] for u in pd.read_parquet(part)["user_id"]}
    users = sorted(known | set(users))

    results = []
    for name, settings in profiles.items():
        fs = store.feature_store(settings)
        floor = (
            sqlite_floor(settings, fs)
            if name == "sqlite"
            else redis_floor(fs, settings.feast_redis)
        )

        def ours(sample: list[str], settings: Any = settings, fs: Any = fs) -> object:
            found = store.online_features(settings, VIEW, sample, store=fs)
            assert all(found.known), "the benchmark must read rows that exist"
            return found

        for batch in (1, 100):
            row = measure(users, ours, floor, batch, args.iterations, seed=batch)
            results.append({"store": name, **row})
    report = {"machine": machine(), "users": len(users), "view": VIEW, "results": results}
    write_results("online_features", report, markdown(report))


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        "# Online feature lookup",
        "",
        f"Machine: {m['cpu_count']} CPUs, Python {m['python']}, commit {m['git_commit'][:10]}. "
        f"View `{report['view']}`, {report['users']} distinct users sampled.",
        "",
        "| store | batch | aisle p50 ms | aisle p99 ms | floor p50 ms | floor p99 ms "
        "| ratio p50 | ratio p99 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["results"]:
        a, f = r["aisle"], r["floor"]
        lines.append(
            f"| {r['store']} | {r['batch']} | {a['p50_ms']:.2f} | {a['p99_ms']:.2f} | "
            f"{f['p50_ms']:.3f} | {f['p99_ms']:.3f} | {r['ratio_p50']:.1f}x | "
            f"{r['ratio_p99']:.1f}x |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
