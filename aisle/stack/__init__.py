"""The whole system as local processes: `aisle stack up|down|status`.

One command starts what the profile needs, each process in its own session with its pid and log
under `data/stack/`:

    airflow-api-server, airflow-scheduler, airflow-dag-processor, airflow-triggerer
    airflow-celery-worker-1..N        production only (CeleryExecutor, Redis as broker)
    mlflow                            the tracking server and UI (on PostgreSQL in production;
                                      on the local SQLite store otherwise, for its UI)
    events-broker                     the event stream's NATS server (JetStream), unless
                                      AISLE_EVENTS__URL names a broker elsewhere
    events-consumer                   the stream into the raw zone, the online store and the
                                      answer log (features.stream)
    supervisor                        restarts any of the above that dies
    gateway, slots                    the serving cluster: each model's champion live

On the local profile Airflow runs on SQLite with the LocalExecutor (airflow.cfg); on the
production profile on PostgreSQL with Celery workers (`airflow_env.production_env`), against
the host's PostgreSQL and Redis (`AISLE_POSTGRES_URL`, `AISLE_REDIS_URL`). `up` is idempotent:
a process that is already running is kept.

Secrets: Airflow's keys and the UI's `admin` password are generated into AIRFLOW_HOME (mode
0600; the password before Airflow would generate and print one); the serving cluster's admin
token is AISLE_ADMIN_TOKEN, or generated once into `data/stack/admin-token` (0600) when unset.
None is ever printed or logged.

The package's parts:

    control.py       up, down, status: the whole stack at once
    roster.py        which components each profile runs: their commands and health URLs
    processes.py     one component as a process: start, stop, its pid and log files
    supervisor.py    restarts a component that died (`python -m aisle.stack supervise`)
    environment.py   the environment every component starts with
    credentials.py   the admin token and the Airflow UI's password
    databases.py     the production profile's databases on PostgreSQL and Redis
    health.py        waiting until the components are healthy; StackError
"""

from .control import down, status, up, up_event_stream
from .credentials import ADMIN_TOKEN_FILE, admin_token, airflow_password_file
from .databases import ensure_databases, reset_production_state
from .environment import THREAD_VARIABLES, stack_env, thread_env
from .health import StackError
from .processes import log_file, running, stop
from .roster import components, mlflow_backend_store

__all__ = [
    "ADMIN_TOKEN_FILE",
    "THREAD_VARIABLES",
    "StackError",
    "admin_token",
    "airflow_password_file",
    "components",
    "down",
    "ensure_databases",
    "log_file",
    "mlflow_backend_store",
    "reset_production_state",
    "running",
    "stack_env",
    "status",
    "stop",
    "thread_env",
    "up",
    "up_event_stream",
]
