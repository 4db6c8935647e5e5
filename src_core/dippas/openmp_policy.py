"""How OpenMP worker threads (torch's and Numba's) wait between parallel regions.

A DIPPAS iteration is a thousand small parallel kernels; how the worker
threads wait between them decides much of its cost on a CPU. Measured on
this project's 2-core machine (``benchmarks/bench_dip_iteration.py``,
``fast`` preset, 256x256, docs/benchmarks.md):

* idle machine: spinning waits (``ACTIVE``) 0.23-0.26 s per iteration,
  sleeping waits (``PASSIVE``) 0.36-0.42 s;
* one core busy with another process: ``ACTIVE`` 1.03 s, ``PASSIVE`` 0.38 s
  (a spinning thread that shares its core with another process holds up
  every barrier).

So the policy is chosen once, when :mod:`dippas` is imported (it only takes
effect before torch or Numba start their OpenMP runtime): spinning when the
machine is idle, sleeping otherwise. A user's ``OMP_WAIT_POLICY`` always wins.
"""

from __future__ import annotations

import os

#: Spin only when the one-minute load average is below this (an idle machine).
IDLE_LOAD = 0.5


def default_wait_policy(load: float | None = None) -> str:
    """``'ACTIVE'`` on an idle machine, else ``'PASSIVE'``.

    Parameters
    ----------
    load : float, optional
        One-minute load average (default: the machine's; ``PASSIVE`` where
        the platform has none).
    """
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            return "PASSIVE"
    return "ACTIVE" if load < IDLE_LOAD else "PASSIVE"


def set_default_wait_policy() -> str:
    """Set ``OMP_WAIT_POLICY`` unless the user did; return the policy in force."""
    return os.environ.setdefault("OMP_WAIT_POLICY", default_wait_policy())
