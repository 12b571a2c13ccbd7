"""The feature store: point-in-time training sets without leakage, materialisation and online
lookup, on the local profile (files + SQLite) and the production profile (PostgreSQL + Redis)."""

from __future__ import annotations

import socket
import uuid

import numpy as np
import pandas as pd
import pytest

from features import online, store
from features.etl import run_etl
from features.feature_tables import build_feature_tables
from features.storage import Interval

TEN_DAYS = Interval.parse("2024-03-01", "2024-03-11")
HEADER = "user_id,item_id,timestamp,event_type,price,quantity\n"


def _events(seed: int = 3, n: int = 400) -> str:
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(n):
        day, second = rng.integers(1, 11), rng.integers(0, 86_400)
        moment = pd.Timestamp(f"2024-03-{day:02d}", tz="UTC") + pd.Timedelta(seconds=int(second))
        kind = rng.choice(["view", "purchase"])
        price = "9.5" if kind == "purchase" else ""
        quantity = "1" if kind == "purchase" else ""
        user, item = f"u{rng.integers(0, 8)}", f"i{rng.integers(0, 15)}"
        lines.append(f"{user},{item},{moment:%Y-%m-%dT%H:%M:%SZ},{kind},{price},{quantity}")
    return HEADER + "\n".join(lines) + "\n"


@pytest.fixture
def engine() -> str:
    """Feast's engine in `featured`: DuckDB, unless a test runs on both (`ON_BOTH_ENGINES`)."""
    return "duckdb"


# The leakage tests run on Feast's Spark offline store too (AISLE_ENGINE=spark): one local
# Spark session for the whole worker, two cores at most.
ON_BOTH_ENGINES = pytest.mark.parametrize(
    "engine",
    ["duckdb", pytest.param("spark", marks=[pytest.mark.integration, pytest.mark.slow])],
)


def _build_feature_tables(settings) -> None:
    """The feature tables on DuckDB whatever Feast's engine: these tests are about Feast's
    point-in-time join (the tables' equality across engines is tests/integration's)."""
    build_feature_tables(settings.model_copy(update={"engine": "duckdb"}), "shop", TEN_DAYS)


@pytest.fixture
def featured(settings, land_raw, tmp_path, engine):
    """Ten days of curated events for dataset `shop`, their feature tables, applied to Feast."""
    export = tmp_path / "shop.csv"
    export.write_text(HEADER)
    settings.interactions_source = str(export)  # the definitions read the dataset name from it
    settings.engine = engine
    settings.spark.master = "local[2]"
    land_raw(_events(), interval=TEN_DAYS)
    run_etl(settings, "shop", "interactions", TEN_DAYS)
    _build_feature_tables(settings)
    store.apply(settings)
    return settings


def _curated(settings) -> pd.DataFrame:
    parts = sorted((settings.curated_dir / "shop" / "interactions").glob("date=*/part-0.parquet"))
    return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)


@ON_BOTH_ENGINES
def test_training_set_is_point_in_time_correct(featured):
    events = _curated(featured)
    rng = np.random.default_rng(0)
    seconds = rng.integers(0, 10 * 86_400, size=60)
    times = pd.Timestamp("2024-03-02", tz="UTC") + pd.to_timedelta(seconds, unit="s")
    entity_df = pd.DataFrame(
        {"user_id": [f"u{i % 8}" for i in range(60)], "item_id": "i1", "event_timestamp": times}
    )
    frame = store.training_set(featured, entity_df)

    for row in frame.itertuples():
        boundary = row.event_timestamp.floor("D")  # the last daily summary known at that time
        window = events[
            (events.user_id == row.user_id)
            & (events.timestamp >= boundary - pd.Timedelta(days=30))
            & (events.timestamp < boundary)
        ]
        expected = len(window)
        value = row.events_30d
        got = 0 if pd.isna(value) else int(value)
        assert got == expected, (row.user_id, row.event_timestamp)
        # no event at or after the label's time can be behind the features it gets
        assert not (window.timestamp >= row.event_timestamp).any()


HISTORY_COLUMNS = ["history_item_ids", "history_length"]


def _histories_before(events: pd.DataFrame, moment: pd.Timestamp) -> dict[str, list[str]]:
    """user -> the distinct items of their events before `moment`, most recent first."""
    last = events[events.timestamp < moment].groupby(["user_id", "item_id"]).timestamp.max()
    return {
        user: touches.sort_values(
            ["timestamp", "item_id"], ascending=[False, True]
        ).item_id.tolist()
        for user, touches in last.reset_index().groupby("user_id")
    }


@ON_BOTH_ENGINES
def test_training_set_serves_the_history_known_at_the_label_time(featured):
    events = _curated(featured)
    rng = np.random.default_rng(1)
    seconds = rng.integers(0, 11 * 86_400, size=60)
    times = pd.Timestamp("2024-03-01", tz="UTC") + pd.to_timedelta(seconds, unit="s")
    times = times.append(  # the first moment of a day; four days after the last day built
        pd.DatetimeIndex([pd.Timestamp("2024-03-05", tz="UTC"), "2024-03-15T12:00:00Z"])
    )
    entity_df = pd.DataFrame(
        {"user_id": [f"u{i % 8}" for i in range(62)], "item_id": "i1", "event_timestamp": times}
    )
    frame = store.training_set(featured, entity_df)
    assert len(frame) == 62

    served = 0
    for row in frame.itertuples():
        # the last daily history known at that time: all events before its day (the 03-10
        # history, stamped 03-11, is the newest there is)
        boundary = min(row.event_timestamp.floor("D"), pd.Timestamp("2024-03-11", tz="UTC"))
        expected = _histories_before(events, boundary).get(row.user_id)
        if expected is None:  # a user's first day, or before any history was built
            assert pd.isna(row.history_length), (row.user_id, row.event_timestamp)
            continue
        served += 1
        assert list(row.history_item_ids) == expected, (row.user_id, row.event_timestamp)
        assert row.history_length == len(expected)
    assert served > 40
    late = frame[frame.event_timestamp == pd.Timestamp("2024-03-15T12:00:00Z")]
    assert late.history_length.notna().all()  # the TTL bridges days not built yet

    # the service keyed by user alone serves the same histories
    alone = store.training_set(
        featured, entity_df.drop(columns="item_id"), "recommender_history_v1"
    )
    assert list(alone.columns) == ["user_id", "event_timestamp", *HISTORY_COLUMNS]
    key = ["user_id", "event_timestamp"]
    both = frame[key + HISTORY_COLUMNS].merge(alone, on=key, suffixes=("", "_alone"))
    assert len(both) == 62
    assert both.history_length.equals(both.history_length_alone)

    def lists(values: pd.Series) -> list:
        return [list(v) if isinstance(v, list | np.ndarray) else None for v in values]

    assert lists(both.history_item_ids) == lists(both.history_item_ids_alone)


@ON_BOTH_ENGINES
def test_a_later_event_never_reaches_an_earlier_label(featured, land_raw):
    label_time = pd.Timestamp("2024-03-05T12:00:00Z")
    before = store.training_set(
        featured,
        pd.DataFrame({"user_id": ["u1"], "item_id": ["i1"], "event_timestamp": [label_time]}),
    )
    # a burst of events for u1 later that day and after: the label at noon must not see them
    burst = "".join(f"u1,i{i},2024-03-05T18:00:{i:02d}Z,view,,\n" for i in range(30))
    land_raw(_events() + burst, interval=TEN_DAYS)
    run_etl(featured, "shop", "interactions", TEN_DAYS)
    _build_feature_tables(featured)
    after = store.training_set(
        featured,
        pd.DataFrame({"user_id": ["u1"], "item_id": ["i1"], "event_timestamp": [label_time]}),
    )
    pd.testing.assert_frame_equal(before, after)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (
            pd.DataFrame({"user_id": ["u1"], "item_id": ["i1"]}),
            r"lack column\(s\) event_timestamp",
        ),
        (
            pd.DataFrame({"user_id": ["u1"], "item_id": ["i1"], "event_timestamp": [None]}),
            "missing or not a time",
        ),
        (
            pd.DataFrame({"user_id": [1], "item_id": ["i1"], "event_timestamp": ["2024-03-05"]}),
            "must hold strings",
        ),
        (
            pd.DataFrame(
                {
                    "user_id": ["u1"] * 2,
                    "item_id": ["i1"] * 2,
                    "event_timestamp": ["2024-03-05"] * 2,
                }
            ),
            "duplicate label rows",
        ),
        (pd.DataFrame({"user_id": [], "item_id": [], "event_timestamp": []}), "empty"),
    ],
)
def test_bad_entity_frames_are_clear_errors(featured, frame, message):
    with pytest.raises(store.TrainingSetError, match=message):
        store.training_set(featured, frame)


def _curated_files(settings) -> list:
    return sorted((settings.curated_dir / "shop" / "interactions").glob("date=*/part-0.parquet"))


def test_labels_given_as_a_query_join_as_the_same_frame_does(featured):
    """`store.Labels`: the engine computes the labels; the training set is the one the same
    labels as a frame give. (On Spark, where they never reach this process:
    tests/integration/test_spark_store.py's written training set.)"""
    sql = (
        'SELECT user_id, item_id, max("timestamp") + INTERVAL 1 HOUR AS event_timestamp '
        "FROM events WHERE event_type = $kind GROUP BY user_id, item_id"
    )
    labels = store.Labels(sql, {"events": _curated_files(featured)}, {"kind": "view"})
    from_query = store.training_set(featured, labels)

    events = _curated(featured)
    views = events[events.event_type == "view"]
    frame = views.groupby(["user_id", "item_id"], as_index=False).timestamp.max()
    frame["event_timestamp"] = frame.pop("timestamp") + pd.Timedelta(hours=1)
    from_frame = store.training_set(featured, frame)
    assert len(from_query) == len(frame) > 20
    order = ["user_id", "item_id", "event_timestamp"]
    pd.testing.assert_frame_equal(
        from_query.sort_values(order, ignore_index=True),
        from_frame.sort_values(order, ignore_index=True),
    )


BAD_LABEL_QUERIES = [
    ("SELECT user_id, item_id FROM events", r"lack column\(s\) event_timestamp"),
    ('SELECT user_id, 7 AS item_id, "timestamp" AS event_timestamp FROM events', "strings"),
    ("SELECT user_id, item_id, NULL::TIMESTAMP AS event_timestamp FROM events", "missing"),
    ("SELECT 'u1' AS user_id, 'i1' AS item_id, DATE '2024-03-05' + INTERVAL 1 HOUR "
     "AS event_timestamp FROM events", "duplicate"),
    ('SELECT user_id, item_id, "timestamp" AS event_timestamp FROM events WHERE 1 = 0', "empty"),
]  # fmt: skip


@ON_BOTH_ENGINES
def test_bad_label_queries_are_the_same_clear_errors(featured):
    """One store for all the cases (on Spark the checks are Spark jobs of their own)."""
    for sql, message in BAD_LABEL_QUERIES:
        labels = store.Labels(sql, {"events": _curated_files(featured)})
        with pytest.raises(store.TrainingSetError, match=message):
            store.training_set(featured, labels)


def test_unknown_entities_are_an_error_or_nulls_when_allowed(featured):
    unknown_user = pd.DataFrame(
        {"user_id": ["nobody"], "item_id": ["i1"], "event_timestamp": ["2024-03-08"]}
    )
    with pytest.raises(store.TrainingSetError, match=r"user_id value\(s\) appear in no"):
        store.training_set(featured, unknown_user)
    frame = store.training_set(
        featured,
        pd.DataFrame(
            {
                "user_id": ["nobody"],
                "item_id": ["nothing"],
                "event_timestamp": [pd.Timestamp("2024-03-08", tz="UTC")],
            }
        ),
        unknown="allow",
    )
    assert pd.isna(frame.loc[0, "events_30d"])
    assert pd.isna(frame.loc[0, "item_events_7d"])


def test_materialise_and_look_up_online(featured):
    assert "user_activity_fv" in store.materialize(featured, TEN_DAYS)
    store.materialize(featured, TEN_DAYS)  # stateless: the same interval again is harmless
    found = online.online_features(featured, "user_activity_fv", ["u1", "nobody", "u2"])
    assert found.known == [True, False, True]
    assert found.row(1)["events_30d"] is None
    last = pd.read_parquet(
        sorted((featured.data_dir / "features" / "shop" / "user_activity").glob("date=*"))[-1]
    ).set_index("user_id")
    assert found.row(0)["events_30d"] == last.loc["u1", "events_30d"]
    assert list(found.row(0)["last_item_ids"]) == list(last.loc["u1", "last_item_ids"])


def test_materialise_and_look_up_the_history_online(featured):
    assert "user_history_fv" in store.materialize(featured, TEN_DAYS)
    users = ["u1", "nobody", "u5"]
    found = online.online_features(featured, "user_history_fv", users)
    assert found.known == [True, False, True]
    assert sorted(found.features) == ["history_item_ids", "history_length"]  # not the spill-over
    histories = _histories_before(_curated(featured), pd.Timestamp("2024-03-11", tz="UTC"))
    for i in (0, 2):
        assert list(found.row(i)["history_item_ids"]) == histories[users[i]]
        assert found.row(i)["history_length"] == len(histories[users[i]])
    assert found.as_of[0] == pd.Timestamp("2024-03-11", tz="UTC")
    assert found.features == _feast_reads(featured, "user_history_fv", users)


def _feast_reads(settings, view: str, users: list[str]) -> dict:
    fs = store.feature_store(settings)
    names = [f.name for f in fs.get_feature_view(view).features]
    rows = [{"user_id": u} for u in users]
    found = fs.get_online_features(features=[f"{view}:{n}" for n in names], entity_rows=rows)
    return {n: v for n, v in found.to_dict().items() if n in names}


def test_the_lookup_reads_what_feast_reads(featured):
    store.materialize(featured, TEN_DAYS)
    users = ["u1", "nobody", "u3", "u2"]
    ours = online.online_features(featured, "user_activity_fv", users)
    assert ours.features == _feast_reads(featured, "user_activity_fv", users)


@pytest.fixture
def production_settings(featured, production_services):
    """The same data, registered in PostgreSQL and served from Redis."""
    featured = featured.model_copy(update=production_services)
    store.apply(featured)
    return featured


@pytest.mark.integration
def test_production_profile_on_postgres_and_redis(production_settings):
    store.materialize(production_settings, TEN_DAYS)
    unknown = f"nobody-{uuid.uuid4()}"
    found = online.online_features(production_settings, "user_activity_fv", ["u1", unknown])
    assert found.known == [True, False]
    assert found.features == _feast_reads(production_settings, "user_activity_fv", ["u1", unknown])
    local = production_settings.model_copy(update={"profile": "local"})
    store.materialize(local, TEN_DAYS)
    assert found.row(0) == online.online_features(local, "user_activity_fv", ["u1"]).row(0)


@pytest.mark.integration
def test_online_store_down_is_a_typed_unavailable(production_settings):
    with socket.socket() as s:  # a port nothing listens on: Redis "down"
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    production_settings.feast_redis = f"127.0.0.1:{closed}"
    with pytest.raises(online.FeaturesUnavailable, match="online store did not answer"):
        online.online_features(production_settings, "user_activity_fv", ["u1"])


@pytest.mark.integration
def test_a_forgotten_user_leaves_redis(production_settings):
    from features.forget import forget_online

    store.materialize(production_settings, TEN_DAYS)
    assert online.online_features(production_settings, "user_activity_fv", ["u1"]).known == [True]
    removed = forget_online(production_settings, "u1")
    assert removed["user_activity_fv"] == 1
    assert online.online_features(production_settings, "user_activity_fv", ["u1"]).known == [False]
    assert forget_online(production_settings, "u1")["user_activity_fv"] == 0  # nothing left
