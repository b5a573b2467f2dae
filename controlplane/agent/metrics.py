"""Prometheus metrics of one agent, with the kubelet's names (served at ``/metrics`` by
``server.py``; updated by ``pod_worker.py``). A registry per agent keeps two agents in one
process (tests) apart."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class AgentMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.running_pods = Gauge("kubelet_running_pods", "Number of pods with a running sandbox",
                                  registry=self.registry)
        self.running_containers = Gauge("kubelet_running_containers", "Number of containers by state",
                                        ["container_state"], registry=self.registry)
        self.pod_start = Histogram("kubelet_pod_start_duration_seconds",
                                   "Duration from the agent seeing a pod to the pod running",
                                   buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10, 30, 60),
                                   registry=self.registry)
        self.restarts = Counter("kubelet_container_restarts_total", "Container restarts", registry=self.registry)
        self.pull_errors = Counter("kubelet_image_pull_errors_total", "Failed image pulls", ["reason"],
                                   registry=self.registry)
