"""Allow ``python -m minigan``."""
import sys

from .cli import main

sys.exit(main())
