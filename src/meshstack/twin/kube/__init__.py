"""A twin of the Kubernetes API server and of k3s, for the local stack.

Nothing Kubernetes can run on the machines the local stack is built on, so this
package serves the real Kubernetes REST and watch protocol over HTTPS, and
behaves as a k3s cluster does, for clients that use the official ``kubernetes``
Python client (the harness, the MetalLB and Linkerd twins).

How it maps to k3s:

- ``python -m meshstack.twin.k3s server`` is ``k3s server``: the API server
  (:mod:`.apiserver`, :mod:`.server`, :mod:`.api`, :mod:`.store`), the controllers
  a k3s server runs (:mod:`.controllers`: deployments, daemonsets, scheduler,
  endpoints, garbage collection, namespaces, k3s's servicelb unless
  ``--disable servicelb``), the node-join endpoints with k3s's token and node
  password rules (:mod:`.join`), and a kubelet and kube-proxy for its own node.
- ``python -m meshstack.twin.k3s agent`` is ``k3s agent``: it joins with the
  token, registers its Node and runs the kubelet (:mod:`.kubelet`) and the
  userspace kube-proxy (:mod:`.kubeproxy`).
- Admission webhooks are called with real AdmissionReview v1 requests over HTTPS
  (:mod:`.admission`), honouring ``failurePolicy``.

Where things are: :mod:`.resources` (served types, CRD registry),
:mod:`.discovery`, :mod:`.selectors`, :mod:`.patch`, :mod:`.errors`,
:mod:`.defaults` (what the API server fills in), :mod:`.tls` and
:mod:`.kubeconfig`; the node side is :mod:`.node` (name, address, password,
join), :mod:`.nodeinfo` (the Node object, heartbeats), :mod:`.podrun` and
:mod:`.podstatus` (a pod's env, probes and status), :mod:`.runtime` (processes,
ports), :mod:`.logserver`, :mod:`.forward`; k3s's own parts are
:mod:`.k3sargs` (its command line), :mod:`.system` (packaged workloads) and
:mod:`.sysimages` (their stand-in images, mapped in ``images/k3s.yaml``).

What it simplifies (each a deliberate, documented difference):

- Containers are processes: an image maps to a Python module through
  ``meshstack/twin/images/*.yaml`` (:mod:`.images`); an unmapped image fails as
  ErrImagePull does.
- Pods share their node's address: a pod's IP is its node's InternalIP and each
  containerPort is mapped to a distinct free port on the node (hostPort when one
  is declared); the mapped port is what pod status and Endpoints publish.
- No cluster DNS: the kubelet rewrites ``<svc>.<ns>[.svc.cluster.local]:<port>``
  and ``<svc>:<port>`` in container env values to ``<ClusterIP>:<port>``, and the
  kube-proxy binds ClusterIPs on the node's loopback and forwards to endpoints.
- Authentication is bearer tokens (the admin kubeconfig's token, a token per
  joined node) instead of client certificates; every user may do anything
  (SelfSubjectAccessReviews are allowed), as k3s's admin kubeconfig may.
- Pods are deleted at once (no graceful termination phase); the kubelet stops
  their processes when it sees the deletion.
- One store in memory with a JSON snapshot in the server's data dir instead of
  kine/etcd; watches resume within the last few thousand changes.
- Not there: HA servers (``--cluster-init``), flannel (pods share the node's
  address), cluster DNS, the ``scale`` subresource's Scale object, server-side
  apply's field ownership (an apply patch is a merge patch, and does not create),
  Event expiry, graceful pod termination, liveness and exec probes, UDP services.
"""
