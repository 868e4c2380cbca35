"""neutron's API application for uwsgi, with its database mappers set up at load.

Loaded by uwsgi (the system python), not by meshstack. neutron lists ports through
``Port.port_forwardings``, a relationship SQLAlchemy adds only when the mappers are
configured, which otherwise happens on a process's first query: a fresh API
process whose first request lists ports answers HTTP 500 (AttributeError). With
more than one API process, any of them can be fresh; configuring the mappers when
the application loads closes that window.
"""

# Imported first: it patches the process with eventlet, as neutron-api does.
from neutron.cmd.eventlet.server import main_api_eventlet
from neutron.db.models import port_forwarding  # noqa: F401 (owns the relationship)
from sqlalchemy import orm

application = main_api_eventlet()
orm.configure_mappers()
