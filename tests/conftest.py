"""Suite-wide: the console's data folder (the journal databases) goes to a temporary folder.

Commands run in-process (``main([...])``) and in subprocesses keep a journal by default; without
this, a test run would write into the user's own data folder.
"""

from __future__ import annotations

import os
import tempfile


def pytest_configure(config: object) -> None:
    if "AISC_CONSOLE_DATA_DIR" not in os.environ:
        os.environ["AISC_CONSOLE_DATA_DIR"] = tempfile.mkdtemp(prefix="aisc-console-data-")


def pytest_unconfigure(config: object) -> None:
    folder = os.environ.get("AISC_CONSOLE_DATA_DIR", "")
    if os.path.basename(folder).startswith("aisc-console-data-"):
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
