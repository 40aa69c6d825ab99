"""Computing Elements: submit pilots to a site (SiteDirector) and run payloads in a pilot (JobAgent)."""
