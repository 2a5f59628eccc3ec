"""Alembic revisions of the warehouse schema, one file each under ``versions/`` (see ``warehouse/version.py``)."""
