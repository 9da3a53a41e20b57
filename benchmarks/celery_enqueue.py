"""Sends the Celery peer's tasks, from the Celery venv (the harness's venv has no Celery).

``python -m benchmarks.celery_enqueue SPEC.json``: prints ``ready``, then for each line on
stdin: ``warmup`` sends one warm-up task, ``go`` sends one task per input, and exits.
"""

from __future__ import annotations

import json
import sys

from benchmarks.celery_app import process

WARMUP_URI = "data:,warm-up"


def main() -> None:
    with open(sys.argv[1], "rb") as f:
        spec = json.load(f)
    queue, key, transform = spec["queue"], spec["results_key"], spec["transform"]
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() == "warmup":
            process.apply_async((spec["warmup_key"], "trivial", 0, WARMUP_URI), queue=queue)
            print("warm-up sent", flush=True)
        elif line.strip() == "go":
            for index, uri in enumerate(spec["uris"]):
                process.apply_async((key, transform, index, uri), queue=queue)
            print(f"sent {len(spec['uris'])}", flush=True)
            return


if __name__ == "__main__":
    main()
