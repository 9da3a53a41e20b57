"""`python -m worker` runs a worker."""

import sys

from worker.main import main

sys.exit(main())
