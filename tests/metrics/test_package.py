"""``from pipesync.metrics import run_metrics`` works, and importing the package alone loads no numpy."""

from __future__ import annotations

import subprocess
import sys


def test_the_documented_names_are_importable_from_the_package():
    from pipesync.metrics import Period, end_of_day, run_metrics
    from pipesync.metrics.periods import Period as PeriodFromModule
    from pipesync.metrics.run import run_metrics as from_module

    assert run_metrics is from_module and Period is PeriodFromModule and callable(end_of_day)


def test_the_package_loads_its_modules_only_when_a_name_is_used():
    code = (
        "import sys, pipesync.metrics, pipesync.metrics.definitions\n"
        "assert 'numpy' not in sys.modules and 'pipesync.metrics.run' not in sys.modules\n"
        "from pipesync.metrics import run_metrics\n"
        "assert 'numpy' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
