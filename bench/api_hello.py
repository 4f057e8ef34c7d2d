"""The baseline of ``bench/api.py``: a bare FastAPI app with one hello endpoint, served the same way."""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()


@app.get("/hello")
async def hello() -> dict[str, str]:
    return {"hello": "world"}
