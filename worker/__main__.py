"""`python -m worker` runs a worker."""

import sys

from worker.process.start import main

sys.exit(main())
