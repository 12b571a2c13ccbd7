"""The recommender in MLflow: a pyfunc over the checkpoint, logged with its signature.

Model input, one row per request: `history_item_ids` (list of item ids) and `k`; output: the
recommended `item_ids`, their `scores`, their `reasons` and the `fallback` flag. Serving loads the
recommender itself (`load_recommender`: a `Recommender`, or a `FactorRecommender` for a
large catalogue) for context, filters and batching.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.pyfunc import PythonModel

from .predict import Request, load_checkpoint

MODEL_NAME = "recommender"
CHECKPOINT_ARTIFACT = "checkpoint"


class RecommenderPyfunc(PythonModel):
    def load_context(self, context: Any) -> None:
        self.recommender = load_checkpoint(context.artifacts[CHECKPOINT_ARTIFACT])

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        requests = [
            Request(list(h) if h is not None else None, int(k))
            for h, k in zip(model_input["history_item_ids"], model_input["k"], strict=True)
        ]
        answers = self.recommender.recommend_batch(requests)
        return pd.DataFrame(
            {
                "item_ids": [a.item_ids for a in answers],
                "scores": [[i.score for i in a.items] for a in answers],
                "reasons": [[i.reason for i in a.items] for a in answers],
                "fallback": [a.fallback for a in answers],
            }
        )


def log_recommender(checkpoint: Path, example_history: list[str]) -> Any:
    """Log the checkpoint as a pyfunc model in the active run and register it."""
    import mlflow
    import torch
    from mlflow.models import infer_signature

    model_input = pd.DataFrame({"history_item_ids": [example_history, []], "k": [3, 3]})
    wrapper = RecommenderPyfunc()
    wrapper.recommender = load_checkpoint(checkpoint, device="cpu")
    signature = infer_signature(model_input, wrapper.predict(None, model_input))
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=RecommenderPyfunc(),
        artifacts={CHECKPOINT_ARTIFACT: str(checkpoint)},
        signature=signature,
        input_example=model_input,
        registered_model_name=MODEL_NAME,
        pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", "numpy", "pandas"],
    )


def load_recommender(model_uri: str):
    """The Recommender behind a registered model URI, e.g. models:/recommender@champion."""
    import mlflow

    return mlflow.pyfunc.load_model(model_uri).unwrap_python_model().recommender
