import sys

from semantic_catalog.cli.main import main

sys.exit(main())
