"""The pricing model in MLflow: a pyfunc over the checkpoint, logged with its signature.

Model input: rows as the `pricing_v1` feature service returns them for an item and store (the
columns of a training set row, without the label); output per row: the forecast `units` and
`log_units` with their spread, and the own-price `elasticity` with its spread. Quotes (the
optimiser, guardrails) go through the `PricingModel` itself (`load_pricing`), as serving does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.pyfunc import PythonModel

from .predict import PricingModel

MODEL_NAME = "pricing"
CHECKPOINT_ARTIFACT = "checkpoint"
LABEL_COLUMNS = ("units", "role")


class PricingPyfunc(PythonModel):
    def load_context(self, context: Any) -> None:
        self.model = PricingModel.load(context.artifacts[CHECKPOINT_ARTIFACT])

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        frame = model_input.copy()
        frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
        forecast = self.model.predict(frame)
        elasticity = self.model.elasticities(frame)
        return pd.DataFrame(
            {
                "units": forecast.units.to_numpy(),
                "log_units": forecast.log_units.to_numpy(),
                "log_units_std": forecast.log_units_std.to_numpy(),
                "elasticity": elasticity.elasticity.to_numpy(),
                "elasticity_std": elasticity.elasticity_std.to_numpy(),
            }
        )


def model_input_example(rows: pd.DataFrame) -> pd.DataFrame:
    """Feature rows as the pyfunc takes them: no label, lists as plain lists, time as text."""
    example = rows.drop(columns=[c for c in LABEL_COLUMNS if c in rows]).reset_index(drop=True)
    for column in ("category_item_ids", "category_prices"):
        if column in example:
            example[column] = example[column].map(lambda v: [] if v is None else list(v))
    example["event_timestamp"] = example["event_timestamp"].map(lambda t: t.isoformat())
    return example


def log_pricing(checkpoint: Path, example_rows: pd.DataFrame) -> Any:
    """Log the checkpoint as a pyfunc model in the active run and register it."""
    import mlflow
    import torch
    from mlflow.models import infer_signature

    model_input = model_input_example(example_rows)
    wrapper = PricingPyfunc()
    wrapper.model = PricingModel.load(checkpoint)
    signature = infer_signature(model_input, wrapper.predict(None, model_input))
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=PricingPyfunc(),
        artifacts={CHECKPOINT_ARTIFACT: str(checkpoint)},
        signature=signature,
        input_example=model_input,
        registered_model_name=MODEL_NAME,
        pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", "numpy", "pandas"],
    )


def load_pricing(model_uri: str) -> PricingModel:
    """The PricingModel behind a registered model URI, e.g. models:/pricing@champion."""
    import mlflow

    return mlflow.pyfunc.load_model(model_uri).unwrap_python_model().model
