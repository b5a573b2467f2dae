"""apimachinery helpers shared by every component (pure, no I/O, no imports of other layers):
label/field selectors (``selectors``), resource quantities (``quantity``), the
field-selectable fields of each resource (``fields``), RFC 3339 timestamps (``timestamps``) and
which pods may run on which nodes: tolerations, node selectors and node affinity
(``scheduling``). The apiserver, controllers, scheduler and node agent all import these."""

from controlplane.machinery.fields import fields_for, supported_fields  # noqa: F401
from controlplane.machinery.quantity import bytes_, canonical, cpu_millis, format_quantity, parse_quantity  # noqa: F401
from controlplane.machinery.selectors import (  # noqa: F401
    FieldSelector,
    LabelSelector,
    parse_field_selector,
    parse_label_selector,
)
