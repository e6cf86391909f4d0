"""A server the tests start (Envoy, Prometheus): in a session of its own, stopped by its PID's
process group when the `with` block ends, also when starting it failed half-way or a test
failed."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable


class ServerProcess:
    process: subprocess.Popen | None = None

    def start(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def launch(self, args: list[str], stdout, stderr, wait_ready: Callable[[], None]) -> None:
        """Starts `args` and returns once `wait_ready` does; stops the process if it raises
        (also on Ctrl-C while waiting: `with` only stops what it finished entering)."""
        self.process = subprocess.Popen(args, stdout=stdout, stderr=stderr, start_new_session=True)
        try:
            wait_ready()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
