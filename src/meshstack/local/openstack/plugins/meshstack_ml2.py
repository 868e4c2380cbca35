"""An ML2 mechanism driver that binds every port, for a cloud with no agents.

Loaded by neutron-server (the system python), not by meshstack: it imports only
neutron-lib. The local cloud has no Open vSwitch or Linux-bridge agent, so no
stock driver can bind a port; this one binds the first segment it is offered as a
``tap`` port and marks the port ACTIVE. The namespace-backed nova driver plugs the
server into the cloud bridge itself.
"""

from neutron_lib import constants
from neutron_lib.api.definitions import portbindings
from neutron_lib.plugins.ml2 import api


class BindEveryPortDriver(api.MechanismDriver):
    """Bind every port to its first segment, with no agent behind it."""

    def initialize(self):
        pass

    def bind_port(self, context):
        for segment in context.segments_to_bind:
            context.set_binding(
                segment[api.ID],
                portbindings.VIF_TYPE_TAP,
                {portbindings.CAP_PORT_FILTER: False},
                status=constants.PORT_STATUS_ACTIVE,
            )
            return
