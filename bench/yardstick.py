"""The yardstick of ``bench/api.py``: a bare FastAPI app — no middleware, one sync route
returning a small JSON object — served by the same uvicorn as ``promocodes serve``."""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()


@app.get("/sync")
def sync() -> dict[str, object]:
    return {"ok": True, "n": 1}
