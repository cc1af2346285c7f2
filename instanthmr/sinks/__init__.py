"""Result sinks: the Rerun viewer, JSONL/NPZ/CSV exporters and the annotated video writer.

Import the sink you need (``instanthmr.sinks.exporters``, ``instanthmr.sinks.video``,
``instanthmr.sinks.rerun_sink``); this package imports none of them, so writing a CSV never
imports rerun.
"""
