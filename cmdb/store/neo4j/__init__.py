"""The Neo4j store: the same contract as the SQLite store, for estates that outgrow one box.

A package of small modules, none importing another's private names, no circle:

* ``layout``: what the graph holds (nodes, relationships, properties), the layout version and the
  fixed Cypher fragments;
* ``codecs``: JSON, search tokens, sightings, provenance and history packs, encoded and decoded;
* ``connection``: the driver, errors translated into ours, schema set-up (``Neo4jConnection``);
* ``reader``: the batch reader a plan uses inside a transaction (``TxReader``);
* ``writer``: change sets built into rows and written (``Neo4jWriter``, ``WriteProgram``);
* ``queries``: reads, search, traversal, history (``Neo4jQueries``);
* ``restore``: dump, restore, clear (``Neo4jRestore``);
* ``pipeline``: the writer process that writes batch N while batch N+1 is planned;
* ``store``: ``Neo4jStore``, the parts assembled.
"""

from cmdb.store.neo4j.connection import read_password
from cmdb.store.neo4j.store import Neo4jStore

__all__ = ["Neo4jStore", "read_password"]
