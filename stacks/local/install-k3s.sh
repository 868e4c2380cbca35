#!/bin/sh
# Install and start "k3s" on this node: the local stack's stand-in for get.k3s.io.
#
# Run over SSH by the cluster provider as
#     sh -s -- server|agent [k3s flags...]   install and start, return once running
#     sh -s -- kubeconfig                    print the admin kubeconfig (server)
#     sh -s -- killall                       stop k3s and every pod process (k3s-killall.sh)
#     sh -s -- uninstall                     killall, then remove k3s state (k3s-uninstall.sh)
# with the environment:
#     K3S_TWIN_PYTHON        the Python that has meshstack installed (required)
#     MESHSTACK_NODE_DIR     this node's directory; default $MESHSTACK_LOCAL_ROOT/nodes/$(hostname)
#     MESHSTACK_LOCAL_ROOT   the local stack's root (gives the node dir and Prometheus targets dir)
#     K3S_URL, K3S_TOKEN     as for get.k3s.io: the server to join and the join token
# Like get.k3s.io, a second install on a running node restarts it with the new flags.
set -eu

fail() {
    echo "install-k3s: $*" >&2
    exit 1
}

ROLE=${1:-}
[ -n "$ROLE" ] || fail "expected a sub-command (server, agent, kubeconfig, killall, uninstall); got none"
shift

PY=${K3S_TWIN_PYTHON:-}
[ -n "$PY" ] || fail "K3S_TWIN_PYTHON is not set: set it to the Python that has meshstack installed (profile: cluster.install.env)"
[ -x "$PY" ] || fail "K3S_TWIN_PYTHON=$PY is not an executable file on $(hostname)"

if [ -z "${MESHSTACK_NODE_DIR:-}" ]; then
    [ -n "${MESHSTACK_LOCAL_ROOT:-}" ] || fail "set MESHSTACK_NODE_DIR or MESHSTACK_LOCAL_ROOT (profile: cluster.install.env)"
    MESHSTACK_NODE_DIR="$MESHSTACK_LOCAL_ROOT/nodes/$(hostname)"
fi
export MESHSTACK_NODE_DIR
if [ -n "${MESHSTACK_LOCAL_ROOT:-}" ] && [ -z "${MESHSTACK_PROM_TARGETS_DIR:-}" ]; then
    export MESHSTACK_PROM_TARGETS_DIR="$MESHSTACK_LOCAL_ROOT/prometheus/targets"
fi
# inside the node's own namespace, kube-proxy may add ClusterIPs to its loopback
export MESHSTACK_TWIN_LOOPBACK_CLUSTER_IPS=${MESHSTACK_TWIN_LOOPBACK_CLUSTER_IPS:-1}

k3s() {
    "$PY" -m meshstack.twin.k3s "$@"
}

case "$ROLE" in
    server|agent)
        mkdir -p "$MESHSTACK_NODE_DIR"
        k3s killall >/dev/null
        echo "[INFO]  Starting k3s $ROLE on $(hostname) (node dir $MESHSTACK_NODE_DIR)"
        k3s "$ROLE" --daemon "$@"
        ;;
    kubeconfig)
        cat "$MESHSTACK_NODE_DIR/etc/rancher/k3s/k3s.yaml"
        ;;
    killall)
        k3s killall
        ;;
    uninstall)
        k3s uninstall
        ;;
    *)
        fail "unknown sub-command '$ROLE': expected server, agent, kubeconfig, killall or uninstall"
        ;;
esac
