"""
### Promote a model: blue-green, gated, with automatic rollback

Runs when a training DAG's gate passes a new version (the Assets `challenger_recommender` and
`challenger_pricing`; each event names the model and version), or when triggered by hand with
params. Deploys the version to the idle colour of the serving cluster, waits until it is ready,
runs smoke requests, mirrors live traffic to it and compares errors, p99 latency and the
answers with the live colour, flips the gateway atomically, and watches the analysis window:
an error rate or p99 over the limits (`AISLE_PROMOTION__*`) sends the traffic back at once.
Only a promotion that survives the window moves the `champion` alias. A model's first version
has nothing to shadow: it goes live in blue after its smoke test.

**Experiment mode** (param `mode`, default `AISLE_PROMOTION__MODE`): the challenger is deployed
and smoke-tested the same way, then it and the champion both take traffic, units split by a
sticky hash (an online A/B test); the `experiment_monitor` DAG decides on what the shop earns,
and its decision, not the flip after shadow, moves the `champion` alias.

Every step, decision and reason is in the audit log, `data/serving/audit.jsonl` (who: this DAG
run); the task's extra link opens the entry. The task fails, without retries, when the
challenger was rejected or rolled back; its log says which check and why.

**Inputs**: the triggering challenger events, or the params `model` (recommender or pricing)
and `version` (a registry version; empty: the challenger); a running gateway (`aisle stack up`
or `aisle serve up`) and `AISLE_ADMIN_TOKEN`.

**Rerun**: trigger again with the same params; a version that is already live is skipped (and
said so in the audit log), and `aisle rollback MODEL` sends traffic back at once.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from aisle.assets import challenger_asset


@dag(
    dag_id="promote_model",
    schedule=challenger_asset("recommender") | challenger_asset("pricing"),
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
        "mode": Param(
            None,
            type=["null", "string"],
            enum=[None, "blue-green", "experiment"],
            description="blue-green, or experiment (an A/B test decides); empty: the setting",
        ),
    },
)
def promote_model() -> None:
    @task
    def promote(params=None, dag_run=None, triggering_asset_events=None) -> list[dict]:
        from airflow.sdk.exceptions import AirflowFailException

        from core.settings import get_settings
        from serving.deploy import promote_or_experiment_step, promotions_to_run

        who = f"airflow:{dag_run.dag_id}/{dag_run.run_id}"  # the audit log's actor
        extras = [e.extra for events in (triggering_asset_events or {}).values() for e in events]
        mode = (params or {}).get("mode")
        outcomes = [
            promote_or_experiment_step(model, version, get_settings(), who, mode)
            for model, version in promotions_to_run(extras, params)
        ]
        failed = [o for o in outcomes if o["result"] in ("rejected", "rolled_back")]
        if failed:
            raise AirflowFailException(
                "; ".join(
                    f"{o['model']} v{o['version']} {o['result']}: {o['reason']}" for o in failed
                )
            )
        return outcomes

    promote()


promote_model()
