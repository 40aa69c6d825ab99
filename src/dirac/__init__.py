"""dirac-seed: a DIRAC-style grid interware.

The top-level package re-exports the return-value helpers every component uses, as in
DIRAC (``from dirac import S_OK, S_ERROR``). Nothing else happens at import time.
"""

from dirac.Core.Utilities.ReturnValues import S_ERROR, S_OK, returnValueOrRaise

__version__ = "0.1.0"
__all__ = ["S_OK", "S_ERROR", "returnValueOrRaise", "__version__"]
