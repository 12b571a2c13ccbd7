"""Forgetting a user on real stores: a shop's export ingested (one bad row quarantined), its
features built and materialised, a training set written and an MLflow artifact logged; after
`aisle forget`, no store holds the user, the audit record names only the id's hash, and the next
training run still learns the shop's tastes."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from aisle.cli import app
from core.settings import Settings, get_settings
from features.forget import read_user_table, user_files, user_ids

pytestmark = pytest.mark.integration
START, END = "2024-03-01", "2024-03-29"
GONE = "shopper-gone-7"  # distinctive, so that a byte search of every file means something


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Settings:
    from features.ingest import ingest
    from features.pipeline import run_features
    from training.recommender.stages import STAGES

    folder = tmp_path_factory.mktemp("forget")
    rng = np.random.default_rng(0)
    n = 3_000
    users = rng.integers(0, 40, n)
    export = pd.DataFrame(
        {
            "user_id": [f"u{k}" for k in users],
            "item_id": [f"i{k}" for k in tastes(users, rng)],
            "timestamp": pd.Timestamp(START, tz="UTC")
            + pd.to_timedelta(rng.integers(0, 28 * 86_400, n), unit="s"),
            "event_type": "view",
            "price": np.round(rng.uniform(1, 20, n), 2),
        }
    )
    export["user_id"] = export.user_id.replace("u7", GONE)
    bad = export.iloc[[0]].assign(user_id=GONE, price=-1.0)  # quarantined: a negative price
    pd.concat([export, bad]).to_csv(folder / "shop.csv", index=False)
    settings = get_settings(
        data_dir=folder / "data",
        interactions_source=str(folder / "shop.csv"),
        recommender_valid_days=7,
        recommender_test_days=7,
    )
    ingest("interactions", START, END, settings)
    run_features("interactions", START, END, settings)
    STAGES.build_training_set(END, settings)
    _log_per_user_artifact(settings, export)
    return settings


def tastes(users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An item for each event of `users`: nine in ten from the shopper's half of the 60 items
    (even shoppers i0-i29, odd ones i30-i59), the rest from all. Both halves are equally popular,
    so only a model that learned who likes what beats popularity on this shop."""
    own_half = users % 2 * 30 + rng.integers(0, 30, len(users))
    return np.where(rng.random(len(users)) < 0.9, own_half, rng.integers(0, 60, len(users)))


def _log_per_user_artifact(settings: Settings, export: pd.DataFrame) -> None:
    """A per-user table in MLflow's artifact store (as a per-user evaluation would be)."""
    import mlflow

    from training.tracking import use_tracking

    use_tracking(settings, "forget-test")
    with mlflow.start_run():
        mlflow.log_table(
            export.groupby("user_id").size().rename("events").reset_index(), "per_user.json"
        )
        per_user = export[["user_id", "item_id"]].head(500)
        path = settings.data_dir / "per_user.parquet"
        per_user.to_parquet(path)
        mlflow.log_artifact(str(path), "evaluation")
        path.unlink()


def traces(settings: Settings) -> dict[str, int]:
    """Rows of GONE per zone, in every tabular file that has a user_id column."""
    found: dict[str, int] = {}
    for path in user_files(settings):
        rows = int((user_ids(read_user_table(path)) == GONE).sum())
        if rows:
            zone = path.relative_to(settings.data_dir).parts[0]
            found[zone] = found.get(zone, 0) + rows
    return found


def files_with_the_id(settings: Settings) -> list[str]:
    """Every file under the data folder whose bytes hold the id: tables, logs, reports, DBs."""
    needle = GONE.encode()
    return sorted(
        str(p.relative_to(settings.data_dir))
        for p in settings.data_dir.rglob("*")
        if p.is_file() and needle in p.read_bytes()
    )


def online_history(settings: Settings) -> bool:
    from features.online import OnlineLookup

    return bool(OnlineLookup(settings, "user_history_fv")([GONE]).known[0])


def test_a_forgotten_user_leaves_no_trace_and_training_still_works(shop):
    before = traces(shop)
    assert {"raw", "curated", "quarantine", "features", "training", "mlflow"} <= set(before)
    assert online_history(shop)
    assert files_with_the_id(shop)

    env = {
        "AISLE_DATA_DIR": str(shop.data_dir),
        "AISLE_INTERACTIONS_SOURCE": shop.interactions_source,
    }
    result = CliRunner().invoke(app, ["forget", GONE, "--yes"], env=env, terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "forgotten" in result.output and "curated" in result.output

    assert traces(shop) == {}
    assert not online_history(shop)
    assert files_with_the_id(shop) == []
    record = json.loads((shop.data_dir / "forget" / "audit.jsonl").read_text().splitlines()[-1])
    assert record["user_sha256"] == hashlib.sha256(GONE.encode()).hexdigest()
    assert GONE not in json.dumps({k: v for k, v in record.items() if k != "user_sha256"})
    assert record["rows_removed_by_zone"] == {
        zone: rows for zone, rows in before.items()
    }  # every row found before was removed, none other
    assert record["online_entities_removed"]["user_history_fv"] == 1

    # the next training run, on what is left, still learns the shoppers' tastes (`tastes`)
    from training.recommender.baselines import Popularity
    from training.recommender.dataset import RecommenderData
    from training.recommender.pipeline import evaluate_test, train_step
    from training.recommender.stages import STAGES

    path = STAGES.build_training_set(END, shop)
    trained = train_step(path, {"epochs": 0}, shop, device="cpu")
    assert trained["run_id"]
    assert GONE not in set(pd.read_parquet(path).user_id)
    data = RecommenderData.load(path)
    popularity = evaluate_test(data, Popularity().fit(data.train).scores)
    # Measured on this shop (this seed and two others, before and after forgetting): the model's
    # test NDCG@10 0.61-0.69, popularity's 0.12-0.19. 0.2 above popularity leaves room for the
    # seed; a model that learned nothing of the tastes fails it: with the test targets shuffled
    # across users (rows no longer lined up with their users) it scored 0.09, as popularity did.
    assert trained["test"]["ndcg@10"] > popularity["ndcg@10"] + 0.2, (trained["test"], popularity)


def test_forgetting_again_removes_nothing_and_says_so(shop):
    from features.forget import forget_user

    done = forget_user(GONE, shop)
    assert done.files == {} and set(done.online.values()) <= {0}
    with pytest.raises(ValueError, match="non-empty string"):
        forget_user("  ", shop)


def test_the_stream_s_stores_forget_the_user_too(tmp_path):
    """The answer log, the stream's backlog and its dead letters (one message may hold several
    shoppers' events, or not be JSON at all) lose the user's rows and keep everyone else's; the
    broker's own store is not Aisle's table to read."""
    from features.forget import forget_user, holds_user

    settings = get_settings(data_dir=tmp_path / "data")
    data = settings.data_dir

    def put(path, frame: pd.DataFrame):
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(path)
        return path

    answers = put(
        settings.answers_dir / "date=2024-03-01" / "0001.parquet",
        pd.DataFrame(
            {"request_id": ["r1", "r2", "r3"], "user_id": [GONE, None, "u2"], "model": "x"}
        ),
    )
    backlog = put(
        settings.events_dir / "backlog" / "0001.parquet",
        pd.DataFrame({"user_id": [GONE, "u2"], "item_id": ["i1", "i2"]}),
    )
    broker_store = settings.events_dir / "broker" / "jetstream" / "x.parquet"
    broker = put(broker_store, pd.DataFrame({"user_id": [GONE]}))
    mixed = [{"event_id": "e1", "user_id": GONE}, {"event_id": "e2", "user_id": "u2"}]
    letters = put(
        data / "quarantine" / "stream" / "aisle.events" / "date=2024-03-01" / "0001.parquet",
        pd.DataFrame(
            {
                "reason": "invalid_event",
                "reasons": "invalid_event: ...",
                "raw": [
                    json.dumps(mixed),
                    json.dumps([{"event_id": "e3", "user_id": GONE}]),
                    json.dumps({"event_id": "e4", "user_id": GONE}),
                    '{"event_id": "e5", "user_id": "' + GONE + '", "price": ',  # truncated
                    json.dumps([{"event_id": "e6", "user_id": "u2"}]),
                    "not json at all",
                ],
                "received_at": pd.Timestamp("2024-03-01T10:00:00Z"),
            }
        ),
    )
    assert holds_user(pd.read_parquet(letters), GONE).tolist() == [True] * 4 + [False] * 2

    done = forget_user(GONE, settings, who="test")
    assert done.by_zone(data) == {"answers": 1, "events": 1, "quarantine": 4}
    assert pd.read_parquet(answers).request_id.tolist() == ["r2", "r3"]
    assert pd.read_parquet(backlog).user_id.tolist() == ["u2"]
    left = pd.read_parquet(letters)
    others = [[mixed[1]], [{"event_id": "e6", "user_id": "u2"}]]
    assert [json.loads(r) for r in left.raw[:2]] == others
    assert left.raw[2] == "not json at all"
    assert list(left.columns) == ["reason", "reasons", "raw", "received_at"]
    assert pd.read_parquet(broker).user_id.tolist() == [GONE]  # not ours: it ages out
    assert GONE.encode() not in answers.read_bytes() + backlog.read_bytes() + letters.read_bytes()
    assert forget_user(GONE, settings).files == {}
