"""Importers: mapped spreadsheets (CSV/JSON/YAML), nmap XML, ServiceNow and NetBox, all through ``cmdb.ingest``."""
