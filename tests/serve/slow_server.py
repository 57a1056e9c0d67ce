"""`nmtkit` with every translation slowed down by NMTKIT_TEST_DELAY seconds, so that a test can
be sure a request is in flight (e.g. when SIGTERM arrives). Test-only: nmtkit never imports it.

    NMTKIT_TEST_DELAY=1.0 python -m tests.serve.slow_server serve -m RUN --port P
"""

from __future__ import annotations

import os
import time
from typing import Any

from nmtkit.cli import main
from nmtkit.translate import Translator


def slow_down(delay: float) -> None:
    real = Translator.translate

    def translate(self: Translator, *args: Any, **kwargs: Any) -> Any:
        time.sleep(delay)
        return real(self, *args, **kwargs)

    Translator.translate = translate  # type: ignore[method-assign]


if __name__ == "__main__":
    slow_down(float(os.environ.get("NMTKIT_TEST_DELAY", "0")))
    main()
