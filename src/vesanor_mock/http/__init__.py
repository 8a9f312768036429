"""The thin HTTP edge (Starlette)."""
