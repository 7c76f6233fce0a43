"""`python -m portrait_studio ...`"""

from .cli import main

raise SystemExit(main())
