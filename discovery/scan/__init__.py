"""Network scan discovery (``cmdb scan``): TCP connect probes, banners, served TLS chains, reverse DNS.

``probe`` does the I/O under shared rate and concurrency limits, ``tls`` fetches and describes
certificates, ``services`` guesses what answers, ``transform`` turns one target's raw result into
a Batch, ``collector`` plugs it into the discovery runner and ``cli`` adds the command.
"""
