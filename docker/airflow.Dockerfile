# The Airflow image: the official one with Aisle installed, so DAG tasks import features/,
# training/, serving/ and monitoring/ (the dags folder is not on sys.path since Airflow 3.0.2).
#   docker build -f docker/airflow.Dockerfile -t aisle-airflow .
FROM apache/airflow:3.3.2-python3.11

USER airflow
WORKDIR /opt/aisle
COPY --chown=airflow:root pyproject.toml requirements.lock README.md ./
COPY --chown=airflow:root core ./core
COPY --chown=airflow:root aisle ./aisle
COPY --chown=airflow:root features ./features
COPY --chown=airflow:root training ./training
COPY --chown=airflow:root serving ./serving
COPY --chown=airflow:root monitoring ./monitoring
COPY --chown=airflow:root dags /opt/airflow/dags
RUN pip install --no-cache-dir "uv==0.13.9" \
    && uv pip install --no-cache -r requirements.lock \
    && uv pip install --no-cache --no-deps -e .
ENV AIRFLOW__CORE__DAGS_FOLDER=/opt/airflow/dags \
    AIRFLOW__CORE__LOAD_EXAMPLES=False
