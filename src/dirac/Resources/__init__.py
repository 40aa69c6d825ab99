"""Resources: the computing, storage, catalog and identity-provider plug-ins a site offers."""
