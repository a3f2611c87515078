"""Connecting to a Dask cluster (``pip install 'parallel-file-processor[dask]'``).

Every capability runs on a cluster when given a ``distributed.Client`` (``client=``, and
``executor=`` for the engine): the same job through the same driver, its shards run by
:class:`~.runners.dask.DaskRunner`, the one module that imports Dask. Here are the names to
connect with.

>>> client = get_client("tcp://scheduler.example:8786", timeout=10)   # doctest: +SKIP
>>> dashboard_link(client)                                            # doctest: +SKIP
"""

from __future__ import annotations

from .errors import PathsNotVisibleError, SchedulerUnreachableError
from .runners.dask import cli_client, dashboard_link, get_client, require_dask

__all__ = [
    "PathsNotVisibleError",
    "SchedulerUnreachableError",
    "cli_client",
    "dashboard_link",
    "get_client",
    "require_dask",
]
