"""
### Promote a model: blue-green, gated, with automatic rollback

Triggered by hand (or by a training DAG once its model passed the gate). Deploys the version
(default: the `challenger` alias) to the idle colour of the serving cluster, waits until it is
ready, runs smoke requests, mirrors live traffic to it and compares errors, p99 latency and the
answers with the live colour, flips the gateway atomically, and watches the analysis window:
an error rate or p99 over the limits (`AISLE_PROMOTION__*`) sends the traffic back at once.
Only a promotion that survives the window moves the `champion` alias.

Every step, decision and reason is in the audit log, `data/serving/audit.jsonl` (who: this DAG
run). The task fails, without retries, when the challenger was rejected or rolled back; its log
says which check and why.

**Inputs**: the params `model` (recommender or pricing) and `version` (a registry version;
empty: the challenger); a running cluster (`aisle serve up`) and `AISLE_ADMIN_TOKEN`.

**Rerun**: trigger again with the same params; a version that is already live is skipped (and
said so in the audit log), and `aisle rollback MODEL` sends traffic back at once.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task


@dag(
    dag_id="promote_model",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["aisle", "serving", "promotion"],
    default_args={"retries": 0},
    params={
        "model": Param("recommender", enum=["recommender", "pricing"], description="which model"),
        "version": Param(
            None, type=["null", "string"], description="registry version (empty: challenger)"
        ),
    },
)
def promote_model() -> None:
    @task
    def promote(params=None, run_id=None, dag=None) -> dict:
        import os

        from airflow.sdk.exceptions import AirflowFailException

        from aisle.settings import get_settings
        from serving.deploy import promote_step

        os.environ.setdefault("AISLE_ACTOR", f"airflow:{dag.dag_id}/{run_id}")
        outcome = promote_step(params["model"], params.get("version"), get_settings())
        if outcome["result"] in ("rejected", "rolled_back"):
            raise AirflowFailException(f"{outcome['result']}: {outcome['reason']}")
        return outcome

    promote()


promote_model()
