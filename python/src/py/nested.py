"""What `run()` returns (REFERENCE §4.1, §12.3): an awaitable that a coroutine awaits for
the run's `[results, errors]`. The module completes it (GIL held, from whatever thread the
run ended on); coroutines awaiting it on any asyncio loop are woken through that loop, so
nothing ever blocks a thread waiting for it."""

import threading


def _resolve(fut, value):
    if not fut.done():
        fut.set_result(value)


class GearsFuture(object):
    """The `[results, errors]` of a run started by `run()`, once it is done."""

    def __init__(self):
        self._lock = threading.Lock()
        self._done = False
        self._value = None
        self._waiters = []

    def _complete(self, value):
        with self._lock:
            if self._done:
                return
            self._done, self._value = True, value
            waiters, self._waiters = self._waiters, []
        for loop, fut in waiters:
            try:
                loop.call_soon_threadsafe(_resolve, fut, value)
            except RuntimeError:  # that loop is closed: nobody waits there any more
                pass

    def done(self):
        return self._done

    def __await__(self):
        import asyncio
        fut = None
        with self._lock:
            if not self._done:
                loop = asyncio.get_running_loop()
                fut = loop.create_future()
                self._waiters.append((loop, fut))
        if fut is not None:
            yield from fut.__await__()
        return self._value

    def __repr__(self):
        return '<GearsFuture %s>' % ('done' if self._done else 'pending')
