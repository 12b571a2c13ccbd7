"""The pricing model's place in the shape every model shares (training/stages.py)."""

from __future__ import annotations

from training.stages import ConfigParam, ModelStages
from training.training_sets import Windows

STAGES = ModelStages(
    name="pricing",
    package="training.pricing",
    source_setting="sales_source",
    table="sales",
    time_column="week_start",
    # whole weeks: the last test weeks held out, the valid weeks before them tune the penalty
    windows=lambda end, settings: Windows.weeks_before(
        end, settings.pricing_valid_weeks, settings.pricing_test_weeks
    ),
    params=(
        ConfigParam("members", "bootstrap ensemble size", minimum=1),
        ConfigParam("max_iter", "L-BFGS iterations per fit", minimum=1),
    ),
)
