"""A File Catalog (logic and database) on an empty database, SQLite then MariaDB."""

from __future__ import annotations

import pytest

from dirac.DataManagementSystem.DB.FileCatalogDB import FileCatalogDB
from dirac.DataManagementSystem.Logic.FileCatalog import FileCatalog

GROUPS = {"alice": ["dirac_user", "dirac_prod"], "bob": ["dirac_user"], "eve": ["dirac_guest"]}


@pytest.fixture
def fc(db_url: str) -> FileCatalog:
    """A catalog whose VO roots belong to admin:dirac_admin, with /dirac created."""
    catalog = FileCatalog(FileCatalogDB(db_url), voOwner=lambda vo: ("admin", "dirac_admin"),
                          userGroups=lambda user: GROUPS.get(user, []))
    catalog.ensureVORoot("dirac")
    return catalog
