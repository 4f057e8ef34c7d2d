"""The ``cmdb`` command: the core's commands plus every wing's sub-app, assembled here and only here.

Why a composition module rather than entry points: the list of what the product contains is one
explicit file to read (and to grep when a command is missing), registration order is the order
written here, a new sub-app needs no reinstall (entry points are only re-read after ``pip install``),
and a missing or broken wing fails at import with a traceback that names it instead of a silently
absent command. The core package ``cmdb/`` never imports this module nor any wing; the wings import
the core. Later the API's routers and the scheduler's jobs are registered beside these lines.

Run it as ``cmdb ...`` (the console script) or ``python -m product.cli ...``.
"""

from __future__ import annotations

from api.cli import register as register_serve
from cmdb.cli import app, ci_app, conflicts_app, rel_app, run_guarded
from cmdb.cli_manual import register as register_manual
from cmdb.config_cli import config_app
from cmdb.health_cli import health_command
from cmdb.merge_cli import register as register_merge
from cmdb.retention_cli import prune_command
from cmdb.schema_cli import schema_app
from cmdb.tokens_cli import tokens_app
from discovery.aws import cli as aws_cli
from discovery.cli import discover_app, runs_app
from discovery.netdev import cli as netdev_cli
from discovery.scan import cli as scan_cli
from discovery.snmp import cli as snmp_cli
from discovery.ssh import cli as ssh_cli
from impact.automation_cli import register as register_automation
from impact.cli import impact_app
from impact.licences_cli import licences_command
from impact.tasks_cli import tasks_app
from importers.cli import register as register_import
from product.config_sections import register as register_config_sections

app.add_typer(impact_app, name="impact")
app.add_typer(runs_app, name="runs")
app.add_typer(discover_app, name="discover")
for method in (scan_cli, snmp_cli, ssh_cli, netdev_cli, aws_cli):  # ``cmdb scan``, ``cmdb discover ...``
    method.register(app, discover_app)
app.add_typer(tasks_app, name="tasks")
app.command("licences")(licences_command)
register_automation(app)  # expiry, outbox, incidents, scheduler
register_import(app)  # cmdb import
register_serve(app)  # cmdb serve: the HTTP API
app.add_typer(tokens_app, name="tokens")
register_manual(ci_app, rel_app)  # cmdb ci set / ci retire / rel retire
app.add_typer(schema_app, name="schema")
app.add_typer(config_app, name="config")
register_config_sections()  # the wings' sections of the configuration file, for cmdb config check/show
app.command("health")(health_command)
register_merge(ci_app, conflicts_app)  # cmdb ci merge, cmdb conflicts resolve
app.command("prune")(prune_command)  # retention: old jobs, keys, messages, snapshots, run records


def main() -> None:
    run_guarded(app)


if __name__ == "__main__":
    main()
