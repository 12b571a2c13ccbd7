"""
### Recommender training: a Feast training set, a torch model, MLflow run and registry

Runs every `AISLE_RECOMMENDER_SCHEDULE` (weekly), when the `drift_monitor` DAG confirms drift
(the Asset `retrain_recommender`, whose event names the interval end to train up to), or when
triggered with params. The data interval's end is the cut: the last `AISLE_RECOMMENDER_TEST_DAYS`
before it are held out as test, the `AISLE_RECOMMENDER_VALID_DAYS` before those validate
(protocol B, a temporal split).

1. **training_set**: every user's item history as Feast knew it at each cut
   (`recommender_history_v1`, point-in-time), with the items they touched next as targets;
   written to `data/training/recommender/<dataset>/<windows>/training_set.parquet`.
2. **validate**: schema, row count against the last accepted training set, null rates, history
   lengths, category sets (Evidently tests, `monitoring.data_checks`); a failing set stops the
   run without retries, the reasons in the log and `validation.html` beside the set.
3. **train**: closed-form start, fine-tuning with early stopping on validation NDCG@10, test
   metrics beside popularity and EASE; one MLflow run (experiment `recommender`) with params,
   per-epoch metrics, the learning curve, the evaluation table and lineage tags; the checkpoint
   lands beside the training set.
4. **register**: the checkpoint logged as the run's model (pyfunc, with signature), registered as
   a new version of `recommender`.
5. **gate**: the new version and the champion on the same test window (`training.gate`):
   NDCG@10 must beat the champion's by `AISLE_GATE__RECOMMENDER_MARGIN` and popularity's,
   Recall@10 and Hit@10 stay within tolerance, behavioural tests pass (no seen or duplicate
   items, k respected, cold start answered). Passed: alias `challenger`, and the Asset
   `challenger_recommender` starts the `promote_model` DAG (blue-green onto the serving
   cluster); rejected: the task is skipped with the reasons and the champion stays, unless the
   param `force_promote` (off by default) overrides it. The decision is in the version's tags
   (`aisle.gate*`) either way.

**Inputs**: the curated interactions and the `recommender_history_v1` features up to the cut
(the params `end`, `epochs`, `spectral_rank`, `force_promote`, or the retrain event's `end`),
and the registry's champion for the gate.

**Rerun**: trigger with params, e.g. `{"end": "1998-04-23"}`; the training set is rewritten in
place, and each run registers a new version.
"""

from __future__ import annotations

from aisle.training_tasks import training_dag
from core.settings import get_settings

# The Airflow DAG of every model (training_set -> validate -> train -> register -> gate, see
# training/stages.py). The words "airflow" and "dag" in this file are how Airflow finds it.
recommender_training = training_dag(
    "recommender", schedule=get_settings().recommender_schedule, doc_md=__doc__
)
