"""``infogauss.bench._env``: benchmark logging that is never silent, progress switches."""

from __future__ import annotations

import subprocess
import sys


def test_setup_logging_shows_info_under_a_warning_root():
    """``infogauss bench`` configures the root at WARNING; a benchmark's INFO must show."""
    code = (
        "import logging\n"
        "logging.basicConfig(level=logging.WARNING, format='%(name)s: %(message)s')\n"
        "from infogauss.bench import _env\n"
        "log = _env.setup_logging('x')\n"
        "log.info('benchmark line')\n"
        "logging.getLogger('infogauss.contrastive.train').info('library line')\n"
        "logging.getLogger('other').info('hidden line')\n"
        "print(_env.show_progress(False), _env.show_progress(True))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "benchmarks.x: benchmark line" in out.stderr
    assert "infogauss.contrastive.train: library line" in out.stderr
    assert "hidden line" not in out.stderr
    assert out.stdout.split() == ["False", "False"]  # stderr is a pipe here: no bars


def test_setup_logging_as_a_module_logs_to_stderr():
    code = (
        "import logging\n"
        "from infogauss.bench import _env\n"
        "_env.setup_logging('y', library=False).info('hello')\n"
        "logging.getLogger('infogauss.contrastive.train').info('epoch line')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "INFO benchmarks.y: hello" in out.stderr and "epoch line" not in out.stderr
    assert out.stdout == ""
