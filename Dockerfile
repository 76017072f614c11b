# The autobots service image (README "Container image").
#
#   docker build -t autobots .                       # with a registry: python:3.11-slim-bookworm and PyPI
#   python -m autobots image build                   # without one: a debootstrapped base and local wheels
#
# Runs as the unprivileged user `autobots` (uid 10001) in /srv/autobots: settings come from
# /srv/autobots/config.json (mount your own over it, or name another with AUTOBOTS_CONFIG), overridden by
# AUTOBOTS_* variables; the database (SQLite by default) and run workspaces live in the volume
# /srv/autobots/data. Agents' code runs in the bubblewrap (`process`) sandbox inside this container, which
# needs `--security-opt seccomp=unconfined --security-opt systempaths=unconfined` (compose.yaml says why).
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}

ENV LANG=C.UTF-8 \
    PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# bubblewrap and util-linux's prlimit/unshare make the process sandbox; the offline base already has them.
RUN if ! command -v bwrap >/dev/null || ! command -v prlimit >/dev/null; then \
        apt-get update \
        && apt-get install -y --no-install-recommends bubblewrap util-linux procps \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && useradd --uid 10001 --user-group --home-dir /srv/autobots --shell /usr/sbin/nologin autobots \
    && mkdir -p /srv/autobots/data \
    && printf '{"host": "0.0.0.0", "auth_mode": "apikey"}\n' > /srv/autobots/config.json \
    && chown autobots:autobots /srv/autobots/data

# Dependencies first, so that a code change reuses this layer. `image build` puts wheels in build/wheels;
# without them pip uses the index. Test and lint tools stay out of the image.
COPY requirements.txt build/wheel[s] /tmp/install/
RUN python3 -m venv /opt/venv \
    && grep -vE '^(pytest|pytest-asyncio|pytest-timeout|ruff|iniconfig|pluggy|playwright)==' /tmp/install/requirements.txt \
        > /tmp/install/runtime.txt \
    && if ls /tmp/install/*.whl >/dev/null 2>&1; then set -- --no-index --find-links /tmp/install; fi \
    && pip install --no-cache-dir "$@" -r /tmp/install/runtime.txt \
    && rm -rf /tmp/install

# The package is the `src` folder under the name `autobots`, with migrations/ beside it (where
# autobots.db.migrate looks for them), put on the venv's path.
COPY alembic.ini /opt/autobots/
COPY migrations /opt/autobots/migrations
COPY src /opt/autobots/autobots
RUN echo /opt/autobots > "$(python -c 'import site; print(site.getsitepackages()[0])')/autobots.pth" \
    && python -m compileall -q /opt/autobots

USER 10001:10001
WORKDIR /srv/autobots
VOLUME /srv/autobots/data
EXPOSE 8081
# Asks the address and port the server was configured with (config.json and AUTOBOTS_* alike).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["python", "-c", "import urllib.request; \
from autobots.config import get_settings; s = get_settings(); \
h = '127.0.0.1' if s.host in ('0.0.0.0', '::', '') else s.host; h = f'[{h}]' if ':' in h else h; \
urllib.request.urlopen(f'http://{h}:{s.port}/healthz', timeout=4)"]
ENTRYPOINT ["python", "-m", "autobots"]
CMD ["serve"]
