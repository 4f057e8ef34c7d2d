"""``/tokens``: API tokens for admins (the same as ``cmdb tokens``); a new token is shown once.

The answer to ``POST`` is the only place the token ever appears; lists and errors carry names only.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.auth import Principal, load_token_key, require
from api.problems import responses
from api.state import ApiState, api_state
from cmdb.tokens import create_token, list_tokens, parse_duration, revoke_token

router = APIRouter(prefix="/tokens", tags=["Tokens"], responses=responses(400, 401, 403, 422, 500))
StateDep = Annotated[ApiState, Depends(api_state)]
Admin = Annotated[Principal, Depends(require("admin"))]


class TokenIn(BaseModel):
    name: str = Field(min_length=1, max_length=64, examples=["deploy-pipeline"])
    role: str = Field(examples=["viewer"], description="viewer, operator, admin or collector")
    partitions: list[str] | None = Field(None, description="Partitions it may read and write (null: all).")
    sources: list[str] | None = Field(None, description="Collector tokens: batch sources it may write.")
    scopes: list[str] | None = Field(None, description="Collector tokens: scopes (CIDRs) it may write.")
    expires: str | None = Field(None, examples=["90d"], description="Lifetime: 90d, 12h, 2w ...")


class TokenOut(BaseModel):
    name: str
    role: str
    partitions: list[str] | None = None
    sources: list[str] | None = None
    scopes: list[str] | None = None
    created_at: str
    created_by: str | None = None
    expires_at: str | None = None
    last_used: str | None = None
    revoked_at: str | None = None


class TokenCreated(TokenOut):
    token: str = Field(description="The token itself: shown in this answer only.")


@router.get("", response_model=list[TokenOut], summary="Every token (names, roles, reach; never the token)")
def get_tokens(st: StateDep, who: Admin) -> list[dict[str, Any]]:
    return list_tokens(st.store)


@router.post("", status_code=201, response_model=TokenCreated, summary="Create a token (shown once)")
def post_token(st: StateDep, who: Admin, body: TokenIn) -> JSONResponse:
    token, rec = create_token(st.store, load_token_key(st.store), body.name, body.role, partitions=body.partitions,
                              sources=body.sources, scopes=body.scopes,
                              expires=parse_duration(body.expires) if body.expires else None, created_by=who.name)
    return JSONResponse({"token": token, **rec.public()}, status_code=201, headers={"Cache-Control": "no-store"})


@router.delete("/{name}", status_code=204, summary="Revoke a token (it stops working within seconds)",
               responses=responses(404))
def delete_token(st: StateDep, who: Admin, name: str) -> None:
    revoke_token(st.store, name)
