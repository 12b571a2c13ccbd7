"""
### Pricing training: a Feast training set, a monotone demand model, MLflow run and registry

Runs every `AISLE_PRICING_SCHEDULE` (weekly), when the `drift_monitor` DAG confirms drift (the
Asset `retrain_pricing`, whose event names the interval end to train up to), or when triggered
with params. The data interval's end is the cut: the last `AISLE_PRICING_TEST_WEEKS` before it
are held out as test, the `AISLE_PRICING_VALID_WEEKS` before those tune the model (rolling
folds).

1. **training_set**: every store x item x week of sales with its `pricing_v1` features joined
   point-in-time (the week's shelf, the demand of the weeks before); written to
   `data/training/pricing/<dataset>/<windows>/training_set.parquet`.
2. **validate**: schema, row count against the last accepted training set, null rates, ranges
   (units >= 0, prices > 0, flags, shares), new items and stores (Evidently tests,
   `monitoring.data_checks`); a failing set stops the run without retries.
3. **train**: the penalty tuned on the valid weeks, a bootstrap ensemble fit on fit + valid
   weeks, test RMSE beside the references (a)-(e), elasticities per item x store; one MLflow run
   (experiment `pricing`) with params, loss and tuning curves, the evaluation table, a
   price-response plot and lineage tags; the checkpoint lands beside the training set.
4. **register**: the checkpoint logged as the run's model (pyfunc, with signature), registered
   as a new version of `pricing`.
5. **gate**: the new version and the champion on the same test weeks (`training.gate`): RMSE
   must beat the champion's by `AISLE_GATE__PRICING_MARGIN` and last week's units', MAE stays
   within tolerance, demand falls with price, guard-railed quotes hold. Passed: alias
   `challenger`, and the Asset `challenger_pricing` starts the `promote_model` DAG; rejected:
   the task is skipped with the reasons (recorded in the version's tags) and the champion
   stays, unless the param `force_promote` (off by default) overrides it.

**Inputs**: the curated sales and the `pricing_v1` features up to the cut (the params `end`,
`members`, `max_iter`, `force_promote`, or the retrain event's `end`), and the registry's
champion for the gate.

**Rerun**: trigger with params, e.g. `{"end": "1992-10-08", "members": 3}`; the training set is
rewritten in place, and each run registers a new version.
"""

from __future__ import annotations

from aisle.training_tasks import training_dag
from core.settings import get_settings

# The Airflow DAG of every model (training_set -> validate -> train -> register -> gate, see
# training/stages.py). The words "airflow" and "dag" in this file are how Airflow finds it.
pricing_training = training_dag("pricing", schedule=get_settings().pricing_schedule, doc_md=__doc__)
