"""The cloud layer on OpenStack, through openstacksdk (work in progress)."""

from __future__ import annotations

from pathlib import Path

import openstack.config
import openstack.connection


def connect(clouds_yaml: Path, cloud: str) -> openstack.connection.Connection:
    """A connection built only from this clouds.yaml: no home dir, /etc or OS_*."""
    cfg = openstack.config.OpenStackConfig(
        config_files=[str(clouds_yaml)],
        vendor_files=[],
        secure_files=[],
        load_envvars=False,
    )
    region = cfg.get_one(cloud=cloud)
    return openstack.connection.Connection(config=region)
