"""How OpenMP threads wait: spinning on an idle machine, sleeping on a busy one, the user's choice first."""

from __future__ import annotations

import os
import subprocess
import sys

from dippas.openmp_policy import IDLE_LOAD, _busy_cores, default_wait_policy


def test_policy_follows_the_busy_cores():
    assert default_wait_policy(0.0) == "ACTIVE"
    assert default_wait_policy(IDLE_LOAD - 0.01) == "ACTIVE"
    assert default_wait_policy(IDLE_LOAD) == "PASSIVE"
    assert default_wait_policy(1.7) == "PASSIVE"
    busy = _busy_cores(0.01)
    assert busy is None or 0.0 <= busy <= (os.cpu_count() or 1) + 1e-9


def test_a_users_setting_wins():
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    out = subprocess.run([sys.executable, "-c", "import dippas, os; print(os.environ['OMP_WAIT_POLICY'])"],
                         env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "PASSIVE"
