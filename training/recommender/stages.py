"""The recommender's place in the shape every model shares (training/stages.py)."""

from __future__ import annotations

from training.stages import ConfigParam, ModelStages
from training.training_sets import Windows

STAGES = ModelStages(
    name="recommender",
    package="training.recommender",
    source_setting="interactions_source",
    table="interactions",
    time_column="timestamp",
    # protocol B: whole days, the last test days held out, the valid days before them
    windows=lambda end, settings: Windows.days_before(
        end, settings.recommender_valid_days, settings.recommender_test_days
    ),
    params=(
        ConfigParam("epochs", "fine-tuning epochs at most (0: closed form only)", minimum=0),
        ConfigParam("spectral_rank", "rank of the closed-form start", minimum=1),
    ),
)
