"""Push-back: the consolidated truth written back to the CRMs through one loop,
plan → review → apply → journal → undo (docs/pushback.md).

``make_plan`` (planner), ``apply_plan`` (apply), ``undo_run`` (undo) are the library calls
behind ``pipesync plan``, ``apply`` and ``undo``.
"""
