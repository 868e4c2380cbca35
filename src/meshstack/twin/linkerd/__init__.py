"""Linkerd twin: the `linkerd` CLI and the control-plane processes the kubelet runs."""
