"""The HTTP job API (`python -m portrait_studio serve`): FastAPI over a SQLite job store and the batch executors.

FastAPI and uvicorn are the optional `serve` extra; only `server.app` and `server.command` import them.
"""
