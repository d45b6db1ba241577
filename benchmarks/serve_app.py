"""Serve one source tree's web app over a database on a loopback port, for a benchmark that
compares two trees side by side (this one and an earlier revision's export).

    python benchmarks/serve_app.py TREE DATABASE_URL DATA_DIR

It imports the app from TREE (nothing from this tree), prints the port it listens on, and
serves until its standard input closes. The Temporal client is lazy and never called by the
pages the benchmarks time.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path


async def main(database_url: str, data_dir: str) -> None:
    import uvicorn
    from temporalio.client import Client

    from exosuit.settings import Settings
    from exosuit.storage.db import Database
    from web.app import create_app
    from web.deps import Services

    db = Database.from_url(database_url)
    client = await Client.connect("127.0.0.1:1", lazy=True)
    app = create_app(Services.build(Settings(data_dir=Path(data_dir)), db, client))
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            await serving
            return
        await asyncio.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    print(port, flush=True)
    await asyncio.to_thread(sys.stdin.read)  # until the benchmark closes it
    server.should_exit = True
    await serving
    await db.dispose()


if __name__ == "__main__":
    tree, url, folder = sys.argv[1:4]
    sys.path.insert(0, str(Path(tree).resolve()))
    asyncio.run(main(url, folder))
