import sys

from genspot.cli import main

sys.exit(main())
