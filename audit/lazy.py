"""Products of a lazy cache: each computed on first use, once, and timed.

``Context`` (and any later cache of the same kind) declares its products with
:func:`timed_product`; the owner keeps a ``timings`` dict and a ``log`` prefix.
"""
from __future__ import annotations

import functools
import logging
import time

__all__ = ["cached", "timed_product"]

log = logging.getLogger("audit")
cached = functools.cached_property


def timed_product(name: str, prefix: str = "geometry"):
    """A cached property whose first computation is logged and its seconds kept in the
    owner's ``timings`` as ``<prefix>.<name>`` (a product that is None, e.g. the
    reference's in a run without one, is not timed)."""
    def wrap(fn):
        @functools.wraps(fn)
        def product(self):
            t0 = time.perf_counter()
            log.info("%s: %s ...", prefix, name)
            out = fn(self)
            if out is not None:
                self.timings[f"{prefix}.{name}"] = round(time.perf_counter() - t0, 3)
            return out
        return cached(product)
    return wrap
