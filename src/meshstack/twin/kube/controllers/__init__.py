"""The controllers a k3s server runs in its own process."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from meshstack.twin.kube.api import Api
from meshstack.twin.kube.controllers.base import Controller
from meshstack.twin.kube.controllers.endpoints import EndpointsController
from meshstack.twin.kube.controllers.gc import (
    GarbageCollector,
    NamespaceController,
    NodeLifecycleController,
)
from meshstack.twin.kube.controllers.scheduler import Scheduler
from meshstack.twin.kube.controllers.servicelb import ServiceLBController
from meshstack.twin.kube.controllers.workloads import (
    DaemonSetController,
    DeploymentController,
    ReplicaSetController,
)


@dataclass
class ControllerOptions:
    resync_interval: float = 2.0
    node_grace_period: float = 40.0
    servicelb: bool = True


def start_all(
    api: Api, stop: threading.Event, opts: ControllerOptions
) -> list[Controller]:
    r = opts.resync_interval
    ctrls: list[Controller] = [
        NamespaceController(api, stop, r),
        GarbageCollector(api, stop, r),
        NodeLifecycleController(api, stop, r, grace_period=opts.node_grace_period),
        DeploymentController(api, stop, r),
        ReplicaSetController(api, stop, r),
        DaemonSetController(api, stop, r),
        Scheduler(api, stop, r),
        EndpointsController(api, stop, r),
    ]
    if opts.servicelb:
        ctrls.append(ServiceLBController(api, stop, r))
    for c in ctrls:
        c.start()
    return ctrls
