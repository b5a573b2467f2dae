"""Per-kind table columns and rows, ported from Kubernetes' ``pkg/printers/internalversion``
(``printDeployment``, ``printNode``, ``printService``, ``printEvent`` …; pods live in
``pods.py``), so ``kubectl get`` shows the columns people know. Caller: ``tables.py``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Callable

from controlplane.apiserver.printing.format import (
    AGE_DESC, NAME_DESC, NONE, Printer, col, human_duration, parse_time, since,
)
from controlplane.apiserver.printing.format import containers_images as _containers_images
from controlplane.apiserver.printing.format import labels_str as _labels_str
from controlplane.apiserver.printing.format import meta as _m
from controlplane.apiserver.printing.format import selector_str as _selector_str
from controlplane.apiserver.printing.format import sub as _s
from controlplane.apiserver.printing.autoscaling import apiservice_row, hpa_row
from controlplane.apiserver.printing.pods import POD_COLUMNS, pod_row
from controlplane.apiserver.printing.storage import (
    csidriver_row, csinode_row, csistoragecapacity_row, pv_row, pvc_row, storageclass_row, volumeattachment_row,
)

Obj = dict[str, Any]

# ---------------------------------------------------------------- workloads

_CONTAINERS = col("Containers", priority=1, description="Names of each container in the template.")
_IMAGES = col("Images", priority=1, description="Images referenced by each container in the template.")
_SELECTOR = col("Selector", priority=1, description="Label selector for pods.")
_AGE = col("Age", description=AGE_DESC)
_NAME = col("Name", format="name", description=NAME_DESC)


def _deploy_row(o: Obj, now: datetime) -> list[Any]:
    spec, st = _s(o), _s(o, "status")
    return [_m(o).get("name", ""), f"{st.get('readyReplicas', 0)}/{spec.get('replicas', 0)}",
            st.get("updatedReplicas", 0), st.get("availableReplicas", 0),
            since(_m(o).get("creationTimestamp"), now), *_containers_images(o),
            _selector_str(spec.get("selector"))]


def _rs_row(o: Obj, now: datetime) -> list[Any]:
    spec, st = _s(o), _s(o, "status")
    return [_m(o).get("name", ""), spec.get("replicas", 0), st.get("replicas", 0),
            st.get("readyReplicas", 0), since(_m(o).get("creationTimestamp"), now),
            *_containers_images(o), _selector_str(spec.get("selector"))]


def _sts_row(o: Obj, now: datetime) -> list[Any]:
    spec, st = _s(o), _s(o, "status")
    return [_m(o).get("name", ""), f"{st.get('readyReplicas', 0)}/{spec.get('replicas', 0)}",
            since(_m(o).get("creationTimestamp"), now), *_containers_images(o)]


def _ds_row(o: Obj, now: datetime) -> list[Any]:
    spec, st = _s(o), _s(o, "status")
    node_sel = _s(_s(spec, "template"), "spec").get("nodeSelector")
    return [_m(o).get("name", ""), st.get("desiredNumberScheduled", 0),
            st.get("currentNumberScheduled", 0), st.get("numberReady", 0),
            st.get("updatedNumberScheduled", 0), st.get("numberAvailable", 0),
            _labels_str(node_sel), since(_m(o).get("creationTimestamp"), now),
            *_containers_images(o), _selector_str(spec.get("selector"))]


def _rc_row(o: Obj, now: datetime) -> list[Any]:
    spec, st = _s(o), _s(o, "status")
    return [_m(o).get("name", ""), spec.get("replicas", 0), st.get("replicas", 0),
            st.get("readyReplicas", 0), since(_m(o).get("creationTimestamp"), now),
            *_containers_images(o), _labels_str(spec.get("selector"))]


def _bool_ptr(value: Any) -> str:
    """kubectl's ``printBoolPtr``."""
    if value is None:
        return "<unset>"
    return "True" if value else "False"


def _cronjob_row(o: Obj, now: datetime) -> list[Any]:
    spec, st = _s(o), _s(o, "status")
    last = st.get("lastScheduleTime")
    job_spec = _s(_s(spec, "jobTemplate"))
    return [_m(o).get("name", ""), spec.get("schedule", ""),
            spec["timeZone"] if spec.get("timeZone") is not None else NONE, _bool_ptr(spec.get("suspend")),
            len(st.get("active") or []), since(last, now) if last else NONE,
            since(_m(o).get("creationTimestamp"), now), *_containers_images({"spec": job_spec}),
            _selector_str(job_spec.get("selector"))]


def _job_status(o: Obj) -> str:
    """``printJob``'s STATUS: Complete, Failed, Terminating, Suspended, FailureTarget,
    SuccessCriteriaMet, else Running."""
    conds = {c.get("type"): c.get("status") for c in _s(o, "status").get("conditions") or []}
    for t in ("Complete", "Failed"):
        if conds.get(t) == "True":
            return t
    if _m(o).get("deletionTimestamp"):
        return "Terminating"
    for t in ("Suspended", "FailureTarget", "SuccessCriteriaMet"):
        if conds.get(t) == "True":
            return t
    return "Running"


def _job_row(o: Obj, now: datetime) -> list[Any]:
    spec, st = _s(o), _s(o, "status")
    succeeded = st.get("succeeded", 0)
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{spec['completions']}"
    elif (spec.get("parallelism") or 0) > 1:
        completions = f"{succeeded}/1 of {spec['parallelism']}"
    else:
        completions = f"{succeeded}/1"
    start, end = parse_time(st.get("startTime")), parse_time(st.get("completionTime"))
    duration = "" if not start else human_duration((end or now) - start)
    return [_m(o).get("name", ""), _job_status(o), completions, duration,
            since(_m(o).get("creationTimestamp"), now), *_containers_images(o),
            _selector_str(spec.get("selector"))]


# ---------------------------------------------------------------- core


def _node_row(o: Obj, now: datetime) -> list[Any]:
    spec, st = _s(o), _s(o, "status")
    states = [c.get("type") if c.get("status") == "True" else "Not" + str(c.get("type"))
              for c in st.get("conditions") or [] if c.get("type") == "Ready"]
    if not states:
        states = ["Unknown"]
    if spec.get("unschedulable"):
        states.append("SchedulingDisabled")
    roles = sorted({k.split("/", 1)[1] for k in (_m(o).get("labels") or {})
                    if k.startswith("node-role.kubernetes.io/") and k.split("/", 1)[1]}
                   | ({(_m(o).get("labels") or {})["kubernetes.io/role"]}
                      if (_m(o).get("labels") or {}).get("kubernetes.io/role") else set()))
    addrs = st.get("addresses") or []

    def addr(t: str) -> str:
        return next((a.get("address") for a in addrs if a.get("type") == t), NONE) or NONE

    info = st.get("nodeInfo") or {}
    return [_m(o).get("name", ""), ",".join(states), ",".join(roles) or NONE,
            since(_m(o).get("creationTimestamp"), now), info.get("kubeletVersion", ""),
            addr("InternalIP"), addr("ExternalIP"), info.get("osImage") or "<unknown>",
            info.get("kernelVersion") or "<unknown>", info.get("containerRuntimeVersion") or "<unknown>"]


def _svc_row(o: Obj, now: datetime) -> list[Any]:
    spec = _s(o)
    stype = spec.get("type", "ClusterIP")
    external_ips = list(spec.get("externalIPs") or [])
    if stype == "ExternalName":
        ext = spec.get("externalName") or NONE
    elif stype == "LoadBalancer":
        ingress = [i.get("ip") or i.get("hostname") for i in
                   (_s(_s(o, "status"), "loadBalancer").get("ingress") or [])]
        ips = [x for x in ingress if x] + external_ips
        ext = ",".join(ips) if ips else "<pending>"
    else:
        ext = ",".join(external_ips) if external_ips else NONE
    ports = []
    for p in spec.get("ports") or []:
        s = f"{p.get('port')}"
        if p.get("nodePort"):
            s += f":{p['nodePort']}"
        ports.append(f"{s}/{p.get('protocol', 'TCP')}")
    cluster_ip = spec.get("clusterIP") or NONE
    return [_m(o).get("name", ""), stype, cluster_ip, ext, ",".join(ports) or NONE,
            since(_m(o).get("creationTimestamp"), now), _labels_str(spec.get("selector"))]


def _endpoints_row(o: Obj, now: datetime) -> list[Any]:
    items: list[str] = []
    count = 0
    for ss in o.get("subsets") or []:
        addrs = ss.get("addresses") or []
        ports = ss.get("ports") or []
        for a in addrs:
            if ports:
                for p in ports:
                    count += 1
                    if len(items) < 3:
                        items.append(f"{a.get('ip')}:{p.get('port')}")
            else:
                count += 1
                if len(items) < 3:
                    items.append(str(a.get("ip")))
    text = ",".join(items) if items else NONE
    if count > 3:
        text += f" + {count - 3} more..."
    return [_m(o).get("name", ""), text, since(_m(o).get("creationTimestamp"), now)]


def _endpointslice_row(o: Obj, now: datetime) -> list[Any]:
    ports = [str(p["port"]) if p.get("port") is not None else "<unset>" for p in o.get("ports") or []]
    addrs = [a for e in o.get("endpoints") or [] for a in (e.get("addresses") or [])]
    text = ",".join(addrs[:3]) if addrs else "<unset>"
    if len(addrs) > 3:
        text += f" + {len(addrs) - 3} more..."
    return [_m(o).get("name", ""), o.get("addressType", ""), ",".join(ports) or "<unset>", text,
            since(_m(o).get("creationTimestamp"), now)]


def _netpol_row(o: Obj, now: datetime) -> list[Any]:
    sel = _s(o).get("podSelector") or {}
    parts = [f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or {}).items())]
    for e in sel.get("matchExpressions") or []:
        vals = ",".join(e.get("values") or [])
        op = e.get("operator", "")
        parts.append({"In": f"{e.get('key')} in ({vals})", "NotIn": f"{e.get('key')} notin ({vals})",
                      "Exists": str(e.get("key")), "DoesNotExist": f"!{e.get('key')}"}.get(op, str(e.get("key"))))
    return [_m(o).get("name", ""), ",".join(parts) or NONE, since(_m(o).get("creationTimestamp"), now)]


def _event_row(o: Obj, now: datetime) -> list[Any]:
    inv = o.get("involvedObject") or o.get("regarding") or {}
    series = o.get("series") or {}
    last = (series.get("lastObservedTime") or o.get("lastTimestamp") or o.get("eventTime")
            or o.get("deprecatedLastTimestamp") or _m(o).get("creationTimestamp"))
    first = o.get("firstTimestamp") or o.get("deprecatedFirstTimestamp") or o.get("eventTime") or last
    src = o.get("source") or {}
    comp = src.get("component") or o.get("reportingController") or o.get("reportingComponent") or ""
    host = src.get("host") or o.get("reportingInstance") or ""
    source = f"{comp}, {host}" if host else comp
    count = series.get("count") or o.get("count") or o.get("deprecatedCount") or 1
    return [since(last, now) if last else "<unknown>", o.get("type", ""), o.get("reason", ""),
            f"{str(inv.get('kind', '')).lower()}/{inv.get('name', '')}", inv.get("fieldPath", ""),
            source, str(o.get("message") or o.get("note") or "").strip(),
            since(first, now) if first else "<unknown>", str(count), _m(o).get("name", "")]


def _decision_row(o: Obj, now: datetime) -> list[Any]:
    chosen = next((c for c in o.get("candidates") or [] if isinstance(c, dict) and c.get("chosen")), {})
    score = chosen.get("score")
    return [_m(o).get("name", ""), (o.get("pod") or {}).get("name", ""), o.get("profile", ""), o.get("result", ""),
            o.get("node") or "<none>", (o.get("nodes") or {}).get("feasible", 0),
            score if score is not None else "<none>", since(_m(o).get("creationTimestamp"), now),
            o.get("message", "")]


def _ingress_row(o: Obj, now: datetime) -> list[Any]:
    """kubectl's Ingress columns: the class, the rules' hosts (``*`` for none), the load
    balancer's addresses, ``80`` or ``80, 443`` with TLS."""
    spec = _s(o)
    hosts = [r.get("host") for r in spec.get("rules") or [] if isinstance(r, dict) and r.get("host")]
    lbs = ((_s(o, "status").get("loadBalancer") or {}).get("ingress")) or []
    addr = ",".join(x.get("ip") or x.get("hostname") or "" for x in lbs if isinstance(x, dict))
    return [_m(o).get("name", ""), spec.get("ingressClassName") or "<none>", ",".join(hosts) or "*", addr,
            "80, 443" if spec.get("tls") else "80", since(_m(o).get("creationTimestamp"), now)]


def _ingressclass_row(o: Obj, now: datetime) -> list[Any]:
    spec = _s(o)
    p = spec.get("parameters")
    params = f"{p.get('kind', '')}/{p.get('name', '')}" if isinstance(p, dict) else "<none>"
    if isinstance(p, dict) and p.get("apiGroup"):
        params = f"{p.get('kind', '')}.{p['apiGroup']}/{p.get('name', '')}"
    return [_m(o).get("name", ""), spec.get("controller", ""), params, since(_m(o).get("creationTimestamp"), now)]


def _simple(*cells: Callable[[Obj], Any]) -> Callable[[Obj, datetime], list[Any]]:
    def row(o: Obj, now: datetime) -> list[Any]:
        out: list[Any] = [_m(o).get("name", "")]
        for c in cells:
            out.append(since(_m(o).get("creationTimestamp"), now) if c is _age else c(o))
        return out
    return row


def _age(o: Obj) -> Any:  # marker
    return None


PRINTERS: dict[tuple[str, str], Printer] = {
    ("", "Pod"): Printer(POD_COLUMNS, pod_row),
    ("apps", "Deployment"): Printer((
        _NAME, col("Ready", description="Number of the pod with ready state"),
        col("Up-to-date", "integer", description="Total number of non-terminated pods targeted by "
            "this deployment that have the desired template spec."),
        col("Available", "integer", description="Total number of available pods (ready for at "
            "least minReadySeconds) targeted by this deployment."),
        _AGE, _CONTAINERS, _IMAGES, _SELECTOR), _deploy_row),
    ("apps", "ReplicaSet"): Printer((
        _NAME, col("Desired", "integer", description="Replicas is the number of desired replicas."),
        col("Current", "integer", description="Replicas is the most recently observed number of replicas."),
        col("Ready", "integer", description="The number of ready replicas for this replica set."),
        _AGE, _CONTAINERS, _IMAGES, _SELECTOR), _rs_row),
    ("apps", "StatefulSet"): Printer((
        _NAME, col("Ready", description="Number of the pod with ready state"), _AGE,
        _CONTAINERS, _IMAGES), _sts_row),
    ("apps", "DaemonSet"): Printer((
        _NAME, col("Desired", "integer", description="The total number of nodes that should be "
                   "running the daemon pod."),
        col("Current", "integer", description="The number of nodes that are running at least 1 daemon pod."),
        col("Ready", "integer", description="The number of nodes that should be running the daemon "
            "pod and have one or more of the daemon pod running and ready."),
        col("Up-to-date", "integer", description="The total number of nodes that are running updated daemon pod"),
        col("Available", "integer", description="The number of nodes that should be running the "
            "daemon pod and have one or more of the daemon pod running and available."),
        col("Node Selector", description="NodeSelector is a selector which must be true for the "
            "pod to fit on a node."),
        _AGE, _CONTAINERS, _IMAGES, _SELECTOR), _ds_row),
    ("", "ReplicationController"): Printer((
        _NAME, col("Desired", "integer", description="Replicas is the number of desired replicas. This is a "
                   "pointer to distinguish between explicit zero and unspecified. Defaults to 1."),
        col("Current", "integer", description="Replicas is the most recently observed number of replicas."),
        col("Ready", "integer", description="The number of ready replicas for this replication controller."),
        _AGE, _CONTAINERS, _IMAGES,
        col("Selector", priority=1, description="Selector is a label query over pods that should match the "
            "Replicas count. If Selector is empty, it is defaulted to the labels present on the Pod "
            "template.")), _rc_row),
    ("batch", "CronJob"): Printer((
        _NAME, col("Schedule", description="The schedule in Cron format, see "
                   "https://en.wikipedia.org/wiki/Cron."),
        col("Timezone", description="The time zone name for the given schedule, see "
            "https://en.wikipedia.org/wiki/List_of_tz_database_time_zones."),
        col("Suspend", "boolean", description="This flag tells the controller to suspend subsequent "
            "executions, it does not apply to already started executions.  Defaults to false."),
        col("Active", "integer", description="A list of pointers to currently running jobs."),
        col("Last Schedule", description="Information when was the last time the job was successfully "
            "scheduled."),
        _AGE, _CONTAINERS, _IMAGES,
        col("Selector", priority=1, description="A label query over pods that should match the pod count. "
            "Normally, the system sets this field for you.")), _cronjob_row),
    ("batch", "Job"): Printer((
        _NAME, col("Status", description="Status of the job."),
        col("Completions", description="The completion status of the job."),
        col("Duration", description="Time required to complete the job."),
        _AGE, _CONTAINERS, _IMAGES, _SELECTOR), _job_row),
    ("", "Node"): Printer((
        _NAME, col("Status", description="The status of the node"),
        col("Roles", description="The roles of the node"), _AGE,
        col("Version", description="Kubelet Version reported by the node."),
        col("Internal-IP", priority=1, description="List of addresses reachable to the node. Queried "
            "from cloud provider, if available."),
        col("External-IP", priority=1, description="List of addresses reachable to the node. Queried "
            "from cloud provider, if available."),
        col("OS-Image", priority=1, description="OS Image reported by the node from /etc/os-release "
            "(e.g. Debian GNU/Linux 7 (wheezy))."),
        col("Kernel-Version", priority=1, description="Kernel Version reported by the node from "
            "'uname -r' (e.g. 3.16.0-0.bpo.4-amd64)."),
        col("Container-Runtime", priority=1, description="ContainerRuntime Version reported by the "
            "node through runtime remote API (e.g. containerd://1.4.2).")), _node_row),
    ("", "Service"): Printer((
        _NAME, col("Type", description="type determines how the Service is exposed."),
        col("Cluster-IP", description="clusterIP is the IP address of the service."),
        col("External-IP", description="externalIPs is a list of IP addresses for which nodes in "
            "the cluster will also accept traffic for this service."),
        col("Port(s)", description="The list of ports that are exposed by this service."),
        _AGE, col("Selector", priority=1, description="Route service traffic to pods with label "
                  "keys and values matching this selector.")), _svc_row),
    ("", "Endpoints"): Printer((
        _NAME, col("Endpoints", description="Endpoints of the service"), _AGE), _endpoints_row),
    ("discovery.k8s.io", "EndpointSlice"): Printer((
        _NAME, col("AddressType", description="addressType specifies the type of address carried by this "
                   "EndpointSlice."),
        col("Ports", description="ports specifies the list of network ports exposed by each endpoint in this slice."),
        col("Endpoints", description="endpoints is a list of unique endpoints in this slice."), _AGE),
        _endpointslice_row),
    ("networking.k8s.io", "NetworkPolicy"): Printer((
        _NAME, col("Pod-Selector", description="podSelector selects the pods to which this NetworkPolicy "
                   "object applies."), _AGE), _netpol_row),
    ("networking.k8s.io", "Ingress"): Printer((
        _NAME, col("Class", description="The name of the IngressClass resource that should be used for ingress."),
        col("Hosts", description="Hosts that incoming requests are matched against before the ingress rule"),
        col("Address", description="Address is a list containing ingress points for the load-balancer"),
        col("Ports", description="Ports of TLS configurations that open"), _AGE), _ingress_row),
    ("", "PersistentVolume"): Printer((
        _NAME, col("Capacity", description="capacity is the description of the persistent volume's resources and "
                   "capacity."),
        col("Access Modes", description="accessModes contains all ways the volume can be mounted."),
        col("Reclaim Policy", description="persistentVolumeReclaimPolicy defines what happens to a persistent "
            "volume when released from its claim."),
        col("Status", description="phase indicates if a volume is available, bound to a claim, or released by a "
            "claim."),
        col("Claim", description="claimRef is part of a bi-directional binding between PersistentVolume and "
            "PersistentVolumeClaim."),
        col("StorageClass", description="storageClassName is the name of StorageClass to which this persistent "
            "volume belongs."),
        col("VolumeAttributesClass", description="Name of VolumeAttributesClass to which this persistent volume "
            "belongs."),
        col("Reason", description="reason is a brief CamelCase string that describes any failure and is meant "
            "for machine parsing and tidy display in the CLI."),
        _AGE, col("VolumeMode", priority=1, description="volumeMode defines if a volume is intended to be used "
                  "with a formatted filesystem or to remain in raw block state.")), pv_row),
    ("", "PersistentVolumeClaim"): Printer((
        _NAME, col("Status", description="phase represents the current phase of PersistentVolumeClaim."),
        col("Volume", description="volumeName is the binding reference to the PersistentVolume backing this "
            "claim."),
        col("Capacity", description="capacity represents the actual resources of the underlying volume."),
        col("Access Modes", description="accessModes contains the desired access modes the volume should have."),
        col("StorageClass", description="storageClassName is the name of the StorageClass required by the "
            "claim."),
        col("VolumeAttributesClass", description="volumeAttributesClassName may be used to set the "
            "VolumeAttributesClass used by this claim."),
        _AGE, col("VolumeMode", priority=1, description="volumeMode defines what type of volume is required by "
                  "the claim.")), pvc_row),
    ("storage.k8s.io", "StorageClass"): Printer((
        _NAME, col("Provisioner", description="provisioner indicates the type of the provisioner."),
        col("ReclaimPolicy", description="reclaimPolicy controls the reclaimPolicy for dynamically provisioned "
            "PersistentVolumes of this storage class."),
        col("VolumeBindingMode", description="volumeBindingMode indicates how PersistentVolumeClaims should be "
            "provisioned and bound."),
        col("AllowVolumeExpansion", description="allowVolumeExpansion shows whether the storage class allow "
            "volume expand."), _AGE), storageclass_row),
    ("storage.k8s.io", "CSIDriver"): Printer((
        _NAME, col("AttachRequired", "boolean", description="attachRequired indicates this CSI volume driver "
                   "requires an attach operation (because it implements the CSI ControllerPublishVolume() method)."),
        col("PodInfoOnMount", "boolean", description="podInfoOnMount indicates this CSI volume driver requires "
            "additional pod information (like podName, podUID, etc.) during mount operations, if set to true."),
        col("StorageCapacity", "boolean", description="storageCapacity indicates that the CSI volume driver wants "
            "pod scheduling to consider the storage capacity that the driver deployment will report."),
        col("TokenRequests", description="tokenRequests indicates the CSI driver needs pods' service account "
            "tokens it is mounting volume for to do necessary authentication."),
        col("RequiresRepublish", "boolean", description="requiresRepublish indicates the CSI driver wants "
            "`NodePublishVolume` being periodically called to reflect any possible change in the mounted volume."),
        col("Modes", description="volumeLifecycleModes defines what kind of volumes this CSI volume driver "
            "supports."), _AGE), csidriver_row),
    ("storage.k8s.io", "CSINode"): Printer((
        _NAME, col("Drivers", "integer", description="Drivers indicates the number of CSI drivers registered on "
                   "the node"), _AGE), csinode_row),
    ("storage.k8s.io", "VolumeAttachment"): Printer((
        _NAME, col("Attacher", format="name", description="attacher indicates the name of the volume driver that "
                   "MUST handle this request. This is the name returned by GetPluginName()."),
        col("PV", description="persistentVolumeName represents the name of the persistent volume to attach."),
        col("Node", description="nodeName represents the node that the volume should be attached to."),
        col("Attached", "boolean", description="attached indicates the volume is successfully attached. This "
            "field must only be set by the entity completing the attach operation, i.e. the external-attacher."),
        _AGE), volumeattachment_row),
    ("storage.k8s.io", "CSIStorageCapacity"): Printer((
        _NAME, col("StorageClassName", description="storageClassName represents the name of the StorageClass "
                   "that the reported capacity applies to."),
        col("Capacity", description="capacity is the value reported by the CSI driver in its GetCapacityResponse "
            "for a GetCapacityRequest with topology and parameters that match the previous fields.")),
        csistoragecapacity_row),
    ("", "PodTemplate"): Printer((
        _NAME, col("Containers", description="Names of each container in the template."),
        col("Images", description="Images referenced by each container in the template."),
        col("Pod Labels", description="The labels for the pod template.")),
        lambda o, now: [_m(o).get("name", ""),
                        *_containers_images({"spec": {"template": o.get("template")}}),
                        _labels_str(_s(_s(o, "template"), "metadata").get("labels"))]),
    ("networking.k8s.io", "IngressClass"): Printer((
        _NAME, col("Controller", description="Controller that is responsible for handling this class"),
        col("Parameters", description="A reference to a resource with additional parameters"), _AGE),
        _ingressclass_row),
    ("node.k8s.io", "RuntimeClass"): Printer((
        _NAME, col("Handler", description="handler specifies the underlying runtime and configuration that the CRI "
                   "implementation will use to handle pods of this class."), _AGE),
        _simple(lambda o: o.get("handler", ""), _age)),
    ("", "ConfigMap"): Printer((
        _NAME, col("Data", "integer", description="Data contains the configuration data."), _AGE),
        _simple(lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {}), _age)),
    ("", "Secret"): Printer((
        _NAME, col("Type", description="The type of the secret"),
        col("Data", "integer", description="The number of data items in the secret"), _AGE),
        _simple(lambda o: o.get("type", ""), lambda o: len(o.get("data") or {}), _age)),
    ("", "Namespace"): Printer((
        _NAME, col("Status", description="The status of the namespace"), _AGE),
        _simple(lambda o: _s(o, "status").get("phase", ""), _age)),
    ("", "ServiceAccount"): Printer((
        _NAME, col("Secrets", "integer", description="Secrets is a list of the secrets in the "
                   "same namespace that pods running using this ServiceAccount are allowed to use."),
        _AGE), _simple(lambda o: len(o.get("secrets") or []), _age)),
    ("coordination.k8s.io", "Lease"): Printer((
        _NAME, col("Holder", description="HolderIdentity contains the identity of the holder of a "
                   "current lease."), _AGE),
        _simple(lambda o: _s(o).get("holderIdentity", ""), _age)),
    ("apiextensions.k8s.io", "CustomResourceDefinition"): Printer((
        _NAME, col("Created At", "date", description=AGE_DESC)),
        lambda o, now: [_m(o).get("name", ""), _m(o).get("creationTimestamp")]),
    ("scheduling.controlplane.io", "SchedulingDecision"): Printer((
        _NAME, col("Pod", description="The pod the decision was about."),
        col("Profile", description="The scheduling profile that decided."),
        col("Result", description="Scheduled or Unschedulable."),
        col("Node", description="The chosen node."),
        col("Feasible", "integer", description="Nodes that passed every filter."),
        col("Score", "number", description="The chosen node's total (weighted) score."),
        _AGE, col("Message", priority=1, description="Why no node fitted.")),
        _decision_row),
    ("scheduling.k8s.io", "PriorityClass"): Printer((
        _NAME, col("Value", "integer", description="The value of this priority class."),
        col("Global-Default", "boolean", description="globalDefault specifies whether this "
            "PriorityClass should be considered as the default priority."),
        _AGE, col("PreemptionPolicy", description="PreemptionPolicy is the Policy for preempting "
                  "pods with lower priority.")),
        lambda o, now: [_m(o).get("name", ""), o.get("value", 0), bool(o.get("globalDefault")),
                        since(_m(o).get("creationTimestamp"), now),
                        o.get("preemptionPolicy", "PreemptLowerPriority")]),
    ("apps", "ControllerRevision"): Printer((
        _NAME, col("Controller", description="Controller of the object."),
        col("Revision", "integer", description="Revision of the ControllerRevision."), _AGE),
        lambda o, now: [_m(o).get("name", ""), _controller_of(o), o.get("revision", 0),
                        since(_m(o).get("creationTimestamp"), now)]),
    ("policy", "PodDisruptionBudget"): Printer((
        _NAME, col("Min Available", description="The minimum number of pods that must be available "
                   "simultaneously."),
        col("Max Unavailable", description="The maximum number of pods that may be unavailable "
            "simultaneously."),
        col("Allowed Disruptions", "integer", description="Calculated number of pods that may be "
            "disrupted at this time."), _AGE),
        lambda o, now: [_m(o).get("name", ""), str(_s(o).get("minAvailable", "N/A")),
                        str(_s(o).get("maxUnavailable", "N/A")),
                        _s(o, "status").get("disruptionsAllowed", 0),
                        since(_m(o).get("creationTimestamp"), now)]),
}

def _controller_of(o: Obj) -> str:
    """``kind.group/name`` of the controlling owner (``<none>`` without one), as kubectl prints it."""
    for ref in _m(o).get("ownerReferences") or []:
        if ref.get("controller"):
            group = str(ref.get("apiVersion", "")).rpartition("/")[0]
            kind = str(ref.get("kind", "")).lower()
            return f"{kind}.{group}/{ref.get('name', '')}" if group else f"{kind}/{ref.get('name', '')}"
    return "<none>"


def _quota_row(o: Obj, now: datetime) -> list[Any]:
    hard, used = _s(o, "status").get("hard") or {}, _s(o, "status").get("used") or {}
    req = [f"{k}: {used.get(k, '0')}/{hard[k]}" for k in sorted(hard) if not k.startswith("limits.")]
    lim = [f"{k}: {used.get(k, '0')}/{hard[k]}" for k in sorted(hard) if k.startswith("limits.")]
    return [_m(o).get("name", ""), since(_m(o).get("creationTimestamp"), now), ", ".join(req), ", ".join(lim)]


def _param_ref(o: Obj) -> str:
    ref = _s(o).get("paramRef")
    if not isinstance(ref, dict):
        return "<unset>"
    ns = ref.get("namespace")
    name = ref.get("name") or (f"[{_selector_str(ref.get('selector'))}]" if ref.get("selector") is not None else "*")
    return f"{ns}/{name}" if ns else name


def _param_kind(o: Obj) -> str:
    pk = _s(o).get("paramKind")
    return f"{pk.get('apiVersion', '')}/{pk.get('kind', '')}" if isinstance(pk, dict) else "<unset>"


_WEBHOOKS = (_NAME, col("Webhooks", "integer", description="Webhooks is a list of webhooks and the affected "
                        "resources and operations."), _AGE)
PRINTERS.update({
    ("", "ResourceQuota"): Printer((
        _NAME, _AGE, col("Request", description="Request is the quota usage of requests (and counts)."),
        col("Limit", description="Limit is the quota usage of limits.")), _quota_row),
    ("", "LimitRange"): Printer((_NAME, col("Created At", "date", description=AGE_DESC)),
                                lambda o, now: [_m(o).get("name", ""), _m(o).get("creationTimestamp")]),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"): Printer(
        _WEBHOOKS, _simple(lambda o: len(o.get("webhooks") or []), _age)),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"): Printer(
        _WEBHOOKS, _simple(lambda o: len(o.get("webhooks") or []), _age)),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"): Printer((
        _NAME, col("Validations", "integer", description="Validations is a list of the CEL expressions."),
        col("ParamKind", description="ParamKind specifies the kind of resources used to parameterize this "
            "policy"), _AGE),
        _simple(lambda o: len(_s(o).get("validations") or []), _param_kind, _age)),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"): Printer((
        _NAME, col("PolicyName", description="PolicyName references a ValidatingAdmissionPolicy name which "
                   "the ValidatingAdmissionPolicyBinding binds to."),
        col("ParamRef", description="ParamRef specifies the parameter resource used to configure the "
            "admission control policy."), _AGE),
        _simple(lambda o: _s(o).get("policyName", ""), _param_ref, _age)),
})

_EVENT_PRINTER = Printer((
    col("Last Seen", description="The time at which the most recent occurrence of this event was recorded."),
    col("Type", description="Type of this event (Normal, Warning), new types could be added in the future."),
    col("Reason", description="This should be a short, machine understandable string that gives "
        "the reason for the transition into the object's current status."),
    col("Object", description="The object that this event is about."),
    col("Subobject", priority=1, description="The field of the object this event is about."),
    col("Source", priority=1, description="The component reporting this event."),
    col("Message", description="A human-readable description of the status of this operation."),
    col("First Seen", priority=1, description="The time at which the event was first recorded."),
    col("Count", priority=1, description="The number of times this event has occurred."),
    col("Name", priority=1, format="name", description=NAME_DESC)), _event_row)
def _component_row(o: Obj, now: datetime) -> list[Any]:
    """kube-apiserver's ``printComponentStatus``: Healthy if a Healthy condition is True."""
    conds = [c for c in o.get("conditions") or [] if c.get("type") == "Healthy"]
    status = "Healthy" if any(c.get("status") == "True" for c in conds) else "Unhealthy"
    message = ",".join(c["message"] for c in conds if c.get("message"))
    error = ",".join(c["error"] for c in conds if c.get("error"))
    return [_m(o).get("name", ""), status, message, error]


PRINTERS[("", "ComponentStatus")] = Printer((
    _NAME, col("Status", description="Status of the component conditions"),
    col("Message", description="Message of the component conditions"),
    col("Error", description="Error of the component conditions")), _component_row)
PRINTERS[("autoscaling", "HorizontalPodAutoscaler")] = Printer((
    _NAME, col("Reference", description="scaleTargetRef points to the target resource to scale, and is used to "
               "the pods for which metrics should be collected, as well as to actually change the replica count."),
    col("Targets", description="metrics contains the specifications for which to use to calculate the desired "
        "replica count (the maximum replica count across all metrics will be used)."),
    col("MinPods", description="minReplicas is the lower limit for the number of replicas to which the "
        "autoscaler can scale down."),
    col("MaxPods", description="maxReplicas is the upper limit for the number of replicas to which the "
        "autoscaler can scale up."),
    col("Replicas", description="currentReplicas is current number of replicas of pods managed by this "
        "autoscaler, as last seen by the autoscaler."), _AGE), hpa_row)
PRINTERS[("apiregistration.k8s.io", "APIService")] = Printer((
    _NAME, col("Service", description="The reference to the service that hosts this API endpoint."),
    col("Available", description="Whether this service is available."), _AGE), apiservice_row)
PRINTERS[("", "Event")] = _EVENT_PRINTER
PRINTERS[("events.k8s.io", "Event")] = _EVENT_PRINTER


# ---------------------------------------------------------------- rbac, certificates

def _subjects(o: Obj) -> tuple[str, str, str]:
    """rbac ``SubjectsStrings``: users, groups, and service accounts as ``namespace:name``."""
    users, groups, sas = [], [], []
    for s in o.get("subjects") or []:
        if not isinstance(s, dict):
            continue
        kind = s.get("kind")
        if kind == "User":
            users.append(s.get("name", ""))
        elif kind == "Group":
            groups.append(s.get("name", ""))
        elif kind == "ServiceAccount":
            sas.append(f"{s.get('namespace', '')}:{s.get('name', '')}")
    return ", ".join(users), ", ".join(groups), ", ".join(sas)


def _binding_row(o: Obj, now: datetime) -> list[Any]:
    """``printRoleBinding`` / ``printClusterRoleBinding`` (the wide cells are always sent;
    kubectl shows the priority-1 ones with ``-o wide``)."""
    ref = o.get("roleRef") if isinstance(o.get("roleRef"), dict) else {}
    return [_m(o).get("name", ""), f"{ref.get('kind', '')}/{ref.get('name', '')}",
            since(_m(o).get("creationTimestamp"), now), *_subjects(o)]


def _binding_columns(role_ref: str) -> tuple[dict[str, Any], ...]:
    return (_NAME, col("Role", description=role_ref), _AGE,
            col("Users", priority=1, description="Users in the roleBinding"),
            col("Groups", priority=1, description="Groups in the roleBinding"),
            col("ServiceAccounts", priority=1, description="ServiceAccounts in the roleBinding"))


def csr_condition(o: Obj) -> str:
    """``extractCSRStatus``: Denied, else Approved, else Pending; then ``,Failed`` and ``,Issued``."""
    types = {c.get("type") for c in _s(o, "status").get("conditions") or [] if isinstance(c, dict)}
    status = "Denied" if "Denied" in types else "Approved" if "Approved" in types else "Pending"
    if "Failed" in types:
        status += ",Failed"
    if _s(o, "status").get("certificate"):
        status += ",Issued"
    return status


def _csr_row(o: Obj, now: datetime) -> list[Any]:
    spec = _s(o)
    secs = spec.get("expirationSeconds")
    duration = human_duration(timedelta(seconds=secs)) if isinstance(secs, int) else NONE
    return [_m(o).get("name", ""), since(_m(o).get("creationTimestamp"), now), spec.get("signerName") or NONE,
            spec.get("username", ""), duration, csr_condition(o)]


PRINTERS[("rbac.authorization.k8s.io", "RoleBinding")] = Printer(_binding_columns(
    "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace. "
    "If the RoleRef cannot be resolved, the Authorizer must return an error. This field is immutable."),
    _binding_row)
PRINTERS[("rbac.authorization.k8s.io", "ClusterRoleBinding")] = Printer(_binding_columns(
    "RoleRef can only reference a ClusterRole in the global namespace. If the RoleRef cannot be "
    "resolved, the Authorizer must return an error. This field is immutable."), _binding_row)
PRINTERS[("certificates.k8s.io", "CertificateSigningRequest")] = Printer((
    _NAME, _AGE,
    col("SignerName", description="signerName indicates the requested signer, and is a qualified name."),
    col("Requestor", description="request contains an x509 certificate signing request encoded in a "
        "\"CERTIFICATE REQUEST\" PEM block. When serialized as JSON or YAML, the data is additionally "
        "base64-encoded."),
    col("RequestedDuration", description="expirationSeconds is the requested duration of validity of the "
        "issued certificate."),
    col("Condition", description="conditions applied to the request. Known conditions are \"Approved\", "
        "\"Denied\", and \"Failed\".")), _csr_row)
