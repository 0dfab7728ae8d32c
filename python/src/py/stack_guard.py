"""Loaded once at start-up, before any session (see lib.rs)."""

# Redis's threads have fixed C stacks (Gearshift's workers 16 MiB, the main thread the
# process's, usually 8 MiB). Nested repr() or __repr__ recursion uses the C stack per level,
# so a recursion limit far above Python's default overflows it and takes the server down
# instead of raising RecursionError: sys.setrecursionlimit is capped (larger values are
# lowered to the cap, other arguments behave as before).
import sys as _sys

_MAX_RECURSION_LIMIT = 10000


def _capped_setrecursionlimit(limit, _set=_sys.setrecursionlimit):
    if isinstance(limit, int) and limit > _MAX_RECURSION_LIMIT:
        limit = _MAX_RECURSION_LIMIT
    _set(limit)


if getattr(_sys.setrecursionlimit, '__name__', '') != '_capped_setrecursionlimit':
    _sys.setrecursionlimit = _capped_setrecursionlimit
