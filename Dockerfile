# One image for the API, the worker and the chat UI (docker-compose.yml picks the command).
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 shopwise

WORKDIR /app

# torch first, from the CPU wheel index: unpinned, pip would pull a multi-GB CUDA build.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

# Dependencies before the code, so a code change does not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir -p backend chat_ui && touch backend/__init__.py chat_ui/__init__.py \
    && pip install --extra-index-url https://download.pytorch.org/whl/cpu . \
    && pip uninstall -y shopwise

COPY alembic.ini ./
COPY backend ./backend
COPY chat_ui ./chat_ui
COPY prompts ./prompts
COPY seed_data ./seed_data
RUN pip install --no-deps . && mkdir -p /app/data && chown -R shopwise /app/data

USER shopwise
ENV DATA_DIR=/app/data \
    PROMPTS_DIR=/app/prompts \
    SEED_DIR=/app/seed_data \
    API_HOST=0.0.0.0 \
    API_PORT=8000

EXPOSE 8000 8501
CMD ["shopwise", "serve", "--host", "0.0.0.0", "--port", "8000"]
