"""nova-compute, with meshstack's namespace driver loadable by its config name.

nova loads ``compute_driver = X.Y`` only as ``nova.virt.X.Y``; a driver outside
nova's own tree has no such name. This launcher imports nova's entry point first
(which applies eventlet's monkey patching before anything else loads), then
registers the driver module as ``nova.virt.meshstack_nova_driver`` and runs the
same ``main`` as /usr/bin/nova-compute.
"""

import sys

import meshstack_nova_driver
from nova.cmd.compute import main

sys.modules["nova.virt.meshstack_nova_driver"] = meshstack_nova_driver

if __name__ == "__main__":
    sys.exit(main())
