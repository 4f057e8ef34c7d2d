# The cmdb command in an image: `cmdb serve`, `cmdb scheduler` and one-off commands (docker-compose.yml).
# Base image pinned by digest (python 3.11.13, Debian bookworm, slim; the multi-arch index digest).
FROM python:3.11.13-slim-bookworm@sha256:86adf8dbadc3d6e82ee5dd2c74bec2e1c2467cdad47886280501df722372d2e1

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1

# Dependencies first, from the lock file with its hashes (a layer that changes only with the lock);
# then the product itself without resolving anything again.
COPY requirements.lock /tmp/requirements.lock
RUN pip install --require-hashes -r /tmp/requirements.lock && rm /tmp/requirements.lock
WORKDIR /src
COPY pyproject.toml README.md ./
COPY cmdb cmdb
COPY discovery discovery
COPY importers importers
COPY impact impact
COPY api api
COPY product product
RUN pip install --no-deps . && rm -rf /src

# A fixed non-root user: its uid owns the secrets it reads (0600 files; see docker-compose.yml).
ARG CMDB_UID=10001
RUN groupadd --system --gid ${CMDB_UID} cmdb \
 && useradd --system --uid ${CMDB_UID} --gid cmdb --home-dir /home/cmdb --create-home --shell /usr/sbin/nologin cmdb \
 && install -d -o cmdb -g cmdb -m 0700 /data /home/cmdb/.config /home/cmdb/.config/cmdb
USER cmdb
WORKDIR /home/cmdb
ENV CMDB_STORE=sqlite:////data/cmdb.db XDG_CONFIG_HOME=/home/cmdb/.config
VOLUME ["/data"]
EXPOSE 8000

# `cmdb serve` answers /readyz when its store does; other commands (the scheduler, one-offs) override this
# check in docker-compose.yml.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status != 200)"]

ENTRYPOINT ["cmdb"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
