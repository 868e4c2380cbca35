"""`python -m meshstack.twin.linkerd`: the linkerd CLI twin.

A control-plane container (image ``cr.l5d.io/linkerd/controller`` and the viz
images) is started by the twin kubelet as ``python -m meshstack.twin.linkerd.controller
<component>``; everything else here is the CLI.
"""

import sys

from meshstack.twin.linkerd.cli import main

sys.exit(main())
