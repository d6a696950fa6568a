"""``prometheus web``: the operations console (Starlette, Jinja2, htmx; served by uvicorn).

Imported only by the ``web`` command and the web benchmark, so the CLI never pays for
Starlette, Jinja2 or uvicorn unless it serves the console.
"""
