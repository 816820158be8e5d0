"""Helpers every test package shares: polling (`wait`), real processes
(`procs`) and a cuttable TCP proxy (`proxy`). Test packages import from
here, never from each other."""
