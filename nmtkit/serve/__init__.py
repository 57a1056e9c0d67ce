"""`nmtkit serve`: an HTTP JSON API over `nmtkit.Translator`, with batching across requests and
a page that shows the attention (static files in `static/`).

    schemas   request and response models (pydantic), the server's limits
    batcher   the queue and the one worker thread per model that batches waiting requests
    app       the FastAPI app: routes, errors as JSON, auth, metrics, lifespan; `serve` runs it
"""
