"""AWS discovery: accounts, regions and services into the same graph as the on-premises estate.

One module per service (``ec2``, ``elbv2``, ``autoscaling``, ``rds``, ``lambda_functions``, ``acm``,
``route53``, ``s3``, ``eks``), each with a ``get_*`` that only calls the API (paginators, through a
``calls.ScopeReader`` that records every call's failure) and a pure ``transform_*`` from those raw,
JSON-clean responses to ``records.Resource`` / ``records.Link`` (the shared observations ``CloudResource``
/ ``CloudLink``). ``to_batch`` makes one Batch per scope ``aws:<account>:<region>:<service>`` through
``discovery.observations.to_batch``; ``collector.AwsCollector`` is the scopes' collector (``read`` /
``transform`` / ``AWS_OUTCOMES`` / ``finish``) under the shared runner.

A scope is complete only when every one of its calls succeeded; only a complete scope ages what it
did not see, so a denied or throttled region never retires its good data (Cartography's #596/#2658).
"""
