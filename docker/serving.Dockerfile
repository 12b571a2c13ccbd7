# The serving image: a BentoML slot (either model) or the gateway, on a CUDA base for the GPU
# node pool. The same image runs on CPU; the slot picks CUDA when torch sees a device.
#   docker build -f docker/serving.Dockerfile -t aisle-serving .
#   docker run --gpus all -e AISLE_SERVICE=serving.recommender_service:RecommenderService ...
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    BENTOML_DO_NOT_TRACK=true \
    AISLE_SERVING_GPU=true \
    AISLE_SERVICE=serving.recommender_service:RecommenderService \
    PATH=/opt/aisle/.venv/bin:$PATH

RUN apt-get update \
    && apt-get install -y --no-install-recommends software-properties-common curl ca-certificates \
    && add-apt-repository -y ppa:deadsnakes/ppa \
    && apt-get install -y --no-install-recommends python3.11 python3.11-venv \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/aisle
COPY pyproject.toml requirements.lock README.md ./
# The CUDA build of the same torch version the lock pins (the lock holds the CPU wheel).
RUN python3.11 -m venv .venv \
    && .venv/bin/pip install --no-cache-dir "uv==0.13.9" \
    && grep -v '^torch==' requirements.lock > /tmp/requirements.txt \
    && .venv/bin/uv pip install --python .venv/bin/python --no-cache -r /tmp/requirements.txt \
    && .venv/bin/uv pip install --python .venv/bin/python --no-cache \
       --index-url https://download.pytorch.org/whl/cu128 "torch==2.13.0"
COPY core ./core
COPY aisle ./aisle
COPY features ./features
COPY training ./training
COPY serving ./serving
COPY monitoring ./monitoring
RUN .venv/bin/uv pip install --python .venv/bin/python --no-deps -e .

# No secrets here: AISLE_ADMIN_TOKEN, AISLE_API_KEYS and the database URLs come from the
# orchestrator's secrets at run time.
USER 1000:1000
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s CMD curl -fs localhost:3000/readyz || exit 1
CMD ["sh", "-c", "exec bentoml serve \"$AISLE_SERVICE\" --host 0.0.0.0 --port 3000"]
