"""Module-level ASGI app for servers: ``gunicorn -k uvicorn_worker.UvicornWorker host.asgi:app``."""

from host.app import create_app

app = create_app()
