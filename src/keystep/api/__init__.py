"""The JSON query API: the analyses over HTTP, each scoped to the project of the caller's read key."""
