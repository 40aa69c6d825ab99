"""The pilot: a standalone, standard-library-only script a CE runs on a bare worker node.

``dirac-pilot.py`` is shipped as a single file (the SiteDirector sends it with each pilot);
this package only makes it importable for tests and for the SiteDirector to find it.
"""

from pathlib import Path

PILOT_SCRIPT = Path(__file__).with_name("dirac_pilot.py")
