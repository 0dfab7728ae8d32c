"""The `redisgears` module of RedisGears 1.2: the native names behind the short ones.

Run once at start-up in the prelude's namespace (see lib.rs), so every session's globals hold
`redisgears` and `import redisgears` works (REFERENCE §5, §12.1).
"""

import sys as _sys
import types as _types

redisgears = _types.ModuleType('redisgears', 'RedisGears 1.2 native API (Gearshift)')
for _name, _value in {
    'executeCommand': execute,
    'registerTimeEvent': registerTE,
    'log': log,
    'callNext': call_next,
    'getCommand': get_command,
    'overrideReply': override_reply,
    'atomicCtx': atomic,
    'getMyHashTag': hashtag,
    'gearsFutureCtx': gearsFuture,
    'isAsyncAllow': isAsyncAllow,
    'flatError': flat_error,
    'config_get': configGet,
}.items():
    setattr(redisgears, _name, _value)
_sys.modules['redisgears'] = redisgears
del _name, _value

# 1.2 runs scripts in `__main__`, and clients' server-side runtimes rely on it: redgrease
# does `from __main__ import GB, GearsBuilder, configGet, gearsConfigGet` once it sees
# `redisgears` (issue #14). The session globals stay separate; `__main__` only names them.
_main = _sys.modules.get('__main__')
if _main is not None:
    for _name in ('GB', 'GearsBuilder', 'configGet', 'gearsConfigGet'):
        if not hasattr(_main, _name):
            setattr(_main, _name, globals()[_name])
    del _name
del _main
