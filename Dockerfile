# nbserver in a container: docker build -t nbserver . && docker run -p 8888:8888 nbserver
# The token is printed in the log (or pass -e NBSERVER_TOKEN=...); notebooks live in /home/jovyan/work.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# tini reaps the kernels' and terminals' child processes and forwards SIGTERM to the server
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 1000 --shell /bin/bash jovyan \
    && install -d -o 1000 -g 1000 /home/jovyan/work

WORKDIR /opt/nbserver
COPY pyproject.toml README.md api.yaml ./
COPY nbserver ./nbserver
RUN pip install --no-cache-dir ".[nbconvert,terminals]"

USER 1000:1000
WORKDIR /home/jovyan/work
EXPOSE 8888

ENTRYPOINT ["tini", "--"]
CMD ["python", "-m", "nbserver", "--ip", "0.0.0.0", "--port", "8888", "--no-browser"]
