"""`python -m sidecar`: started by the addon with `--link-port`, or standalone with `--serve`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Coroutine
from typing import Any

from sidecar.app import Sidecar
from sidecar.config import Config, parse_args
from sidecar.link.editor_link import Link, LinkClosed
from sidecar.link.frames import FrameError
from sidecar.link.vconn import serve_direct

log = logging.getLogger("sidecar")


async def _serve(config: Config) -> int:
    sidecar = Sidecar(config)
    await sidecar.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def told_to_stop() -> None:
        sidecar.stopping()
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, told_to_stop)
    try:
        if config.serve_port is not None:
            server = await serve_direct(
                sidecar.app_server,
                "127.0.0.1",
                config.serve_port,
                on_open=sidecar.agents.add,
                on_close=sidecar.agents.remove,
            )
            log.info("serving HTTP directly on 127.0.0.1:%d", config.serve_port)
            try:
                await stop.wait()
            finally:
                server.close()
            return 0
        assert config.link_port is not None
        link = Link(config.link_port, config.link_token, sidecar)
        return await _until_stopped(link.run(), stop)
    finally:
        await sidecar.stop()


async def _until_stopped(work: Coroutine[Any, Any, None], stop: asyncio.Event) -> int:
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        log.info("stopped by signal")
        return 0
    try:
        task.result()
    except LinkClosed as exc:
        log.info("%s; exiting", exc)
        return 0
    except (FrameError, OSError, TimeoutError) as exc:
        log.error("link failed: %s", exc)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="[sidecar] %(levelname)s %(name)s: %(message)s",
    )
    config = parse_args(argv)
    return asyncio.run(_serve(config))


if __name__ == "__main__":
    sys.exit(main())
