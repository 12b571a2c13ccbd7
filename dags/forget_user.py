"""
### Forget a user: erase every trace of one shopper (GDPR right to erasure)

Triggered by hand with the user's id. **forget** removes the user's rows from the raw zone,
curated data, quarantine, Feast's offline sources (the feature tables), the training sets and
MLflow's local artifacts (each file rewritten atomically), and the user's entity rows from the
online store of every user-keyed feature view (SQLite locally, Redis in production); it writes
an audit record to `data/forget/audit.jsonl` with the id's sha256 (never the id), who ran it
(this DAG run) and the rows removed per store. The task's return value holds the same counts.

**Inputs**: the param `user_id`.

**Rerun**: trigger again with the same id; a user already forgotten leaves nothing to remove,
and the run records that (zero rows).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task


@dag(
    dag_id="forget_user",
    schedule=None,
    start_date=pendulum.datetime(1990, 1, 1, tz="UTC"),
    catchup=False,
    doc_md=__doc__,
    tags=["aisle", "privacy"],
    params={"user_id": Param(type="string", minLength=1, description="the user to erase")},
)
def forget_user_dag() -> None:
    @task
    def forget(params=None, dag_run=None) -> dict:
        from features.forget import forget_user

        done = forget_user(params["user_id"], who=f"airflow:{dag_run.dag_id}/{dag_run.run_id}")
        return {"user_sha256": done.user_hash, "files": len(done.files), "online": done.online}

    forget()


forget_user_dag()
