"""Remote collectors: ``--push URL --token-file F`` sends each batch to a central CMDB's API.

A collector in a DMZ, a remote site or a cloud account runs the same discovery there and POSTs
every batch to ``URL/api/v1/batches`` instead of ingesting it into a local store; the server runs
the same ``ingest``. Each batch carries an ``Idempotency-Key`` (its run id, ``<run>/<n>``), so a
POST retried after a lost answer writes nothing twice. Connection errors, 5xx, 429 and 503 are
retried with exponential backoff (honouring ``Retry-After``); a 4xx is the server's final word and
turns the target's outcome into ``rejected`` with the problem's detail.

The token is read from a file only its owner may read (0600, as for every credential) and sent
only in the ``Authorization`` header; it never reaches a log line, a run record or an error.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cmdb.batch import Batch
from cmdb.errors import BadInputError, CmdbError, ConfigError
from discovery.credentials import read_secret_file

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("cmdb.discovery.push")
BATCH_PATH = "/api/v1/batches"

PushOpt = Annotated[str | None, typer.Option(
    "--push", metavar="URL",
    help="Send batches to the CMDB API at URL (e.g. https://cmdb.example:8000) instead of the local store.")]
TokenFileOpt = Annotated[Path | None, typer.Option(
    "--token-file", help="With --push: a 0600 file holding the API token (a collector or operator token).")]


class PushError(CmdbError):
    """The central CMDB refused a batch or could not be reached after the retries."""


@dataclass
class BatchPusher:
    """POSTs batches to one CMDB API with one token; ``push`` returns the server's ingest summary."""

    url: str
    token: str = field(repr=False)
    attempts: int = 5
    backoff: float = 0.5
    timeout: float = 60.0
    _client: httpx.Client | None = field(default=None, repr=False)

    @classmethod
    def from_options(cls, url: str, token_file: Path | None) -> BatchPusher:
        if token_file is None:
            raise BadInputError("--push needs --token-file naming a 0600 file with the API token"
                                " (`cmdb tokens create --role collector ...` on the central CMDB)")
        if not url.startswith(("http://", "https://")):
            raise BadInputError(f"--push {url!r}: give the CMDB API's base URL, e.g. https://cmdb.example:8000")
        token = read_secret_file(token_file, "--token-file")
        if not token:
            raise ConfigError(f"--token-file: {token_file} is empty; put the API token on its first line")
        return cls(url, token)

    @property
    def endpoint(self) -> str:
        base = self.url.rstrip("/")
        return base if base.endswith(BATCH_PATH) else base + BATCH_PATH

    def _http(self) -> httpx.Client:
        import httpx  # here: ``cmdb --help`` stays quick

        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout, headers={"Authorization": f"Bearer {self.token}"})
        return self._client

    def push(self, batch: Batch) -> dict[str, Any]:
        """Send one batch (atomic on the server); retried safely under its Idempotency-Key."""
        import httpx

        body = batch.to_dict()
        headers = {"Idempotency-Key": batch.run_id}
        delay = self.backoff
        last = ""
        for attempt in range(1, self.attempts + 1):
            try:
                resp = self._http().post(self.endpoint, json=body, headers=headers)
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if resp.status_code < 300:
                    summary: dict[str, Any] = resp.json()
                    return summary
                if resp.status_code not in (429, 500, 502, 503, 504):
                    raise PushError(f"{self.endpoint} refused the batch ({resp.status_code}): {_detail(resp)}")
                last = f"{resp.status_code}: {_detail(resp)}"
                retry_after = resp.headers.get("Retry-After", "")
                if retry_after.isdigit():
                    delay = max(delay, min(float(retry_after), 60.0))
            if attempt < self.attempts:
                log.info("push of %s to %s failed (%s); retrying in %.1f s", batch.run_id, self.endpoint, last, delay)
                time.sleep(delay)
                delay *= 2
        raise PushError(f"could not deliver batch {batch.run_id} to {self.endpoint} after {self.attempts} attempts"
                        f" ({last}); nothing is lost: run the discovery again when the CMDB is reachable")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _detail(resp: httpx.Response) -> str:
    try:
        doc = resp.json()
    except ValueError:
        return resp.text[:200]
    if isinstance(doc, dict):
        return str(doc.get("detail") or doc.get("title") or doc)[:500]
    return str(doc)[:200]
