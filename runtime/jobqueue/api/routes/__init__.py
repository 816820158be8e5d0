"""HTTP routes, one module per area: auth, jobs, operations."""
