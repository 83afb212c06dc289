# okap vault: multi-stage, slim, non-root. Build: docker build -t okap .
# Run:   docker run -p 8400:8400 -v okap-data:/data okap   (the setup link is in the logs)

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY okap_server ./okap_server
COPY okap_client ./okap_client
COPY templates ./templates
# The otel extra: OKAP_OTEL=true works in the image (README "Monitoring").
RUN python -m venv /opt/okap \
 && /opt/okap/bin/pip install --upgrade pip \
 && /opt/okap/bin/pip wheel --no-deps -w /wheels . \
 && /opt/okap/bin/pip install "$(ls /wheels/okap_vault-*.whl)[server,otel]"

FROM python:3.11-slim
ENV PATH=/opt/okap/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    OKAP_HOME=/data \
    OKAP_HOST=0.0.0.0 \
    OKAP_PORT=8400
RUN groupadd --system --gid 10001 okap \
 && useradd --system --uid 10001 --gid okap --home-dir /data --no-create-home okap \
 && mkdir -p /data && chown okap:okap /data && chmod 0700 /data
COPY --from=build /opt/okap /opt/okap
USER okap:okap
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8400
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('OKAP_PORT', '8400'), timeout=4)"]
ENTRYPOINT ["okap-server"]
CMD ["serve"]
