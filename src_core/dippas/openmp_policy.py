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
machine is idle, sleeping otherwise. Idle is measured on the spot, over
:data:`SAMPLE_SECONDS` of ``/proc/stat`` (the load average lags a minute
behind: right after an installation it still says busy); where there is no
``/proc/stat``, the one-minute load average decides. A user's
``OMP_WAIT_POLICY`` always wins.
"""

from __future__ import annotations

import os
import time

#: Spin only when fewer cores than this are busy (an idle machine).
IDLE_LOAD = 0.5

#: How long the CPU use is sampled at import.
SAMPLE_SECONDS = 0.05


def _busy_cores(seconds: float = SAMPLE_SECONDS) -> float | None:
    """Cores busy over the next ``seconds``, from ``/proc/stat`` (None without it)."""
    def sample() -> tuple[int, int]:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        return sum(fields), fields[3] + (fields[4] if len(fields) > 4 else 0)  # total, idle+iowait

    try:
        t0, i0 = sample()
        time.sleep(seconds)
        t1, i1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    if t1 <= t0:
        return None
    return (1.0 - (i1 - i0) / (t1 - t0)) * (os.cpu_count() or 1)


def default_wait_policy(load: float | None = None) -> str:
    """``'ACTIVE'`` on an idle machine, else ``'PASSIVE'``.

    Parameters
    ----------
    load : float, optional
        Busy cores (default: measured now, else the one-minute load average;
        ``PASSIVE`` where neither exists).
    """
    if load is None:
        load = _busy_cores()
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            return "PASSIVE"
    return "ACTIVE" if load < IDLE_LOAD else "PASSIVE"


def set_default_wait_policy() -> str:
    """Set ``OMP_WAIT_POLICY`` unless the user did; return the policy in force.

    The machine is only sampled when the variable is unset (a user's setting
    costs no measurement at import).
    """
    if "OMP_WAIT_POLICY" not in os.environ:
        os.environ["OMP_WAIT_POLICY"] = default_wait_policy()
    return os.environ["OMP_WAIT_POLICY"]
