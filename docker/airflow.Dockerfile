# The Airflow image: the official one with Aisle installed, so DAG tasks import features/,
# training/, serving/ and monitoring/ (the dags folder is not on sys.path since Airflow 3.0.2).
# Airflow's Spark provider (SparkSubmitOperator) goes in without its dependencies, as in the
# Makefile: it requires pyspark-client, which would install over the locked pyspark's files
# (spark-submit is pyspark's). The image's own cncf.kubernetes provider lets it submit to k8s://.
#   docker build -f docker/airflow.Dockerfile -t aisle-airflow .
# Java 17 for Apache Spark (AISLE_ENGINE=spark): the tasks' Spark sessions and the `build` task's
# spark-submit (AISLE_SPARK__SUBMIT=true) run their driver JVM in this image.
FROM apache/airflow:3.3.2-python3.11

USER root
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        openjdk-17-jre-headless \
    && apt-get clean && rm -rf /var/lib/apt/lists/*
ENV JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64

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
    && uv pip install --no-cache --no-deps "apache-airflow-providers-apache-spark==6.3.4" -e .
ENV AIRFLOW__CORE__DAGS_FOLDER=/opt/airflow/dags \
    AIRFLOW__CORE__LOAD_EXAMPLES=False
