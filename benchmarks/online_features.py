"""Online feature lookup latency, local (SQLite) and production (Redis), against the raw store.

MovieLens-100k goes through the ETL and the features stage into a private data folder, and is
materialised into both online stores (local: SQLite; production: Redis, with the registry in
PostgreSQL, the CI host's services). Then, for batches of 1 and 100 users drawn from the users
active in the last 30 days, each iteration times, back to back on the same keys:

    aisle      features.online.OnlineLookup for user_activity_fv, built once: what serving calls
    feast      FeatureStore.get_online_features(...).to_dict() of the same features
    floor      the same rows read raw: SQLite `SELECT ... WHERE entity_key IN (...)` on Feast's
               table, or a pipelined Redis `HMGET` of the same fields of the same hashes (Feast
               keeps one hash per entity, so a plain MGET cannot fetch them); keys pre-encoded

p50/p99 over the iterations and the ratios to the floor are reported (who goes first rotates).

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
    from core.settings import get_settings
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
    calls: dict[str, Callable[[list[str]], object]],
    batch: int,
    iterations: int,
    seed: int,
) -> dict[str, Any]:
    rng = random.Random(seed)
    for _ in range(20):  # warm every path (connections, caches, the registry)
        sample = rng.sample(users, batch)
        for call in calls.values():
            call(sample)
    times: dict[str, list[float]] = {name: [] for name in calls}
    order = list(calls.items())
    for i in range(iterations):
        sample = rng.sample(users, batch)
        for name, call in order[i % len(order) :] + order[: i % len(order)]:  # rotate who is first
            started = time.perf_counter()
            call(sample)
            times[name].append((time.perf_counter() - started) * 1000)
    out: dict[str, Any] = {"batch": batch, "iterations": iterations}
    for name, values in times.items():
        out[name] = {"p50_ms": percentile(values, 50), "p99_ms": percentile(values, 99)}
    for name in calls:
        if name != "floor":
            for q in ("p50", "p99"):
                out[f"{name}_ratio_{q}"] = out[name][f"{q}_ms"] / out["floor"][f"{q}_ms"]
    return out


def main(argv: list[str] | None = None) -> None:
    import pandas as pd

    from features import store
    from features.online import OnlineLookup

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
        lookup = OnlineLookup(settings, VIEW, store=fs)
        refs = [f"{VIEW}:{f}" for f in lookup.names]
        floor = (
            sqlite_floor(settings, fs)
            if name == "sqlite"
            else redis_floor(fs, settings.feast_redis)
        )

        def ours(sample: list[str], lookup: OnlineLookup = lookup) -> object:
            found = lookup(sample)
            assert all(found.known), "the benchmark must read rows that exist"
            return found

        def feast(sample: list[str], fs: Any = fs, refs: list[str] = refs) -> object:
            rows = [{"user_id": u} for u in sample]
            return fs.get_online_features(features=refs, entity_rows=rows).to_dict()

        calls = {"aisle": ours, "feast": feast, "floor": floor}
        for batch in (1, 100):
            results.append({"store": name, **measure(users, calls, batch, args.iterations, batch)})
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
        "| store | batch | aisle p50 / p99 ms | Feast get_online_features p50 / p99 ms "
        "| floor p50 / p99 ms | aisle ÷ floor p50 / p99 | Feast ÷ floor p50 / p99 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["results"]:
        a, f, raw = r["aisle"], r["feast"], r["floor"]
        lines.append(
            f"| {r['store']} | {r['batch']} | {a['p50_ms']:.2f} / {a['p99_ms']:.2f} | "
            f"{f['p50_ms']:.2f} / {f['p99_ms']:.2f} | {raw['p50_ms']:.3f} / {raw['p99_ms']:.3f} | "
            f"{r['aisle_ratio_p50']:.1f}x / {r['aisle_ratio_p99']:.1f}x | "
            f"{r['feast_ratio_p50']:.1f}x / {r['feast_ratio_p99']:.1f}x |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
