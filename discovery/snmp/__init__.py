"""SNMP discovery (``cmdb discover snmp``): v2c and v3 agents into the CMDB.

``client`` does the I/O (our own BER codec for v2c in ``ber``, pysnmp for v3), ``transform`` turns
what an agent answered into a Batch (``vendors`` names the platform, ``oids`` lists what is read),
``collector`` ties them to the discovery runner, ``cli`` adds the command; ``snmprec`` reads and
writes the recorded walks the tests and simulated agents share.
"""
