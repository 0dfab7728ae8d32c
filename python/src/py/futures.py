# Gearshift's async records (REFERENCE §5, §12.5): `gearsFuture()`, the one asyncio loop
# `async def` callbacks run on, and the asyncio helpers bound to it. Loaded before the
# prelude, which re-exports the public names (lib.rs).
#
# An execution never waits for a user object: it waits for a `Completion`, an outcome set
# once (a value, or an error's text) that calls back whoever registered for it. A
# `gearsFuture()` handle continues one; a coroutine's result on the gears loop sets one;
# anything else able to call `settle()` (an execution's result, say) can too. The handle
# and its completion are separate objects so that a handle dropped without being
# continued fails its record at once (`__del__`), while the execution still holds the
# completion. The native side (`future.rs`) tracks which callback call created a handle.
import threading as _threading
import weakref as _weakref

import _gearshift

GearsError = _gearshift.GearsError
FlatError = _gearshift.FlatError

NOT_CONTINUED = 'Async record did not called continue'


class Completion(object):
    """An async record's outcome, set once: a value, or an error text (reported as is)."""

    def __init__(self):
        self._lock = _threading.Lock()
        self._event = _threading.Event()
        self._done = False
        self._value = None
        self._error = None
        self._callbacks = []
        # False while the callback that created it runs (it cannot be continued yet).
        self.returned = False

    def settle(self, value=None, error=None):
        """Sets the outcome (`error`: its text) and calls the waiters' callbacks; False if
        it was already set."""
        with self._lock:
            if self._done:
                return False
            self._done = True
            self._value, self._error = value, error
            callbacks, self._callbacks = self._callbacks, []
        self._event.set()
        for cb in callbacks:
            _call_quietly(cb)
        return True

    def done(self):
        return self._done

    def add_done_callback(self, cb):
        """Calls `cb()` once the outcome is set (at once if it is)."""
        with self._lock:
            if not self._done:
                self._callbacks.append(cb)
                return
        _call_quietly(cb)

    def result(self):
        """Waits (GIL released, abortable) for the outcome: the value, or `FlatError`
        carrying the error's text."""
        while not self._event.wait(1.0):
            pass
        if self._error is not None:
            raise FlatError(self._error)
        return self._value


def _call_quietly(cb):
    try:
        cb()
    except Exception as e:  # noqa: BLE001 - a waiter's bug must not fail the continuer
        _gearshift.log('async record callback failed: %s' % e, level='warning')


class GearsFuture(object):
    """A record that continues later: return it from a map/flatmap/filter/foreach/
    accumulate/accumulateby callback, then call continueRun(value) or
    continueFailed(error) from elsewhere."""

    def __init__(self, completion):
        self._completion = completion

    def _continue(self, value, error):
        c = self._completion
        if not c.returned:
            raise GearsError('Can not handle future untill it returned from the callback')
        if not c.settle(value, error):
            raise GearsError('Can not continue with the same future twice')

    def continueRun(self, value):
        self._continue(value, None)

    def continueFailed(self, error):
        self._continue(None, str(error))

    def __del__(self):
        c = self._completion
        if c.returned:
            c.settle(None, NOT_CONTINUED)


def gearsFuture():
    if not _gearshift.isAsyncAllow():
        raise GearsError('Future object can only be created inside certain execution steps')
    c = Completion()
    f = GearsFuture(c)
    _gearshift.future_created(c, _weakref.ref(f))
    return f


# -- the gears asyncio loop ------------------------------------------------------------

_gears_loop = None
_gears_loop_lock = _threading.Lock()


def _gears_event_loop():
    """The one asyncio loop `async def` callbacks run on, in a thread of its own."""
    global _gears_loop
    import asyncio
    with _gears_loop_lock:
        if _gears_loop is None:
            loop = asyncio.new_event_loop()
            _threading.Thread(target=loop.run_forever, name='gears-asyncio', daemon=True).start()
            _gears_loop = loop
    return _gears_loop


class _NoAwaitInAtomic(object):
    """Drives a coroutine as `await coro` would, but an await that suspends it while an
    `atomic()` block is open (the Redis lock held across the loop) fails there with 1.2's
    text; the block's `__exit__` then releases the lock."""

    def __init__(self, coro):
        self._coro = coro

    def __await__(self):
        coro, value, exc = self._coro, None, None
        while True:
            try:
                step = coro.throw(exc) if exc is not None else coro.send(value)
            except StopIteration as stop:
                return stop.value
            value, exc = None, None
            if _gearshift.atomic_open():
                cancel = getattr(step, 'cancel', None)
                if cancel is not None:
                    cancel()
                exc = GearsError('await is not allow inside atomic block')
                continue
            try:
                value = yield step
            except BaseException as e:  # noqa: BLE001 - handed to the coroutine
                exc = e


def _gears_as_caller(coro):
    """`coro` wrapped to run (on the gears loop, shared by every execution) as the ACL user
    of the code creating it: the identity travels in the task's own context."""
    token = _gearshift.caller_token()

    async def as_caller():
        _gearshift.caller_var.set(token)
        return await _NoAwaitInAtomic(coro)
    return as_caller()


def completion_of(coro):
    """Starts `coro` on the gears loop; returns the completion its outcome sets (an
    exception gives `str(e)`, 1.2's text)."""
    import asyncio
    c = Completion()
    c.returned = True
    running = asyncio.run_coroutine_threadsafe(_gears_as_caller(coro), _gears_event_loop())

    def done(f):
        try:
            v = f.result()
        except BaseException as e:  # noqa: BLE001 - the record's error
            c.settle(None, str(e))
            return
        c.settle(v, None)
    running.add_done_callback(done)
    return c


def _gears_await(coro):
    """Runs a callback's coroutine on the gears loop and waits (GIL released) for it."""
    return completion_of(coro).result()


def _gears_gather(coros):
    """Starts coroutines together on the gears loop (1.2 keeps up to 1000 in flight per
    step) in one task; returns a completion set to their results or errors
    (`FlatError(str(e))`), in order."""
    import asyncio

    async def gather():
        rs = await asyncio.gather(*(_NoAwaitInAtomic(x) for x in coros),
                                  return_exceptions=True)
        return [FlatError(str(r)) if isinstance(r, BaseException) else r for r in rs]
    return completion_of(gather())


def _gears_all_done(completions):
    """A completion set (to None) once every one of `completions` is."""
    c = Completion()
    c.returned = True
    left = [len(completions)]
    lock = _threading.Lock()

    def one():
        with lock:
            left[0] -= 1
            last = left[0] == 0
        if last:
            c.settle()
    if not completions:
        c.settle()
    for x in completions:
        x.add_done_callback(one)
    return c


def createFuture():
    """An asyncio future bound to the gears event loop."""
    return _gears_event_loop().create_future()


def setFutureResults(f, res):
    """Sets an asyncio future's result from any thread."""
    _gears_event_loop().call_soon_threadsafe(f.set_result, res)


def setFutureException(f, e):
    """Sets an asyncio future's exception from any thread (non-exceptions are wrapped)."""
    if not isinstance(e, BaseException):
        e = Exception(str(e))
    _gears_event_loop().call_soon_threadsafe(f.set_exception, e)


def runCoroutine(cr, f=None, delay=0):
    """Runs a coroutine on the gears event loop after `delay` seconds; with `f`, its result
    (or exception) completes that future."""
    import asyncio

    async def runner():
        if delay:
            await asyncio.sleep(delay)
        try:
            res = await cr
        except Exception as e:  # noqa: BLE001 - handed to the future
            if f is not None:
                f.set_exception(e)
            return
        if f is not None:
            f.set_result(res)
    return asyncio.run_coroutine_threadsafe(_gears_as_caller(runner()), _gears_event_loop())
