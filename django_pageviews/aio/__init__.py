"""The asyncio side: the per-loop batcher and client, the ASGI lifespan, the SIGTERM guard."""
