"""The ``shopwise`` command: one module per group of verbs, gathered into ``app`` here.

Every command imports the application modules it uses inside its body: importing the whole
service (torch, Chroma) takes seconds, and ``shopwise --help`` or ``shopwise keys list`` should
not wait for it.
"""

from __future__ import annotations

import typer

from backend.cli import accounts, data, evaluate, serve, worker

app = typer.Typer(help="Shopwise: explained product recommendations.", no_args_is_help=True)

app.command()(data.migrate)
app.command()(data.seed)
app.command()(serve.serve)
app.command()(worker.worker)
app.command()(data.segments)
app.command()(data.index)
app.command()(data.train)
app.command()(evaluate.evaluate)
app.add_typer(accounts.keys_app, name="keys")
app.add_typer(accounts.admins_app, name="admins")
app.add_typer(accounts.tokens_app, name="tokens")
app.add_typer(data.import_app, name="import")
