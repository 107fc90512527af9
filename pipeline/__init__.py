"""Entry points: the `ganstream` CLI and (later) Beam jobs and job specs."""
