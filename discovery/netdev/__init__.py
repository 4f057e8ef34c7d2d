"""Network device discovery over SSH (netmiko): ``cmdb discover devices``.

collector (I/O: host-key check, netmiko session, show commands) -> platforms (TextFSM parsing
into records) -> transform (pure: records -> Batch) -> ingest. Names follow ``names``: interfaces
in their long form, devices by their short hostname, so SNMP, SSH and CDP/LLDP views of one port
meet as one Interface.
"""
