"""Validation of APIServices (kube-aggregator's ``pkg/apis/apiregistration/validation``): the
name must be ``spec.version + "." + spec.group``; the group a DNS subdomain (empty only for
``v1``), the version a DNS-1035 label; priorities in range; a local APIService (no service)
carries no CA bundle and no ``insecureSkipTLSVerify``; a remote one names its service's
namespace, name and a valid port, and does not both skip TLS verification and carry a CA.
"""

from __future__ import annotations

import re
from typing import Any

from controlplane.apiserver.meta.names import Errors, dns1123_subdomain_error

Obj = dict[str, Any]
_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def apiservice(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    group, version = spec.get("group") or "", spec.get("version") or ""
    name = (obj.get("metadata") or {}).get("name") or ""
    required = f"{version}.{group}"
    if name and name != required:
        errs.invalid("metadata.name", name, f'must be `spec.version+"."+spec.group`: "{required}"')
    if not group and version != "v1":
        errs.required("spec.group", "only v1 may have an empty group and it better be legacy kube")
    if group:
        err = dns1123_subdomain_error(group)
        if err:
            errs.invalid("spec.group", group, err)
    if len(version) > 63 or not _DNS1035.match(version):
        errs.invalid("spec.version", version, "a DNS-1035 label must consist of lower case alphanumeric characters "
                     "or '-', start with an alphabetic character, and end with an alphanumeric character "
                     "(e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
    gpm, vp = spec.get("groupPriorityMinimum") or 0, spec.get("versionPriority") or 0
    if not 0 < int(gpm) <= 20000:
        errs.invalid("spec.groupPriorityMinimum", gpm, "must be positive and less than 20000")
    if not 0 < int(vp) <= 1000:
        errs.invalid("spec.versionPriority", vp, "must be positive and less than 1000")
    svc = spec.get("service")
    if not svc:
        if spec.get("caBundle"):
            errs.invalid("spec.caBundle", f"{len(spec['caBundle'])} bytes", "local APIServices may not have a caBundle")
        if spec.get("insecureSkipTLSVerify"):
            errs.invalid("spec.insecureSkipTLSVerify", True, "local APIServices may not have insecureSkipTLSVerify")
        return
    if not svc.get("namespace"):
        errs.required("spec.service.namespace")
    if not svc.get("name"):
        errs.required("spec.service.name")
    port = svc.get("port", 443)
    if not isinstance(port, int) or not 0 < port < 65536:
        errs.invalid("spec.service.port", port, "port is not valid: must be between 1 and 65535, inclusive")
    if spec.get("insecureSkipTLSVerify") and spec.get("caBundle"):
        errs.invalid("spec.insecureSkipTLSVerify", True, "may not be true if caBundle is present")
