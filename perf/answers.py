"""Answers: parsing each method's reply into a comparable value, and comparing.

parse_gearshift turns an RG.PYEXECUTE run() reply ([[results...], [errors...]]) into an int,
a float or a dict according to the workload's kind; parse_lua does the same for an EVAL reply;
same() compares two answers (floats with a relative tolerance of 1e-9); describe(), diff_dicts()
and short() word a mismatch; error_text() extracts the useful line of an error reply.
"""

import ast
import contextlib
import math


class WrongAnswer(Exception):
    """A reply that cannot be the right answer (bad shape, reported errors, duplicate keys)."""


def parse_gearshift(kind, reply):
    """RG.PYEXECUTE run() reply [[results...], [errors...]] -> normalized answer."""
    if not (isinstance(reply, list) and len(reply) == 2 and isinstance(reply[0], list)):
        raise WrongAnswer(f"unexpected reply shape: {short(reply)}")
    results, errors = reply
    if errors:
        raise WrongAnswer(f"execution reported {len(errors)} error(s), first: {error_text(errors[0])}")
    if kind == "int":
        if not results:
            return 0  # count() on empty input gives no record (REFERENCE §3)
        if len(results) != 1:
            raise WrongAnswer(f"expected one record, got {len(results)}: {short(results)}")
        return int(results[0])
    if kind == "float":
        if not results:
            return None
        if len(results) != 1:
            raise WrongAnswer(f"expected one record, got {len(results)}: {short(results)}")
        return float(results[0])
    if kind == "dict":
        out = {}
        for rec in results:
            d = ast.literal_eval(rec)
            key, value = d["key"], int(d["value"])
            if key in out:
                raise WrongAnswer(f"key {key!r} appears twice in the results")
            out[key] = value
        return out
    raise ValueError(kind)


def parse_lua(kind, reply):
    if kind == "int":
        return int(reply)
    if kind == "float":
        return None if reply is None else float(reply)
    if kind == "dict":
        return {reply[i]: int(reply[i + 1]) for i in range(0, len(reply), 2)}
    raise ValueError(kind)


def same(kind, a, b):
    if kind == "float":
        if a is None or b is None:
            return a is None and b is None
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def describe(kind, answer):
    if kind == "dict" and isinstance(answer, dict):
        total = sum(answer.values())
        top = sorted(answer.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        return f"{len(answer)} keys, total {total}, top {top}"
    return repr(answer)


def diff_dicts(a, b, limit=5):
    keys = sorted(set(a) | set(b))
    out = [f"{k}: {a.get(k)} != {b.get(k)}" for k in keys if a.get(k) != b.get(k)]
    return "; ".join(out[:limit]) + (f" (+{len(out) - limit} more)" if len(out) > limit else "")


def short(x, n=300):
    s = repr(x) if not isinstance(x, str) else x
    return s if len(s) <= n else s[:n] + "..."


def error_text(err):
    """The useful line of an error reply: the last line of a formatted traceback.

    Gearshift (like RedisGears) sends a Python exception as str() of the list of traceback lines.
    """
    text = str(err).strip()
    if text.startswith("["):
        with contextlib.suppress(ValueError, SyntaxError):
            lines = ast.literal_eval(text)
            if isinstance(lines, list) and lines:
                return str(lines[-1]).strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1].strip() if lines else text
