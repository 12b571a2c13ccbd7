"""One shape for every model (training/stages.py): the registry finds each model package, and a
third model needs its package and a DAG file, nothing edited elsewhere."""

from __future__ import annotations

import itertools
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import training
from training.stages import ModelStages, all_models, model_stages
from training.training_sets import Windows

THIRD_MODEL = """
from training.stages import ConfigParam, ModelStages
from training.training_sets import Windows

STAGES = ModelStages(
    name="assortment",
    package="training.assortment",
    source_setting="sales_source",
    table="sales",
    time_column="week_start",
    windows=lambda end, settings: Windows.weeks_before(end, 4, 2),
    params=(ConfigParam("trees", "how many trees", minimum=1),),
)
"""


@pytest.fixture
def third_model(tmp_path: Path, monkeypatch):
    """A package `training/assortment/` with only its stages.py, found beside the others."""
    package = tmp_path / "assortment"
    package.mkdir()
    (package / "__init__.py").write_text('"""A third model."""\n')
    (package / "stages.py").write_text(THIRD_MODEL)
    monkeypatch.setattr(training, "__path__", [*training.__path__, str(tmp_path)])
    all_models.cache_clear()
    yield model_stages("assortment")
    all_models.cache_clear()
    for name in [m for m in sys.modules if m.startswith("training.assortment")]:
        del sys.modules[name]


def test_the_registry_holds_both_models_with_their_facts():
    models = all_models()
    assert set(models) == {"recommender", "pricing"}
    assert (models["recommender"].table, models["recommender"].time_column) == (
        "interactions",
        "timestamp",
    )
    assert (models["pricing"].table, models["pricing"].time_column) == ("sales", "week_start")
    assert {p.name for p in models["pricing"].params} == {"members", "max_iter"}


def test_an_unknown_model_is_a_clear_error_naming_the_known_ones():
    with pytest.raises(ValueError, match="unknown model 'nope'; one of pricing, recommender"):
        model_stages("nope")


def test_a_run_s_params_keep_only_the_model_s_training_options():
    stages = model_stages("pricing")
    params = {"end": "1992-10-08", "members": 2, "force_promote": True, "epochs": 3}
    assert stages.config_from(params) == {"members": 2}
    assert stages.config_from(None) == {}


def test_windows_cut_back_from_a_day_boundary_and_refuse_anything_else():
    end = datetime(1992, 10, 8, tzinfo=UTC)
    weeks = Windows.weeks_before(end, 3, 2)
    assert weeks.valid_end == end - timedelta(weeks=2)
    assert weeks.train_end == end - timedelta(weeks=5)
    days = Windows.days_before(end, 7, 7)
    assert days.key() == "19920924_19921001_19921008"
    with pytest.raises(ValueError, match="not a UTC day boundary"):
        Windows.days_before(end + timedelta(hours=3), 7, 7)
    with pytest.raises(ValueError, match="must be > 0"):
        Windows.weeks_before(end, 0, 2)


def test_a_third_model_is_found_and_gets_the_training_dag_of_every_model(third_model):
    from aisle.training_tasks import training_dag

    assert isinstance(third_model, ModelStages)
    assert set(all_models()) == {"assortment", "pricing", "recommender"}
    dag = training_dag("assortment", schedule="0 0 * * 4", doc_md="### Assortment")
    assert dag.dag_id == "assortment_training"
    order = ["training_set", "validate", "train", "register", "gate"]
    assert {t.task_id for t in dag.tasks} == set(order)
    for upstream, downstream in itertools.pairwise(order):
        assert dag.get_task(downstream).upstream_task_ids == {upstream}
    assert list(dag.params) == ["end", "trees", "force_promote"]
    assert {a.name for a in dag.get_task("gate").outlets} == {"challenger_assortment"}
    assert dag.timetable.asset_condition.name == "retrain_assortment"
