"""`python -m worker` runs a worker."""

import sys

from worker.start import main

sys.exit(main())
