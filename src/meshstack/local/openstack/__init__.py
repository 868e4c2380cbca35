"""The local cloud: a real OpenStack from Debian's packages on 127.0.0.1.

Component 1 of `meshstack local up`. Keystone, Glance, Placement, Nova (with a
compute driver whose servers are network namespaces running OpenSSH) and Neutron
(ML2 with a mechanism driver that binds every port), over a MariaDB and a
RabbitMQ of their own. Everything lives under ``<root>/openstack``; the cloud's
credentials are in ``<root>/clouds.yaml`` (cloud ``meshstack-local``).
"""

from meshstack.local.openstack.lifecycle import listens, start, status, stop
from meshstack.local.openstack.packages import install

__all__ = ["install", "listens", "start", "status", "stop"]
