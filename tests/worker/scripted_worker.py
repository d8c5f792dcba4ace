"""A real worker process with the scripted executor: ``python -m tests.worker.scripted_worker``.

Same entry point as ``python -m worker`` (settings from the environment, signal handling,
exit codes) — only the executor differs. Tests drive its runs through gates in Redis
(``SCRIPTED_REDIS_URL``, else ``REDIS_URL``: a test cutting the worker off Redis keeps its gates).
"""

from __future__ import annotations

import logging
import os
import sys

from tests.worker.scripted import ScriptedExecutor
from worker.main import run

if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    sys.exit(run(lambda settings, pool: ScriptedExecutor(
        os.environ.get("SCRIPTED_REDIS_URL", settings.redis_url))))
