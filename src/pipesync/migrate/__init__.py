"""``pipesync migrate``: one system's deals copied into another through the shared pipeline.

``plan`` makes the migration (dry run: nothing is sent), ``run`` executes it on the push-back
engine (batches, journal before send, exactly-once creates, ``id_map``), ``reconcile`` compares
both sides. See docs/migration.md.
"""
