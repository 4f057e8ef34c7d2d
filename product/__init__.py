"""The product: the core (``cmdb``) and its wings (discovery, impact, ...) assembled in one place."""
