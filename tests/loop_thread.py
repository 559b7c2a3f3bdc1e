"""The end of an event loop that a test runs in a thread (`loop.run_forever`), done the way `asyncio.run` ends its
own: what is still pending is cancelled and allowed to unwind before the loop stops and closes. Stopping right
after cancelling (`concurrent.futures.Future.cancel` only schedules the task's cancellation on the loop) closed the
loop with `Server.run` and its waiters still pending, and collecting them later printed "Task was destroyed but it
is pending!"."""

from __future__ import annotations

import asyncio
import threading


async def _cancel_pending() -> None:
    tasks = asyncio.all_tasks() - {asyncio.current_task()}
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def close(loop: asyncio.AbstractEventLoop, thread: threading.Thread, timeout: float = 30.0) -> None:
    """Cancel and finish every task on `loop`, stop it, join `thread` (its run_forever) and close the loop."""
    try:
        if thread.is_alive():
            asyncio.run_coroutine_threadsafe(_cancel_pending(), loop).result(timeout)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        if not thread.is_alive():
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            loop.close()
            assert not pending, f"tasks left pending on the closed loop: {pending}"
