# The Sequence Deep Learning Playground as one Streamlit replica (CPU only).
#   docker build -t seq-playground .
#   docker run --rm -p 8501:8501 seq-playground          -> http://localhost:8501
# Several replicas behind a sticky proxy: compose.yaml and README "Hosting a class".
FROM python:3.11-slim

# One torch thread per process (the library also does this on import): replicas share the cores,
# and several threads per process made everything slower.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PLAYGROUND_NUM_THREADS=1 \
    OMP_NUM_THREADS=1 \
    MKL_NUM_THREADS=1 \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false

WORKDIR /app

# CPU-only torch from the PyTorch index first (the PyPI wheel brings several GB of CUDA libraries);
# requirements.txt's torch==2.13.0 is then already satisfied by 2.13.0+cpu.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
COPY requirements.txt .
RUN pip install -r requirements.txt

# Non-root. Its home holds the download caches: ESM-2 weights (torch hub, ~/.cache/torch) and
# Genomic Benchmarks data (~/.genomic_benchmarks); compose.yaml puts them on volumes.
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin playground \
    && mkdir -p /home/playground/.cache/torch /home/playground/.genomic_benchmarks \
    && chown -R playground:playground /home/playground
COPY --chown=playground:playground . .
USER playground

EXPOSE 8501
# Streamlit answers 200 on /_stcore/health once it accepts sessions (503 while starting/stopping).
# python:3.11-slim has no curl: ask with Python.
HEALTHCHECK --interval=15s --timeout=5s --start-period=40s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4)"]

CMD ["streamlit", "run", "app.py", "--server.headless", "true", "--server.port", "8501", "--server.address", "0.0.0.0"]
