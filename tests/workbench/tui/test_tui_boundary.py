"""The TUI package is cheap to import: Textual loads only when the app runs."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_entry_point_does_not_load_textual() -> None:
    code = (
        "import sys, workbench.tui\n"
        "assert callable(workbench.tui.run)\n"
        "print('textual' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
