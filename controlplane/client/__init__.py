"""Client machinery for components that reach the cluster only through the API: the REST
client (``rest``), resource descriptors (``resources``), informers, the work queue, leader
election, the event recorder, the controller runner and the manager that owns them."""

from controlplane.client.rest import ApiStatusError, RestClient
from controlplane.client.resources import Resource

__all__ = ["ApiStatusError", "RestClient", "Resource"]
