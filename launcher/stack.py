"""``make stack``: one gateway and ``WORKERS`` worker processes on the real servers, stopped
together on Ctrl-C or SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time


def main() -> None:
    workers = int(os.environ.get("WORKERS", "2"))
    commands = [[sys.executable, "-m", "gateway"]] + [
        [sys.executable, "-m", "worker"] for _ in range(workers)
    ]
    processes = [subprocess.Popen(command) for command in commands]

    def stop(*_: object) -> None:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        while all(process.poll() is None for process in processes):
            time.sleep(0.2)
    finally:
        stop()
        for process in processes:
            process.wait()


if __name__ == "__main__":
    main()
