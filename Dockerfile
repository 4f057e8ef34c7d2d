FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY cmdb cmdb
COPY discovery discovery
COPY importers importers
COPY impact impact
COPY api api
RUN pip install --no-cache-dir .
ENTRYPOINT ["cmdb"]
