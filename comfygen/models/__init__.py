"""Model files a project's workflows need: the manifest, the download cache, pulls and status."""
