"""Plain-Python domain: state, contracts, policy; no HTTP, YAML or schema libraries."""
