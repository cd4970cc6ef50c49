"""secretsd agent: a caching sidecar that is a drop-in AWS Secrets Manager Agent.

Layers, each replaceable: ``config`` (typed settings, parsed once), ``cache`` (freshness and
single-flight, no I/O of its own), ``backend`` (botocore in a thread pool, errors mapped to the
agent's responses), ``http`` (the asyncio protocol on the hot path) and ``run`` (wiring,
start-up checks, signals). ``cli`` is the ``secretsd agent`` command.
"""
